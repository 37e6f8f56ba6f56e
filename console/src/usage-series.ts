import type { DayStats } from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { localDate, localMidnight } from "./format.js";

/** Tokens per day by model, as the chart draws them and the table beside it lists them. */
export interface UsageSeries {
  /** Every local date YYYY-MM-DD of the range, oldest first. */
  dates: string[];
  /** Model names, sorted. */
  models: string[];
  /** tokens[m][d]: total tokens of model m on day d (0 when it ran none). */
  tokens: number[][];
}

/** The most days the chart spans; a longer range shows its first days only. */
export const MAX_DAYS = 366;

/**
 * The series of GetRunStats' days (counted in the browser's offset) over
 * every day from `from` to `to`, days without runs at 0. Numbers, not
 * bigints: uPlot draws numbers, and token counts stay below 2^53.
 */
export function usageSeries(days: readonly DayStats[], from: string, to: string): UsageSeries {
  const dates: string[] = [];
  for (let d = 0; dates.length < MAX_DAYS; d++) {
    const date = localDate(localMidnight(from, d));
    if (date > to) break;
    dates.push(date);
  }
  const byDate = new Map(days.map((day) => [day.date, day]));
  const models = [...new Set(days.flatMap((day) => Object.keys(day.byModel)))].sort();
  return {
    dates,
    models,
    tokens: models.map((model) =>
      dates.map((date) => Number(byDate.get(date)?.byModel[model]?.totalTokens ?? 0n)),
    ),
  };
}

/** The x values of the chart: each day's local midnight in Unix seconds (uPlot's time scale). */
export function daySeconds(dates: readonly string[]): number[] {
  return dates.map((date) => localMidnight(date).getTime() / 1000);
}
