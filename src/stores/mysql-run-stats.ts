import {
  RUN_STATUSES,
  type RunStats,
  type RunStatsOptions,
  type RunStatus,
  type TokenTotals,
} from "@runstore/client";
import { checkStats } from "./check-history.js";
import { checkedSum } from "./history-rules.js";
import { rowsOf, type SqlSession, type SqlTransaction } from "./mysql-coordination.js";
import { and, keysetAfter, RUNS_ONLY, type Sql, sql } from "./mysql-pages.js";
import { fromSql, text, toSql, usageMapFromSql } from "./mysql-rows.js";
import { compareCodePoints } from "./text.js";

// GetRunStats on MySQL (docs/contract.md, "get_run_stats"), in one read
// snapshot (a transaction of reads). The database adds up what SQL can:
// counts by status, and per local day (DATE(created_at + offset), created_at
// being UTC) the runs and their token sums, with the by-model share of runs
// whose usage map is empty grouped by model_name. The usage maps themselves
// are JSON objects keyed by model name, which neither database turns into
// (key, value) rows directly (JSON_TABLE gives values, not keys; pairing
// them with JSON_KEYS by ordinal relies on both listing keys in one order),
// so the runs that have one are read here: only their day and map, in
// keyset batches of MAP_BATCH rows, so memory stays bounded whatever the
// range. Measured at 100k rows (70k maps, MariaDB 10.11, a loaded 2-core
// machine): these batches 2.6-4.0 s against 4.7-5.9 s for JSON_TABLE doing
// the same sums in SQL.

/** Usage-map rows read per statement. */
export const MAP_BATCH = 5000;

type Scope = ReturnType<typeof checkStats>;

const MAPPED = "JSON_LENGTH(token_usage_by_model) > 0";
const LOCAL_DAY = "DATE(created_at + INTERVAL ? MINUTE)";

/** The counted rows: kind run, the user's when given, created in the range. */
function scopeOf(input: Scope): Sql[] {
  const scope = [RUNS_ONLY];
  if (input.userId !== null) scope.push(sql("user_id = ?", input.userId));
  if (input.createdAfter !== null) scope.push(sql("created_at >= ?", toSql(input.createdAfter)));
  if (input.createdBefore !== null) scope.push(sql("created_at < ?", toSql(input.createdBefore)));
  return scope;
}

/** The offset as INTERVAL … MINUTE binds it (a string: mysql2 sends numbers as DOUBLE). */
function offsetValue(input: Scope): string {
  return String(input.offsetMinutes);
}

/** Runs by status. */
export function statusCountStatement(input: Scope): Sql {
  const where = and(scopeOf(input));
  return {
    sql: `SELECT status, COUNT(*) AS runs FROM runs WHERE ${where.sql} GROUP BY status`,
    values: where.values,
  };
}

/**
 * Per local day: runs and token sums, split into runs with a usage map
 * (whose by-model share is read from the map) and runs without one, grouped
 * by model_name (their by-model share).
 */
export function daySumsStatement(input: Scope): Sql {
  const where = and(scopeOf(input));
  return {
    sql:
      `SELECT ${LOCAL_DAY} AS local_day, ${MAPPED} AS mapped, ` +
      `IF(${MAPPED}, NULL, model_name) AS fallback_model, COUNT(*) AS runs, ` +
      "SUM(total_input_tokens) AS input_tokens, SUM(total_output_tokens) AS output_tokens, " +
      `SUM(total_tokens) AS total_tokens FROM runs WHERE ${where.sql} ` +
      "GROUP BY local_day, mapped, fallback_model",
    values: [offsetValue(input), ...where.values],
  };
}

/** A batch of the usage maps (oldest first, after `after`), each with its run's local day. */
export function usageMapsStatement(input: Scope, after: readonly string[] | null): Sql {
  const where = and([...scopeOf(input), sql(MAPPED), ...keysetAfter("oldest", after)]);
  const index = input.userId === null ? "runs_kind_created" : "runs_kind_user_created";
  return {
    sql:
      `SELECT created_at, run_id, ${LOCAL_DAY} AS local_day, token_usage_by_model ` +
      `FROM runs FORCE INDEX (${index}) WHERE ${where.sql} ORDER BY created_at, run_id LIMIT ?`,
    values: [offsetValue(input), ...where.values, String(MAP_BATCH)],
  };
}

/** Counts and token totals over the scope, in all and per local day. */
export async function getRunStats(
  db: SqlSession,
  options: RunStatsOptions | undefined,
): Promise<RunStats> {
  const input = checkStats(options);
  return db.transaction(async (tx) => {
    const statuses = await countStatuses(tx, input);
    const sums = new StatsSums();
    await addDaySums(tx, input, sums);
    await addUsageMaps(tx, input, sums);
    const count = (status: RunStatus) => statuses.get(status) ?? 0;
    const all = sums.all.result();
    return {
      totalRuns: all.tokens.runs,
      byStatus: Object.fromEntries(
        RUN_STATUSES.filter((s) => count(s) > 0).map((s) => [s, count(s)]),
      ),
      activeRuns: count("pending") + count("running"),
      failedRuns: count("error") + count("timeout"),
      tokens: all.tokens,
      byModel: all.byModel,
      days: [...sums.days.entries()]
        .sort(([a], [b]) => byDate(a, b))
        .map(([date, day]) => ({ date, ...day.result() })),
    };
  });
}

async function countStatuses(tx: SqlTransaction, input: Scope): Promise<Map<RunStatus, number>> {
  const statement = statusCountStatement(input);
  const rows = rowsOf<{ status: RunStatus; runs: number | string }>(
    await tx.run(statement.sql, statement.values),
  );
  return new Map(rows.map((row) => [row.status, Number(row.runs)]));
}

interface DaySumRow {
  local_day: string | null;
  mapped: number | string | null;
  fallback_model: Buffer | string | null;
  runs: number | string;
  input_tokens: number | string;
  output_tokens: number | string;
  total_tokens: number | string;
}

async function addDaySums(tx: SqlTransaction, input: Scope, sums: StatsSums): Promise<void> {
  const statement = daySumsStatement(input);
  for (const row of rowsOf<DaySumRow>(await tx.run(statement.sql, statement.values))) {
    const share: TokenTotals = {
      runs: Number(row.runs),
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      totalTokens: Number(row.total_tokens),
      cacheReadTokens: 0,
    };
    for (const tally of sums.of(row.local_day)) {
      tally.addRuns(share);
      // A run without a usage map: its totals under its model_name, or "unknown".
      if (Number(row.mapped) !== 1) tally.addModel(text(row.fallback_model) ?? "unknown", share);
    }
  }
}

interface UsageMapRow {
  created_at: string;
  run_id: Buffer | string;
  local_day: string | null;
  token_usage_by_model: string;
}

async function addUsageMaps(tx: SqlTransaction, input: Scope, sums: StatsSums): Promise<void> {
  let after: string[] | null = null;
  for (;;) {
    const statement = usageMapsStatement(input, after);
    const rows = rowsOf<UsageMapRow>(await tx.run(statement.sql, statement.values));
    for (const row of rows) addUsageMap(row, sums);
    const last = rows.at(-1);
    if (rows.length < MAP_BATCH || last === undefined) return;
    after = [fromSql(last.created_at), text(last.run_id) as string];
  }
}

/** A run's usage map: each model's tokens under that model (one run each), and its cache reads. */
function addUsageMap(row: UsageMapRow, sums: StatsSums): void {
  const entries = Object.entries(usageMapFromSql(row.token_usage_by_model));
  let cacheRead = 0;
  for (const [, usage] of entries) cacheRead += usage.cacheReadTokens ?? 0;
  for (const tally of sums.of(row.local_day)) {
    tally.addCacheRead(cacheRead);
    for (const [model, usage] of entries) {
      tally.addModel(model, {
        runs: 1,
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        totalTokens: usage.totalTokens,
        cacheReadTokens: usage.cacheReadTokens ?? 0,
      });
    }
  }
}

/**
 * The local day DATE() cannot hold (NULL: past 9999-12-31). Only this one can
 * be: the latest created_at, 9999-12-31T23:59:59.999999Z, plus at most 14:00.
 * Named as the memory store names it (run-stats-tally.ts).
 */
const DAY_PAST_DATE_RANGE = "10000-01-01";

/** Dates in calendar order: a five-digit year after every four-digit one. */
function byDate(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The sums over every counted run, and per local day. */
class StatsSums {
  readonly all = new TokenSums();
  readonly days = new Map<string, TokenSums>();

  /** The tallies a run of `day` adds to: all, and its day's. */
  of(day: string | null): TokenSums[] {
    const date = day ?? DAY_PAST_DATE_RANGE;
    let tally = this.days.get(date);
    if (tally === undefined) {
      tally = new TokenSums();
      this.days.set(date, tally);
    }
    return [this.all, tally];
  }
}

/** Token totals, and the same by model (a Map, so a model named "__proto__" is just a name). */
class TokenSums {
  private readonly tokens = emptyTotals();
  private readonly models = new Map<string, TokenTotals>();

  addRuns(share: TokenTotals): void {
    addTo(this.tokens, share);
  }

  addCacheRead(tokens: number): void {
    this.tokens.cacheReadTokens += tokens;
  }

  addModel(model: string, share: TokenTotals): void {
    let totals = this.models.get(model);
    if (totals === undefined) {
      totals = emptyTotals();
      this.models.set(model, totals);
    }
    addTo(totals, share);
  }

  /** The totals and by-model totals (names in code point order); OUT_OF_RANGE past 2^53-1. */
  result(): { tokens: TokenTotals; byModel: Record<string, TokenTotals> } {
    const names = [...this.models.keys()].sort(compareCodePoints);
    return {
      tokens: checked(this.tokens),
      byModel: Object.fromEntries(
        names.map((name) => [name, checked(this.models.get(name) as TokenTotals)]),
      ),
    };
  }
}

function emptyTotals(): TokenTotals {
  return { runs: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0, cacheReadTokens: 0 };
}

function addTo(totals: TokenTotals, share: TokenTotals): void {
  totals.runs += share.runs;
  totals.inputTokens += share.inputTokens;
  totals.outputTokens += share.outputTokens;
  totals.totalTokens += share.totalTokens;
  totals.cacheReadTokens += share.cacheReadTokens;
}

function checked(totals: TokenTotals): TokenTotals {
  for (const [name, sum] of Object.entries(totals)) checkedSum(sum, `the sum of ${name}`);
  return { ...totals };
}
