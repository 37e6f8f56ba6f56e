import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type ListByThreadOptions,
  type MultitaskStrategy,
  nowTimestamp,
  type OwnerOptions,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  type RunStore,
  type ThreadTokenUsage,
} from "@runstore/client";
import { COUNTER_FIELDS } from "@runstore/client/internal";
import type { FollowsCallSignal } from "../call-signal.js";
import type { PoolStats, ReportsPoolStats } from "../pool-stats.js";
import { TimeoutError, withTimeout } from "../with-timeout.js";
import {
  checkAggregate,
  checkCompletion,
  checkListByThread,
  checkOwned,
  checkProgress,
  checkPut,
  checkRecovery,
  checkUpdateModelName,
  checkUpdateStatus,
} from "./check-input.js";
import { mapMysqlError } from "./mysql-errors.js";
import { createMysqlPool, type MysqlOptions } from "./mysql-pool.js";
import { TokenUsageTally } from "./token-usage.js";

type SqlValues = (string | number | null)[];

/** The slice of a mysql2 promise connection this store uses. */
export interface SqlConnection {
  readonly threadId: number | null;
  execute(
    options: { sql: string; timeout?: number },
    values: SqlValues,
  ): Promise<[unknown, unknown]>;
  query(options: { sql: string; timeout?: number }): Promise<[unknown, unknown]>;
  release(): void;
  destroy(): void;
}

/**
 * The slice of a mysql2 promise pool this store uses; any pool with these
 * methods will do (kysely's habit of typing only what it touches).
 */
export interface SqlPool {
  getConnection(): Promise<SqlConnection>;
  end(): Promise<void>;
  /** The callback pool under a mysql2 promise pool (read by poolStats()). */
  readonly pool?: { readonly config: { readonly connectionLimit?: number } };
}

const COUNTER_COLUMNS = COUNTER_FIELDS.map(([, column]) => column);

/** The columns put overwrites on an existing run. */
const DESCRIPTIVE = [
  "thread_id",
  "assistant_id",
  "user_id",
  "model_name",
  "status",
  "multitask_strategy",
  "metadata",
  "kwargs",
  "error",
];

const COLUMNS = [
  "run_id",
  ...DESCRIPTIVE,
  "created_at",
  "updated_at",
  ...COUNTER_COLUMNS,
  "last_ai_message",
  "first_human_message",
].join(", ");

const ER_LOCK_DEADLOCK = 1213;
const KILL_TIMEOUT_MS = 2000;
const CLOSE_TIMEOUT_MS = 3000;
const DEADLOCK_ATTEMPTS = 5;

const NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC LIMIT ?";
const OLDEST_FIRST = "ORDER BY created_at, run_id";

/**
 * Every statement the store issues, each one SQL statement that MySQL 8 and
 * MariaDB 10.11 both accept (VALUES() upserts, no JSON operators, no 0900
 * collations). Exported so the EXPLAIN test can check each one uses an index.
 */
export const STATEMENTS = {
  put:
    `INSERT INTO runs (run_id, ${DESCRIPTIVE.join(", ")}, created_at, updated_at) ` +
    `VALUES (${Array(DESCRIPTIVE.length + 3)
      .fill("?")
      .join(", ")}) ` +
    `ON DUPLICATE KEY UPDATE ${[...DESCRIPTIVE, "updated_at"].map((c) => `${c} = VALUES(${c})`).join(", ")}`,
  get: `SELECT ${COLUMNS} FROM runs WHERE run_id = ?`,
  getOwned: `SELECT ${COLUMNS} FROM runs WHERE run_id = ? AND user_id = ?`,
  listByThread: `SELECT ${COLUMNS} FROM runs WHERE thread_id = ? ${NEWEST_FIRST}`,
  listByThreadOwned: `SELECT ${COLUMNS} FROM runs WHERE thread_id = ? AND user_id = ? ${NEWEST_FIRST}`,
  updateStatus:
    "UPDATE runs SET status = ?, error = COALESCE(?, error), updated_at = ? WHERE run_id = ?",
  delete: "DELETE FROM runs WHERE run_id = ?",
  deleteOwned: "DELETE FROM runs WHERE run_id = ? AND user_id = ?",
  updateModelName: "UPDATE runs SET model_name = ?, updated_at = ? WHERE run_id = ?",
  updateRunCompletion:
    `UPDATE runs SET status = ?, ${COUNTER_COLUMNS.map((c) => `${c} = ?`).join(", ")}, ` +
    "last_ai_message = COALESCE(?, last_ai_message), " +
    "first_human_message = COALESCE(?, first_human_message), " +
    "error = COALESCE(?, error), updated_at = ? WHERE run_id = ?",
  // One conditional write: a completion that lands first can never be overwritten.
  updateRunProgress:
    `UPDATE runs SET ${COUNTER_COLUMNS.map((c) => `${c} = COALESCE(?, ${c})`).join(", ")}, ` +
    "last_ai_message = COALESCE(?, last_ai_message), " +
    "first_human_message = COALESCE(?, first_human_message), " +
    "updated_at = ? WHERE run_id = ? AND status = 'running'",
  listPending: `SELECT ${COLUMNS} FROM runs WHERE status = 'pending' AND created_at <= ? ${OLDEST_FIRST}`,
  listInflight: `SELECT ${COLUMNS} FROM runs WHERE status IN ('pending', 'running') AND created_at <= ? ${OLDEST_FIRST}`,
  aggregate:
    "SELECT model_name, COUNT(*) AS runs, SUM(total_tokens) AS total_tokens, " +
    "SUM(total_input_tokens) AS total_input_tokens, SUM(total_output_tokens) AS total_output_tokens, " +
    "SUM(lead_agent_tokens) AS lead_agent, SUM(subagent_tokens) AS subagent, " +
    "SUM(middleware_tokens) AS middleware " +
    "FROM runs WHERE thread_id = ? AND status IN (?, ?, ?) GROUP BY model_name",
} as const;

/** A row as mysql2 returns it with our pool settings. */
interface RunRow {
  run_id: Buffer | string;
  thread_id: Buffer | string;
  assistant_id: string | null;
  user_id: Buffer | string | null;
  model_name: Buffer | string | null;
  status: string;
  multitask_strategy: string;
  metadata: string;
  kwargs: string;
  error: string | null;
  created_at: string;
  updated_at: string;
  total_input_tokens: number;
  total_output_tokens: number;
  total_tokens: number;
  llm_call_count: number;
  lead_agent_tokens: number;
  subagent_tokens: number;
  middleware_tokens: number;
  message_count: number;
  last_ai_message: string | null;
  first_human_message: string | null;
}

interface UsageRow {
  model_name: Buffer | string | null;
  runs: number;
  total_tokens: number;
  total_input_tokens: number;
  total_output_tokens: number;
  lead_agent: number;
  subagent: number;
  middleware: number;
}

/**
 * RunStore on MySQL 8 / MariaDB 10.11 through a mysql2 pool. Every state
 * change is one statement (no read-modify-write in JavaScript), so replicas
 * can share the database. Connection loss and timeouts surface as
 * UNAVAILABLE; the schema comes from `migrate()` in mysql-migrations.ts.
 */
export class MysqlRunStore implements RunStore, FollowsCallSignal, ReportsPoolStats {
  /** Set on a view from withCallSignal(): the serving call's signal. */
  private readonly callSignal: AbortSignal | undefined = undefined;
  private readonly queryTimeoutMs: number;
  /** KILL QUERYs not yet answered; shared with every call view, awaited by close(). */
  private readonly kills = new Set<Promise<void>>();

  /**
   * `control` runs KILL QUERY when a call's deadline passes or it is
   * cancelled; a pool of its own, so a kill never waits behind the very
   * queries it is meant to stop. Without it, only the query timeout applies.
   */
  constructor(
    private readonly pool: SqlPool,
    options: { queryTimeoutMs?: number } = {},
    private readonly control?: SqlPool,
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
  }

  /** A store with its own pools; close() ends them. */
  static open(options: MysqlOptions): MysqlRunStore {
    return new MysqlRunStore(
      createMysqlPool(options).promise(),
      options,
      createMysqlPool(options, { connectionLimit: 1 }).promise(),
    );
  }

  /**
   * This store with its statements cut off when `signal` aborts: an object
   * whose prototype is this store, so the view shares the pools and costs
   * one small object per call.
   */
  withCallSignal(signal: AbortSignal): MysqlRunStore {
    return Object.create(this, { callSignal: { value: signal } }) as MysqlRunStore;
  }

  /** Ends the pools: open connections close once their queries finish. */
  async close(): Promise<void> {
    // Kills in flight land first (each is bounded): a statement whose kill
    // died with the control pool would go on waiting for its row lock, and
    // apply once it got it.
    await Promise.allSettled(this.kills);
    // pool.end() queues QUIT behind whatever a connection is still doing: on a
    // hung database that never finishes, so the wait is bounded and errors
    // from closing count as closed.
    const ends = Promise.allSettled([this.pool.end(), this.control?.end()]);
    await withTimeout(ends, CLOSE_TIMEOUT_MS).catch(() => {});
  }

  /** Resolves when the database answers a trivial query; health probes call it. */
  async ping(): Promise<void> {
    await this.run("SELECT 1", []);
  }

  async put(runId: string, fields: PutFields): Promise<void> {
    const input = checkPut(runId, fields);
    const now = toSql(nowTimestamp());
    await this.run(STATEMENTS.put, [
      input.runId,
      input.threadId,
      input.assistantId,
      input.userId,
      input.modelName,
      input.status,
      input.multitaskStrategy,
      JSON.stringify(input.metadata),
      JSON.stringify(input.kwargs),
      input.error,
      input.createdAt === null ? now : toSql(input.createdAt),
      now,
    ]);
  }

  async get(runId: string, options?: OwnerOptions): Promise<RunRecord | null> {
    const { runId: id, userId } = checkOwned(runId, options);
    const rows = (await (userId === null
      ? this.run(STATEMENTS.get, [id])
      : this.run(STATEMENTS.getOwned, [id, userId]))) as RunRow[];
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  async listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]> {
    const input = checkListByThread(threadId, options);
    if (input.limit === 0) return [];
    // LIMIT is bound as a string: mysql2 sends a JS number as DOUBLE, which
    // MySQL 8.0.22+ refuses for LIMIT (MariaDB accepts either).
    const limit = String(input.limit);
    const rows = (await (input.userId === null
      ? this.run(STATEMENTS.listByThread, [input.threadId, limit])
      : this.run(STATEMENTS.listByThreadOwned, [input.threadId, input.userId, limit]))) as RunRow[];
    return rows.map(fromRow);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null },
  ): Promise<boolean> {
    const input = checkUpdateStatus(runId, status, options);
    return matched(
      await this.run(STATEMENTS.updateStatus, [
        input.status,
        input.error,
        toSql(nowTimestamp()),
        input.runId,
      ]),
    );
  }

  async delete(runId: string, options?: OwnerOptions): Promise<void> {
    const { runId: id, userId } = checkOwned(runId, options);
    await (userId === null
      ? this.run(STATEMENTS.delete, [id])
      : this.run(STATEMENTS.deleteOwned, [id, userId]));
  }

  async updateModelName(runId: string, modelName: string | null): Promise<void> {
    const input = checkUpdateModelName(runId, modelName);
    await this.run(STATEMENTS.updateModelName, [
      input.modelName,
      toSql(nowTimestamp()),
      input.runId,
    ]);
  }

  async updateRunCompletion(runId: string, completion: RunCompletion): Promise<boolean> {
    const input = checkCompletion(runId, completion);
    return matched(
      await this.run(STATEMENTS.updateRunCompletion, [
        input.status,
        ...COUNTER_FIELDS.map(([name]) => input[name]),
        input.lastAiMessage,
        input.firstHumanMessage,
        input.error,
        toSql(nowTimestamp()),
        input.runId,
      ]),
    );
  }

  async updateRunProgress(runId: string, progress: RunProgress): Promise<void> {
    const input = checkProgress(runId, progress);
    await this.run(STATEMENTS.updateRunProgress, [
      ...COUNTER_FIELDS.map(([name]) => input.counters[name] ?? null),
      input.lastAiMessage,
      input.firstHumanMessage,
      toSql(nowTimestamp()),
      input.runId,
    ]);
  }

  async listPending(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    return ((await this.run(STATEMENTS.listPending, [toSql(before)])) as RunRow[]).map(fromRow);
  }

  async listInflight(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    return ((await this.run(STATEMENTS.listInflight, [toSql(before)])) as RunRow[]).map(fromRow);
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
  ): Promise<ThreadTokenUsage> {
    const input = checkAggregate(threadId, options);
    const rows = (await this.run(STATEMENTS.aggregate, [
      input.threadId,
      "success",
      "error",
      input.includeActive ? "running" : "error",
    ])) as UsageRow[];
    const tally = new TokenUsageTally();
    for (const row of rows) {
      tally.add(text(row.model_name), {
        runs: Number(row.runs),
        totalTokens: Number(row.total_tokens),
        totalInputTokens: Number(row.total_input_tokens),
        totalOutputTokens: Number(row.total_output_tokens),
        leadAgentTokens: Number(row.lead_agent),
        subagentTokens: Number(row.subagent),
        middlewareTokens: Number(row.middleware),
      });
    }
    return tally.result();
  }

  /**
   * How busy the main pool is, for the metrics gauges. mysql2 has no public
   * API for pool usage (its typings expose only `pool.config`), so the
   * counts read the private queues of its lib/base/pool.js
   * (_allConnections, _freeConnections, _connectionQueue); this is the one
   * place that does. A mysql2 release that renames them makes the counts
   * NaN (unknown), never a false 0.
   */
  poolStats(): PoolStats {
    const core = this.pool.pool as Record<string, unknown> | undefined;
    const length = (name: string): number => {
      const queue = core?.[name] as { length?: unknown } | undefined;
      return typeof queue?.length === "number" ? queue.length : Number.NaN;
    };
    return {
      size: this.pool.pool?.config.connectionLimit ?? Number.NaN,
      open: length("_allConnections"),
      free: length("_freeConnections"),
      queued: length("_connectionQueue"),
    };
  }

  /**
   * Runs one statement, again when InnoDB picks it as a deadlock victim
   * among concurrent updates of one run: every statement here is its own
   * transaction and safe to repeat, so a victim is retried a few times.
   */
  private async run(sql: string, values: SqlValues): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(sql, values);
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if (errno !== ER_LOCK_DEADLOCK || attempt === DEADLOCK_ATTEMPTS) throw mapMysqlError(error);
      }
      await sleep(Math.random() * 5 * attempt);
    }
  }

  /**
   * One statement on one pooled connection: acquire, execute, release. It
   * is cut off when the serving call's signal aborts (deadline passed or
   * client gone: the caller is answered at once, and KILL QUERY stops the
   * database too) or when the query timeout passes (a frozen database: the
   * connection is dropped). Statement errors come back as mysql2 threw them.
   */
  private async attempt(sql: string, values: SqlValues): Promise<unknown> {
    const signal = this.callSignal;
    if (signal?.aborted) throw cutOff(signal);
    const connection = await this.acquire(signal);
    if (signal?.aborted) {
      connection.release();
      throw cutOff(signal);
    }
    // Our own bound on the whole statement: mysql2's `timeout` does not
    // cover the PREPARE an uncached statement needs first, so on a frozen
    // database that step would hang for ever.
    const executing = connection.execute({ sql, timeout: this.queryTimeoutMs }, values);
    let result: unknown;
    try {
      [result] = await withTimeout(executing, this.queryTimeoutMs, signal);
    } catch (error) {
      if (signal?.aborted) {
        this.killThenRelease(connection);
        throw cutOff(signal);
      }
      if (error instanceof TimeoutError) {
        connection.destroy();
        throw new ConnectError("database unavailable (statement timed out)", Code.Unavailable);
      }
      connection.release();
      throw error;
    }
    connection.release();
    return result;
  }

  /**
   * A connection from the pool, or UNAVAILABLE after queryTimeoutMs: when
   * every connection hangs on a frozen database, mysql2's pool (which has no
   * acquire timeout) would otherwise queue calls for ever. A call whose
   * signal aborts while it waits stops waiting.
   */
  private async acquire(signal: AbortSignal | undefined): Promise<SqlConnection> {
    try {
      return await connectionWithin(this.pool, this.queryTimeoutMs, signal);
    } catch (error) {
      if (signal?.aborted) throw cutOff(signal);
      if (!(error instanceof TimeoutError)) throw error;
      throw new ConnectError("database unavailable (no free connection)", Code.Unavailable);
    }
  }

  /**
   * Stops the statement still running on `connection`, then gives the
   * connection back: never while that statement may still hit the next
   * query on it. A kill that failed leaves the connection unusable, so it is
   * dropped. Nobody waits for this: the caller has its answer already.
   */
  private killThenRelease(connection: SqlConnection): void {
    const threadId = connection.threadId;
    if (threadId === null) {
      connection.release();
      return;
    }
    const killing = this.kill(threadId).then(
      () => connection.release(),
      () => connection.destroy(),
    );
    this.kills.add(killing);
    killing.finally(() => this.kills.delete(killing));
  }

  /**
   * KILL QUERY on a connection of the control pool, all of it (acquiring
   * that connection included) bounded by KILL_TIMEOUT_MS. A control
   * connection whose kill failed is destroyed, never reused: mysql2 leaves
   * a timed-out command queued on it, and every later kill would wait
   * behind it for ever.
   */
  private async kill(threadId: number): Promise<void> {
    if (this.control === undefined) throw new Error("no control pool to run KILL QUERY on");
    const deadline = Date.now() + KILL_TIMEOUT_MS;
    const connection = await connectionWithin(this.control, KILL_TIMEOUT_MS);
    try {
      const killing = connection.query({
        sql: `KILL QUERY ${Number(threadId)}`,
        timeout: KILL_TIMEOUT_MS,
      });
      await withTimeout(killing, deadline - Date.now());
    } catch (error) {
      connection.destroy();
      throw error;
    }
    connection.release();
  }
}

/**
 * A connection from `pool` within `ms`, unless `signal` aborts first; one
 * that arrives after the wait was given up goes straight back to the pool.
 */
async function connectionWithin(
  pool: SqlPool,
  ms: number,
  signal?: AbortSignal,
): Promise<SqlConnection> {
  const getting = pool.getConnection();
  try {
    return await withTimeout(getting, ms, signal);
  } catch (error) {
    getting.then(
      (late) => late.release(),
      () => {},
    );
    throw error;
  }
}

/** The error for a call whose signal aborted: its reason when it is a ConnectError (Connect aborts with DEADLINE_EXCEEDED or CANCELED). */
function cutOff(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError
    ? signal.reason
    : new ConnectError("call cancelled", Code.Canceled);
}

/** With FOUND_ROWS on (mysql-pool.ts), affectedRows counts rows matched: >0 means the run exists. */
function matched(result: unknown): boolean {
  return (result as { affectedRows: number }).affectedRows > 0;
}

/** Fixed-width UTC string → DATETIME(6) literal. */
function toSql(timestamp: string): string {
  return `${timestamp.slice(0, 10)} ${timestamp.slice(11, 26)}`;
}

/** DATETIME(6) as read with dateStrings → fixed-width UTC string. */
function fromSql(value: string): string {
  const [date, time = "00:00:00"] = value.split(" ");
  const [whole, fraction = ""] = time.split(".");
  return `${date}T${whole}.${fraction.padEnd(6, "0")}Z`;
}

function text(value: Buffer | string | null): string | null {
  return value === null ? null : typeof value === "string" ? value : value.toString("utf8");
}

function fromRow(row: RunRow): RunRecord {
  return {
    runId: text(row.run_id) as string,
    threadId: text(row.thread_id) as string,
    assistantId: row.assistant_id,
    userId: text(row.user_id),
    modelName: text(row.model_name),
    status: row.status as RunStatus,
    multitaskStrategy: row.multitask_strategy as MultitaskStrategy,
    metadata: JSON.parse(row.metadata),
    kwargs: JSON.parse(row.kwargs),
    error: row.error,
    createdAt: fromSql(row.created_at),
    updatedAt: fromSql(row.updated_at),
    totalInputTokens: Number(row.total_input_tokens),
    totalOutputTokens: Number(row.total_output_tokens),
    totalTokens: Number(row.total_tokens),
    llmCallCount: Number(row.llm_call_count),
    leadAgentTokens: Number(row.lead_agent_tokens),
    subagentTokens: Number(row.subagent_tokens),
    middlewareTokens: Number(row.middleware_tokens),
    messageCount: Number(row.message_count),
    lastAiMessage: row.last_ai_message,
    firstHumanMessage: row.first_human_message,
  };
}
