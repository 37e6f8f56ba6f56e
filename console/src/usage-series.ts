import type { DayStats } from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { localMidnight } from "./format.js";

/** Tokens per day by model, as the chart draws them and the table beside it lists them. */
export interface UsageSeries {
  /** Local dates YYYY-MM-DD, oldest first: the days with runs. */
  dates: string[];
  /** Model names, sorted. */
  models: string[];
  /** tokens[m][d]: total tokens of model m on day d (0 when it ran none). */
  tokens: number[][];
}

/**
 * The series of GetRunStats' days (counted in the browser's offset). Numbers,
 * not bigints: uPlot draws numbers, and token counts stay below 2^53.
 */
export function usageSeries(days: readonly DayStats[]): UsageSeries {
  const models = [...new Set(days.flatMap((day) => Object.keys(day.byModel)))].sort();
  return {
    dates: days.map((day) => day.date),
    models,
    tokens: models.map((model) => days.map((day) => Number(day.byModel[model]?.totalTokens ?? 0n))),
  };
}

/** The x values of the chart: each day's local midnight in Unix seconds (uPlot's time scale). */
export function daySeconds(dates: readonly string[]): number[] {
  return dates.map((date) => localMidnight(date).getTime() / 1000);
}
