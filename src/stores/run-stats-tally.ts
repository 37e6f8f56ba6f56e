import {
  type DayStats,
  RUN_STATUSES,
  type RunRecord,
  type RunStats,
  type RunStatus,
  type TokenTotals,
} from "@runstore/client";
import { checkedSum } from "./history-rules.js";
import { compareCodePoints } from "./text.js";

// Adds up get_run_stats (docs/contract.md, "History") the same way for every
// backend that reads the runs: counts by status, token totals, by model
// (token_usage_by_model, else the run's totals under its model_name or
// "unknown") and the same per local day. Models are Map keys, so a model
// named "__proto__" is just a name.

/** What the tally reads of a run. */
export type StatsRun = Pick<
  RunRecord,
  | "status"
  | "createdAt"
  | "modelName"
  | "totalInputTokens"
  | "totalOutputTokens"
  | "totalTokens"
  | "tokenUsageByModel"
>;

const DAY_MS = 86_400_000;

/** Token totals over runs, and the same by model. */
class TokenTally {
  private readonly totals = emptyTotals();
  private readonly models = new Map<string, TokenTotals>();

  add(run: StatsRun): void {
    const usage = Object.entries(run.tokenUsageByModel);
    let cacheRead = 0;
    for (const [, entry] of usage) cacheRead += entry.cacheReadTokens ?? 0;
    addTo(this.totals, run.totalInputTokens, run.totalOutputTokens, run.totalTokens, cacheRead);
    for (const [model, entry] of usage) {
      const { inputTokens, outputTokens, totalTokens, cacheReadTokens } = entry;
      addTo(this.model(model), inputTokens, outputTokens, totalTokens, cacheReadTokens ?? 0);
    }
    if (usage.length === 0) {
      const model = this.model(run.modelName ?? "unknown");
      addTo(model, run.totalInputTokens, run.totalOutputTokens, run.totalTokens, 0);
    }
  }

  tokens(): TokenTotals {
    return checkedTotals(this.totals);
  }

  /** By model, in code-point order of the names. */
  byModel(): Record<string, TokenTotals> {
    const names = [...this.models.keys()].sort(compareCodePoints);
    return Object.fromEntries(
      names.map((name) => [name, checkedTotals(this.models.get(name) as TokenTotals)]),
    );
  }

  private model(name: string): TokenTotals {
    let totals = this.models.get(name);
    if (totals === undefined) {
      totals = emptyTotals();
      this.models.set(name, totals);
    }
    return totals;
  }
}

/** get_run_stats over the runs added, days in `offsetMinutes` east of UTC. */
export class RunStatsTally {
  private readonly statuses = new Map<RunStatus, number>();
  private readonly all = new TokenTally();
  /** Keyed by local day number (days since 1970-01-01 in the offset). */
  private readonly days = new Map<number, TokenTally>();

  constructor(private readonly offsetMinutes: number) {}

  add(run: StatsRun): void {
    this.statuses.set(run.status, (this.statuses.get(run.status) ?? 0) + 1);
    this.all.add(run);
    const day = localDay(run.createdAt, this.offsetMinutes);
    let tally = this.days.get(day);
    if (tally === undefined) {
      tally = new TokenTally();
      this.days.set(day, tally);
    }
    tally.add(run);
  }

  result(): RunStats {
    const count = (status: RunStatus) => this.statuses.get(status) ?? 0;
    const days: DayStats[] = [...this.days.keys()]
      .sort((a, b) => a - b)
      .map((day) => {
        const tally = this.days.get(day) as TokenTally;
        return { date: dayDate(day), tokens: tally.tokens(), byModel: tally.byModel() };
      });
    const tokens = this.all.tokens();
    return {
      totalRuns: tokens.runs,
      byStatus: Object.fromEntries(
        RUN_STATUSES.filter((status) => count(status) > 0).map((status) => [status, count(status)]),
      ),
      activeRuns: count("pending") + count("running"),
      failedRuns: count("error") + count("timeout"),
      tokens,
      byModel: this.all.byModel(),
      days,
    };
  }
}

/** The local day (days since the epoch) of a stored instant, `offsetMinutes` east of UTC. */
export function localDay(createdAt: string, offsetMinutes: number): number {
  const ms = Date.parse(`${createdAt.slice(0, 19)}Z`) + offsetMinutes * 60_000;
  return Math.floor(ms / DAY_MS);
}

/** "YYYY-MM-DD" of a day number. */
export function dayDate(day: number): string {
  const date = new Date(day * DAY_MS);
  const pad = (value: number, width: number) => String(value).padStart(width, "0");
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}`;
}

function emptyTotals(): TokenTotals {
  return { runs: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, cacheReadTokens: 0 };
}

function addTo(
  totals: TokenTotals,
  input: number,
  output: number,
  total: number,
  cacheRead: number,
): void {
  totals.runs += 1;
  totals.inputTokens += input;
  totals.outputTokens += output;
  totals.totalTokens += total;
  totals.cacheReadTokens += cacheRead;
}

/** A copy of `totals`, OUT_OF_RANGE when a sum passed 2^53-1. */
function checkedTotals(totals: TokenTotals): TokenTotals {
  const copy = { ...totals };
  for (const [name, sum] of Object.entries(copy)) checkedSum(sum, `the sum of ${name}`);
  return copy;
}
