import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  type Admission,
  type CancelAction,
  type DeleteThreadOptions,
  type ExpiredLeaseOptions,
  type Lease,
  type LeaseRenewal,
  type ListByThreadOptions,
  nowTimestamp,
  type OwnerOptions,
  type Page,
  type PageRequest,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunSearch,
  type RunStats,
  type RunStatsOptions,
  type RunStatus,
  type RunStore,
  type StatusFinalization,
  type TakeoverOptions,
  type ThreadOperationFields,
  type ThreadSummary,
  type ThreadTokenUsage,
  type UpdateStatusOptions,
} from "@runstore/client";
import { COUNTER_FIELDS, eachItem } from "@runstore/client/internal";
import type { FollowsCallSignal } from "../call-signal.js";
import type { PoolStats, ReportsPoolStats } from "../pool-stats.js";
import { responseExhausted } from "../response-budget.js";
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
import { claimNextRun, createThreadOperation } from "./mysql-admission.js";
import { MysqlChangeFeed } from "./mysql-change-feed.js";
import {
  claimForTakeover,
  finalizeIfNotCancelled,
  getManyByThread,
  listEditRegenerateRuns,
  listInflightWithExpiredLease,
  listSuccessfulRegenerateSources,
  matched,
  renewLease,
  requestCancel,
  resolvingCollisions,
  rowsOf,
  type SqlSession,
  type SqlTransaction,
  startRun,
  updateLease,
} from "./mysql-coordination.js";
import {
  duplicateKeyOf,
  isPacketTooLarge,
  isPoolQueueFull,
  mapMysqlError,
  poolQueueFull,
} from "./mysql-errors.js";
import { ownedSession, ownedWrite } from "./mysql-owners.js";
import { checkPacketLimit } from "./mysql-packet-limit.js";
import {
  listByThreadPage,
  listInflightPage,
  listInflightWithExpiredLeasePage,
  listPendingPage,
} from "./mysql-pages.js";
import { createMysqlPool, type MysqlOptions } from "./mysql-pool.js";
import {
  DEFAULT_MAX_WAITING,
  ProgressBatch,
  progressBatchLimit,
  progressValues,
} from "./mysql-progress-batch.js";
import { claimSweep, pruneChanges, sweepTerminal } from "./mysql-retention.js";
import {
  COLUMNS,
  COUNTER_COLUMNS,
  fromRow,
  PUT_COLUMNS,
  type RunRow,
  SELECT_RUN,
  type SqlValues,
  STATUS_FLAGS,
  statusValues,
  text,
  toSql,
  UPDATE_STATUS,
  usageMapFromSql,
  usageMapToSql,
} from "./mysql-rows.js";
import { getRunStats } from "./mysql-run-stats.js";
import { searchRunsPage } from "./mysql-search.js";
import { deleteThread, listThreadsPage } from "./mysql-threads.js";
import type { HonoursOwners, Owners } from "./owners.js";
import { TokenUsageTally } from "./token-usage.js";

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
  readonly pool?: {
    readonly config: { readonly connectionLimit?: number; readonly queueLimit?: number };
  };
}

const ER_LOCK_DEADLOCK = 1213;
const ER_QUERY_INTERRUPTED = 1317;
const KILL_TIMEOUT_MS = 2000;
const CLOSE_TIMEOUT_MS = 3000;
/**
 * Attempts of a deadlock victim (or a Galera certification conflict). 8:
 * with 5, one of 30 progress writes to one run at once from three Galera
 * nodes lost five conflicts in a row on a loaded CI machine (once, in
 * test/galera/admission.test.ts; the runs before passed).
 */
const DEADLOCK_ATTEMPTS = 8;

const NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC LIMIT ?";
const OLDEST_FIRST = "ORDER BY created_at, run_id";
const RUNS_ONLY = "operation_kind = 'run'";

/**
 * put's flags over an existing run (bind the status, the new thread_id, the
 * status): STATUS_FLAGS, and a put never takes a slot, so a row it moves to
 * another thread gives its slot back and holds none there. Placed before
 * `thread_id = ?`: MySQL assigns left to right, so thread_id is still the
 * old one here (and MariaDB's SIMULTANEOUS_ASSIGNMENT reads old values anyway).
 */
const PUT_FLAGS =
  "queued = IF(? = 'pending', queued, 0), " +
  "holds_slot = IF(thread_id = ? AND ? IN ('pending', 'running'), holds_slot, 0)";

const UPDATE_RUN_COMPLETION =
  `UPDATE runs SET status = ?, ${COUNTER_COLUMNS.map((c) => `${c} = ?`).join(", ")}, ` +
  "last_ai_message = COALESCE(?, last_ai_message), " +
  "first_human_message = COALESCE(?, first_human_message), " +
  `error = COALESCE(?, error), token_usage_by_model = ?, ${STATUS_FLAGS}, ` +
  "updated_at = ? WHERE run_id = ?";

// A run whose usage map is not empty takes its by_model share from the map,
// so it is a group of its own; runs without one group by model_name (part 1).
const USAGE_MAP = "CASE WHEN JSON_LENGTH(token_usage_by_model) > 0 THEN";

/**
 * Every part 1 statement the store issues (part 2's are in
 * mysql-coordination.ts), each one SQL statement that MySQL 8 and MariaDB
 * 10.11 both accept (no JSON operators, no 0900 collations). Exported so the
 * EXPLAIN test can check each one uses an index.
 */
export const STATEMENTS = {
  // A plain INSERT, then an UPDATE when the run exists: never INSERT … ON
  // DUPLICATE KEY UPDATE, which on a duplicate idempotency key would
  // overwrite the run holding that key.
  putInsert:
    `INSERT INTO runs (run_id, ${PUT_COLUMNS.join(", ")}, created_at, updated_at) ` +
    `VALUES (${Array(PUT_COLUMNS.length + 3)
      .fill("?")
      .join(", ")})`,
  putUpdate:
    `UPDATE runs SET ${PUT_FLAGS}, ${PUT_COLUMNS.map((c) => `${c} = ?`).join(", ")}, ` +
    "updated_at = ? WHERE run_id = ?",
  get: SELECT_RUN,
  getOwned: `SELECT ${COLUMNS} FROM runs WHERE run_id = ? AND user_id = ?`,
  listByThread: `SELECT ${COLUMNS} FROM runs WHERE thread_id = ? AND ${RUNS_ONLY} ${NEWEST_FIRST}`,
  listByThreadOwned: `SELECT ${COLUMNS} FROM runs WHERE thread_id = ? AND user_id = ? AND ${RUNS_ONLY} ${NEWEST_FIRST}`,
  updateStatus: UPDATE_STATUS,
  // A rollback goes running → interrupted → error, so interrupted stays writable.
  updateStatusGuarded: `${UPDATE_STATUS} AND status IN ('pending', 'running', 'interrupted')`,
  delete: "DELETE FROM runs WHERE run_id = ?",
  deleteOwned: "DELETE FROM runs WHERE run_id = ? AND user_id = ?",
  updateModelName: "UPDATE runs SET model_name = ?, updated_at = ? WHERE run_id = ?",
  updateRunCompletion: UPDATE_RUN_COMPLETION,
  // Never over a different terminal outcome; error may replace interrupted (the target is bound twice more).
  updateRunCompletionGuarded:
    `${UPDATE_RUN_COMPLETION} AND (status IN ('pending', 'running') OR status = ? ` +
    "OR (? = 'error' AND status = 'interrupted'))",
  // One conditional write: a completion that lands first can never be overwritten.
  updateRunProgress:
    `UPDATE runs SET ${COUNTER_COLUMNS.map((c) => `${c} = COALESCE(?, ${c})`).join(", ")}, ` +
    "last_ai_message = COALESCE(?, last_ai_message), " +
    "first_human_message = COALESCE(?, first_human_message), " +
    "token_usage_by_model = COALESCE(?, token_usage_by_model), " +
    "updated_at = ? WHERE run_id = ? AND status = 'running'",
  listPending: `SELECT ${COLUMNS} FROM runs WHERE status = 'pending' AND ${RUNS_ONLY} AND created_at <= ? ${OLDEST_FIRST}`,
  listInflight: `SELECT ${COLUMNS} FROM runs WHERE status IN ('pending', 'running') AND created_at <= ? ${OLDEST_FIRST}`,
  aggregate:
    `SELECT model_name, ${USAGE_MAP} token_usage_by_model END AS usage_map, ` +
    "COUNT(*) AS runs, SUM(total_tokens) AS total_tokens, " +
    "SUM(total_input_tokens) AS total_input_tokens, SUM(total_output_tokens) AS total_output_tokens, " +
    "SUM(lead_agent_tokens) AS lead_agent, SUM(subagent_tokens) AS subagent, " +
    "SUM(middleware_tokens) AS middleware " +
    `FROM runs WHERE thread_id = ? AND ${RUNS_ONLY} AND status IN (?, ?, ?) ` +
    `GROUP BY model_name, ${USAGE_MAP} run_id END`,
} as const;

interface UsageRow {
  model_name: Buffer | string | null;
  usage_map: string | null;
  runs: number;
  total_tokens: number;
  total_input_tokens: number;
  total_output_tokens: number;
  lead_agent: number;
  subagent: number;
  middleware: number;
}

/** The large columns of a row: what a list answer's size is mostly made of. */
const LARGE_COLUMNS = [
  "metadata",
  "kwargs",
  "error",
  "last_ai_message",
  "first_human_message",
  "token_usage_by_model",
];
const LIST_PREFIX = `SELECT ${COLUMNS} FROM runs `;
const LARGE_BYTES = LARGE_COLUMNS.map((c) => `COALESCE(LENGTH(${c}), 0)`).join(" + ");
const sizeStatements = new Map<string, string>();

/**
 * For a list statement: its row count and the bytes of its rows' large
 * columns, the same rows (WHERE, ORDER BY, LIMIT) in a derived table.
 */
function sizeOf(sql: string): string {
  let sized = sizeStatements.get(sql);
  if (sized === undefined) {
    if (!sql.startsWith(LIST_PREFIX)) throw new Error(`not a list statement: ${sql}`);
    const rows = `SELECT ${LARGE_BYTES} AS bytes FROM runs ${sql.slice(LIST_PREFIX.length)}`;
    sized = `SELECT COUNT(*) AS runs, COALESCE(SUM(bytes), 0) AS bytes FROM (${rows}) AS answer`;
    sizeStatements.set(sql, sized);
  }
  return sized;
}

/**
 * RunStore on MySQL 8 / MariaDB 10.11 through a mysql2 pool. Every state
 * change is one statement, or one transaction that decides and writes before
 * COMMIT (no read-modify-write across calls), and the one active operation
 * per thread is a UNIQUE index, so replicas can share the database.
 * Connection loss and timeouts surface as UNAVAILABLE; the schema comes from
 * `migrate()` in mysql-migrations.ts. Part 2's statements are in
 * mysql-coordination.ts and mysql-admission.ts.
 */
export class MysqlRunStore implements RunStore, FollowsCallSignal, ReportsPoolStats, HonoursOwners {
  /** Set on a view from withCallSignal(): the serving call's signal. */
  private readonly callSignal: AbortSignal | undefined = undefined;
  /** Set on a view from withResponseBudget(): the largest list answer the serving call may build. */
  private readonly responseBudgetBytes: number | undefined = undefined;
  /** Set on a view from withOwners(): the users its writes act for. */
  private readonly owners: Owners | null = null;
  /** Rows the list reads have loaded; shared with every call view (tests read it). */
  private readonly listed = { rows: 0 };
  private readonly queryTimeoutMs: number;
  private readonly maxAllowedPacketBytes: number | null;
  /** KILL QUERYs not yet answered; shared with every call view, awaited by close(). */
  private readonly kills = new Set<Promise<void>>();
  /** Groups progress writes (null with MYSQL_PROGRESS_BATCH=0); shared with every call view. */
  private readonly progressBatch: ProgressBatch | null;

  /**
   * `control` runs KILL QUERY when a call's deadline passes or it is
   * cancelled; a pool of its own, so a kill never waits behind the very
   * queries it is meant to stop. Without it, a statement past the query
   * timeout is only dropped with its connection (and its lock waits end
   * with the session's innodb_lock_wait_timeout, mysql-pool.ts).
   * `maxAllowedPacketBytes` is the database's max_allowed_packet (open-store.ts
   * reads it at start-up; a test may give a smaller one): a write whose
   * statement would be larger is refused before it is sent
   * (mysql-packet-limit.ts). Without it, the database's own refusal is
   * answered the same way. `progressBatch` groups concurrent progress
   * writes: the writes that may wait for a batch, true for the default,
   * false or 0 for none (default: MYSQL_PROGRESS_BATCH, progressBatchLimit).
   */
  constructor(
    private readonly pool: SqlPool,
    options: {
      queryTimeoutMs?: number;
      maxAllowedPacketBytes?: number;
      progressBatch?: boolean | number;
    } = {},
    private readonly control?: SqlPool,
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
    this.maxAllowedPacketBytes = options.maxAllowedPacketBytes ?? null;
    const batch = options.progressBatch ?? progressBatchLimit();
    const maxWaiting = batch === true ? DEFAULT_MAX_WAITING : Number(batch);
    this.progressBatch =
      maxWaiting > 0
        ? new ProgressBatch({
            run: (sql, values) => this.run(sql, values),
            cutOff,
            maxAllowedPacketBytes: this.maxAllowedPacketBytes,
            singleSql: STATEMENTS.updateRunProgress,
            maxWaiting,
          })
        : null;
  }

  /** A store with its own pools; close() ends them. */
  static open(options: MysqlOptions & { maxAllowedPacketBytes?: number }): MysqlRunStore {
    return new MysqlRunStore(
      createMysqlPool(options).promise(),
      options,
      createMysqlPool(options, { connectionLimit: 1 }).promise(),
    );
  }

  /**
   * Whether this view's updateRunProgress goes through the group commit:
   * then a call holds no pool connection of its own while it waits, and the
   * batch bounds the writes waiting (MYSQL_PROGRESS_BATCH; bounded-store.ts).
   */
  get batchesProgress(): boolean {
    return this.progressBatch !== null && this.owners === null;
  }

  /**
   * This store with its statements cut off when `signal` aborts: an object
   * whose prototype is this store, so the view shares the pools and costs
   * one small object per call.
   */
  withCallSignal(signal: AbortSignal): MysqlRunStore {
    return Object.create(this, { callSignal: { value: signal } }) as MysqlRunStore;
  }

  /**
   * This store with its list reads held to `maxBytes` (the server's
   * MAX_RESPONSE_BYTES): before it loads the rows of a list, the view sums
   * the bytes of their large columns in the database, and refuses with
   * RESOURCE_EXHAUSTED, as the service does, when they alone are over it.
   */
  withResponseBudget(maxBytes: number): MysqlRunStore {
    return Object.create(this, { responseBudgetBytes: { value: maxBytes } }) as MysqlRunStore;
  }

  /**
   * This store with the owner condition of owners.ts in every write, each
   * write one transaction that locks what it decides on (mysql-owners.ts).
   */
  withOwners(owners: Owners): MysqlRunStore {
    return Object.create(this, { owners: { value: owners } }) as MysqlRunStore;
  }

  /** Rows the list reads have loaded since the store opened. */
  get listedRows(): number {
    return this.listed.rows;
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
    const described = [
      input.threadId,
      input.assistantId,
      input.userId,
      input.modelName,
      input.status,
      input.multitaskStrategy,
      JSON.stringify(input.metadata),
      JSON.stringify(input.kwargs),
      input.error,
      input.operationKind,
      input.stopReason,
      input.ownerWorkerId,
      input.leaseExpiresAt === null ? null : toSql(input.leaseExpiresAt),
      input.idempotencyKey,
      input.followUpToRunId,
    ];
    // A key held by another run is an idempotency conflict. A put never
    // collides on a slot: it takes none, and one it moves to another thread
    // drops the slot it held (PUT_FLAGS).
    const owners = this.owners;
    await resolvingCollisions(this.session, input, () =>
      owners === null
        ? putRow(this.session, input, described)
        : ownedWrite(
            this.session,
            input.runId,
            owners,
            (tx) => putRow(tx, input, described),
            input.threadId,
          ),
    );
  }

  async get(runId: string, options?: OwnerOptions): Promise<RunRecord | null> {
    const { runId: id, userId } = checkOwned(runId, options);
    const rows = rowsOf(
      await (userId === null
        ? this.run(STATEMENTS.get, [id])
        : this.run(STATEMENTS.getOwned, [id, userId])),
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  async listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]> {
    const input = checkListByThread(threadId, options);
    if (input.limit === 0) return [];
    // LIMIT is bound as a string: mysql2 sends a JS number as DOUBLE, which
    // MySQL 8.0.22+ refuses for LIMIT (MariaDB accepts either).
    const limit = String(input.limit);
    const rows = await (input.userId === null
      ? this.list(STATEMENTS.listByThread, [input.threadId, limit])
      : this.list(STATEMENTS.listByThreadOwned, [input.threadId, input.userId, limit]));
    return rows.map(fromRow);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: UpdateStatusOptions,
  ): Promise<boolean> {
    const input = checkUpdateStatus(runId, status, options);
    const sql = input.guarded ? STATEMENTS.updateStatusGuarded : STATEMENTS.updateStatus;
    return matched(await this.writeSession(input.runId).run(sql, statusValues(input)));
  }

  async delete(runId: string, options?: OwnerOptions): Promise<void> {
    const { runId: id, userId } = checkOwned(runId, options);
    const db = this.writeSession(id);
    await (userId === null
      ? db.run(STATEMENTS.delete, [id])
      : db.run(STATEMENTS.deleteOwned, [id, userId]));
  }

  async updateModelName(runId: string, modelName: string | null): Promise<void> {
    const input = checkUpdateModelName(runId, modelName);
    await this.writeSession(input.runId).run(STATEMENTS.updateModelName, [
      input.modelName,
      toSql(nowTimestamp()),
      input.runId,
    ]);
  }

  async updateRunCompletion(runId: string, completion: RunCompletion): Promise<boolean> {
    const input = checkCompletion(runId, completion);
    const values = [
      input.status,
      ...COUNTER_FIELDS.map(([name]) => input[name]),
      input.lastAiMessage,
      input.firstHumanMessage,
      input.error,
      usageMapToSql(input.tokenUsageByModel),
      input.status,
      input.status,
      toSql(nowTimestamp()),
      input.runId,
    ];
    const db = this.writeSession(input.runId);
    return matched(
      input.guarded
        ? await db.run(STATEMENTS.updateRunCompletionGuarded, [
            ...values,
            input.status,
            input.status,
          ])
        : await db.run(STATEMENTS.updateRunCompletion, values),
    );
  }

  /**
   * Grouped with the progress writes that arrive with it (mysql-progress-batch.ts),
   * except on a view with owners, which keeps its own transaction per write.
   */
  async updateRunProgress(runId: string, progress: RunProgress): Promise<void> {
    const input = checkProgress(runId, progress);
    const now = nowTimestamp();
    const single = (values: SqlValues) =>
      this.writeSession(input.runId).run(STATEMENTS.updateRunProgress, values);
    if (this.progressBatch === null || this.owners !== null) {
      await single(progressValues(input, now));
      return;
    }
    await this.progressBatch.write(input, now, single, this.callSignal);
  }

  async listPending(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    return (await this.list(STATEMENTS.listPending, [toSql(before)])).map(fromRow);
  }

  async listInflight(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    return (await this.list(STATEMENTS.listInflight, [toSql(before)])).map(fromRow);
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
  ): Promise<ThreadTokenUsage> {
    const input = checkAggregate(threadId, options);
    const rows = rowsOf<UsageRow>(
      await this.run(STATEMENTS.aggregate, [
        input.threadId,
        "success",
        "error",
        input.includeActive ? "running" : "error",
      ]),
    );
    const tally = new TokenUsageTally();
    for (const row of rows) {
      const share = {
        runs: Number(row.runs),
        totalTokens: Number(row.total_tokens),
        totalInputTokens: Number(row.total_input_tokens),
        totalOutputTokens: Number(row.total_output_tokens),
        leadAgentTokens: Number(row.lead_agent),
        subagentTokens: Number(row.subagent),
        middlewareTokens: Number(row.middleware),
      };
      const byModel = row.usage_map === null ? {} : usageMapFromSql(row.usage_map);
      tally.add(text(row.model_name), share, byModel);
    }
    return tally.result();
  }

  async createThreadOperation(runId: string, fields: ThreadOperationFields): Promise<Admission> {
    return createThreadOperation(this.session, runId, fields, this.owners);
  }

  async startRun(runId: string): Promise<boolean> {
    return startRun(this.writeSession(runId), runId);
  }

  async renewLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<LeaseRenewal> {
    return renewLease(this.writeSession(runId), runId, ownerWorkerId, lease);
  }

  async updateLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<boolean> {
    return updateLease(this.writeSession(runId), runId, ownerWorkerId, lease);
  }

  async requestCancel(runId: string, action: CancelAction): Promise<CancelAction | null> {
    return requestCancel(this.writeSession(runId), runId, action);
  }

  async finalizeIfNotCancelled(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null; stopReason?: string | null },
  ): Promise<StatusFinalization> {
    return finalizeIfNotCancelled(this.writeSession(runId), runId, status, options);
  }

  async claimForTakeover(runId: string, options: TakeoverOptions): Promise<boolean> {
    return claimForTakeover(this.writeSession(runId), runId, options);
  }

  async listInflightWithExpiredLease(options?: ExpiredLeaseOptions): Promise<RunRecord[]> {
    return listInflightWithExpiredLease(this.session, options);
  }

  async claimNextRun(
    ownerWorkerId: string,
    lease: Lease,
    options?: { threadId?: string | null },
  ): Promise<RunRecord | null> {
    return claimNextRun(this.session, ownerWorkerId, lease, options);
  }

  async deleteThreadOperation(runId: string, userId: string | null): Promise<void> {
    return this.delete(runId, { userId });
  }

  async getManyByThread(
    threadId: string,
    runIds: readonly string[],
    options?: OwnerOptions,
  ): Promise<Record<string, RunRecord>> {
    return getManyByThread(this.session, threadId, runIds, options);
  }

  async listSuccessfulRegenerateSources(
    threadId: string,
    options?: OwnerOptions,
  ): Promise<string[]> {
    return listSuccessfulRegenerateSources(this.session, threadId, options);
  }

  async listEditRegenerateRuns(threadId: string, options?: OwnerOptions): Promise<RunRecord[]> {
    return listEditRegenerateRuns(this.session, threadId, options);
  }

  // History (mysql-pages.ts, mysql-search.ts, mysql-run-stats.ts, mysql-threads.ts).

  listByThreadPage(
    threadId: string,
    options?: OwnerOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>> {
    return listByThreadPage(this.session, threadId, options, page);
  }

  listPendingPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>> {
    return listPendingPage(this.session, options, page);
  }

  listInflightPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>> {
    return listInflightPage(this.session, options, page);
  }

  listInflightWithExpiredLeasePage(
    options?: ExpiredLeaseOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>> {
    return listInflightWithExpiredLeasePage(this.session, options, page);
  }

  searchRunsPage(search?: RunSearch, page?: PageRequest): Promise<Page<RunRecord>> {
    return searchRunsPage(this.session, search, page);
  }

  searchRuns(search?: RunSearch, pageSize?: number | null): AsyncIterable<RunRecord> {
    return eachItem((page) => this.searchRunsPage(search, page), pageSize);
  }

  getRunStats(options?: RunStatsOptions): Promise<RunStats> {
    return getRunStats(this.session, options);
  }

  listThreadsPage(options?: OwnerOptions, page?: PageRequest): Promise<Page<ThreadSummary>> {
    return listThreadsPage(this.session, options, page);
  }

  listThreads(options?: OwnerOptions, pageSize?: number | null): AsyncIterable<ThreadSummary> {
    return eachItem((page) => this.listThreadsPage(options, page), pageSize);
  }

  deleteThread(threadId: string, options?: DeleteThreadOptions): Promise<number> {
    return deleteThread(this.session, threadId, options);
  }

  // The change log behind WatchRuns (mysql-change-feed.ts).

  /** This database's change log; `pollMs` (WATCH_POLL_MS) paces waitForChange's sequencer runs. */
  changeFeed(options: { pollMs?: number } = {}): MysqlChangeFeed {
    return new MysqlChangeFeed(this.session, options.pollMs);
  }

  // Retention (mysql-retention.ts; the sweeper is retention.ts).

  claimSweep(holder: string, leaseMs: number): Promise<boolean> {
    return claimSweep(this.session, holder, leaseMs);
  }

  sweepTerminal(cutoff: string, limit: number): Promise<number> {
    return sweepTerminal(this.session, cutoff, limit);
  }

  /** Deletes at most `limit` changes of the change log recorded before `cutoff` (CHANGE_LOG_HOURS). */
  pruneChanges(cutoff: string, limit: number): Promise<number> {
    return pruneChanges(this.session, cutoff, limit);
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

  /** This store (this call's view of it) as the part 2 functions run statements on it. */
  private get session(): SqlSession {
    return {
      run: (sql, values) => this.run(sql, values),
      list: (sql, values) => this.list(sql, values),
      transaction: (work) => this.transaction(work),
    };
  }

  /**
   * What a write to run `runId` runs on: this call's session, or on a view
   * with owners, one where each statement or transaction first locks the
   * row and refuses another user's (mysql-owners.ts). Part 2's writes check
   * their input before they touch it, so `runId` may still be unchecked.
   */
  private writeSession(runId: string): SqlSession {
    const session = this.session;
    return this.owners === null ? session : ownedSession(session, runId, this.owners);
  }

  /**
   * The rows of a list statement (`SELECT ${COLUMNS} FROM runs ...`). On a
   * view with a response budget, one cheap statement first counts the rows
   * and sums their large columns with the same WHERE, ORDER and LIMIT: a
   * list whose large columns alone are over the budget is refused before
   * any row is loaded. (The service still measures the answer it builds.)
   */
  private async list(sql: string, values: SqlValues): Promise<RunRow[]> {
    const budget = this.responseBudgetBytes;
    if (budget !== undefined) {
      const [size] = rowsOf<{ runs: number | string; bytes: number | string }>(
        await this.run(sizeOf(sql), values),
      );
      if (size !== undefined && Number(size.bytes) > budget) {
        throw responseExhausted(Number(size.runs), budget);
      }
    }
    const rows = rowsOf(await this.run(sql, values));
    this.listed.rows += rows.length;
    return rows;
  }

  /** One statement, its own transaction. */
  private run(sql: string, values: SqlValues): Promise<unknown> {
    return this.retryingDeadlocks(() => this.onConnection(false, (exec) => exec(sql, values)));
  }

  /** `work` between BEGIN and COMMIT on one connection (see onConnection). */
  private transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.retryingDeadlocks(() => this.onConnection(true, (exec) => work({ run: exec })));
  }

  /**
   * Runs `attempt` again when InnoDB picks it as a deadlock victim among
   * concurrent writes of one run (or one thread): every statement and every
   * transaction here is safe to repeat whole, so a victim is retried a few
   * times. Errors leave mapped (mysql-errors.ts); a duplicate key leaves as
   * the driver threw it, for the caller to read.
   */
  private async retryingDeadlocks<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if (errno !== ER_LOCK_DEADLOCK || n === DEADLOCK_ATTEMPTS) throw mapMysqlError(error);
      }
      await sleep(Math.random() * 5 * n);
    }
  }

  /**
   * `work` on one pooled connection: acquire, work, release; in a
   * transaction when `transactional` (BEGIN, work, COMMIT; ROLLBACK and
   * rethrow). Each statement is cut off when the serving call's signal
   * aborts (deadline passed or client gone: the caller is answered at once,
   * and KILL QUERY stops the database too) or when the query timeout passes
   * (see afterQueryTimeout). A transaction cut off
   * midway never goes back to the pool: its connection is closed once the
   * kill has landed, which rolls it back. Statement errors come back as
   * mysql2 threw them.
   */
  private async onConnection<T>(
    transactional: boolean,
    work: (exec: (sql: string, values: SqlValues) => Promise<unknown>) => Promise<T>,
  ): Promise<T> {
    const signal = this.callSignal;
    if (signal?.aborted) throw cutOff(signal);
    const connection = await this.acquire(signal);
    if (signal?.aborted) {
      connection.release();
      throw cutOff(signal);
    }
    const exec = (sql: string, values: SqlValues) =>
      this.statement(connection, { sql, values }, signal);
    try {
      const result = transactional
        ? await this.inTransaction(connection, () => work(exec))
        : await work(exec);
      connection.release();
      return result;
    } catch (error) {
      if (!(error instanceof StatementCutOff)) {
        // The server closes a connection that sent too large a packet; a
        // fatal error has closed it already: never hand such a one out again.
        if (isPacketTooLarge(error) || (error as { fatal?: unknown }).fatal === true) {
          connection.destroy();
        } else connection.release();
        throw error;
      }
      if (error.stillRunning) this.killThenDrop(connection, transactional);
      else connection.destroy();
      throw error.answer;
    }
  }

  /**
   * BEGIN, `work`, COMMIT on `connection`; ROLLBACK when `work` throws. A
   * ROLLBACK that fails leaves the connection to be dropped. BEGIN, COMMIT
   * and ROLLBACK go as text: MySQL cannot prepare them.
   */
  private async inTransaction<T>(connection: SqlConnection, work: () => Promise<T>): Promise<T> {
    const signal = this.callSignal;
    await this.statement(connection, { sql: "BEGIN" }, signal);
    let result: T;
    try {
      result = await work();
    } catch (error) {
      if (error instanceof StatementCutOff) throw error;
      try {
        // Not cut off by the call's signal: the transaction must end either way.
        await this.statement(connection, { sql: "ROLLBACK" }, undefined);
      } catch {
        throw new StatementCutOff(error, false);
      }
      throw error;
    }
    await this.statement(connection, { sql: "COMMIT" }, signal);
    return result;
  }

  /**
   * One statement on `connection` (prepared when it has values, as text
   * when not), bounded by the query timeout and `signal`. Our own bound on
   * the whole statement, not mysql2's `timeout`: that one does not cover the
   * PREPARE an uncached statement needs first, and when it fires it leaves
   * the statement running on a connection that looks free. A statement cut
   * off midway throws StatementCutOff; one over max_allowed_packet is
   * refused before it is sent. Traced as a child of the call's span.
   */
  private statement(
    connection: SqlConnection,
    statement: { sql: string; values?: SqlValues },
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    return traced(statement.sql, () => this.untracedStatement(connection, statement, signal));
  }

  private async untracedStatement(
    connection: SqlConnection,
    { sql, values }: { sql: string; values?: SqlValues },
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (signal?.aborted) throw cutOff(signal);
    if (values !== undefined && this.maxAllowedPacketBytes !== null) {
      checkPacketLimit(sql, values, this.maxAllowedPacketBytes);
    }
    const running =
      values === undefined ? connection.query({ sql }) : connection.execute({ sql }, values);
    try {
      const [result] = await withTimeout(running, this.queryTimeoutMs, signal);
      return result;
    } catch (error) {
      if (signal?.aborted) throw new StatementCutOff(cutOff(signal), true);
      if (error instanceof TimeoutError) return this.afterQueryTimeout(connection, running);
      throw error;
    }
  }

  /**
   * The query timeout passed while `running` was still running: KILL QUERY
   * first, and only then an answer, so a write answered UNAVAILABLE never
   * applies later (dropping the connection alone does not stop it: an
   * UPDATE waiting on a row lock would commit once it got the lock). A
   * statement that finished before the kill reached it answers as it
   * finished; one the kill stopped, or that could not be stopped (the
   * database does not answer the kill either), is UNAVAILABLE and its
   * connection is dropped. The caller waits for the kill, bounded by
   * KILL_TIMEOUT_MS twice.
   */
  private async afterQueryTimeout(
    connection: SqlConnection,
    running: Promise<[unknown, unknown]>,
  ): Promise<unknown> {
    const unavailable = (why: string) =>
      new StatementCutOff(
        new ConnectError(`database unavailable (statement timed out; ${why})`, Code.Unavailable),
        false,
      );
    const threadId = connection.threadId;
    if (threadId === null) throw unavailable("it could not be stopped");
    try {
      await this.tracked(this.kill(threadId));
    } catch {
      throw unavailable("it could not be stopped");
    }
    try {
      const [result] = await withTimeout(running, KILL_TIMEOUT_MS);
      return result;
    } catch (error) {
      const errno = (error as { errno?: unknown }).errno;
      // Finished by itself with an error of its own (a duplicate key, a lock
      // wait timeout): that is its answer.
      if (typeof errno === "number" && errno !== ER_QUERY_INTERRUPTED) throw error;
      throw unavailable("it was stopped and changed nothing");
    }
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
      if (isPoolQueueFull(error)) throw poolQueueFull(this.pool.pool?.config.queueLimit ?? 0);
      if (!(error instanceof TimeoutError)) throw error;
      throw new ConnectError("database unavailable (no free connection)", Code.Unavailable);
    }
  }

  /**
   * Stops the statement still running on `connection`, then gives the
   * connection back (or, inside a transaction, closes it, which rolls the
   * transaction back): never while that statement may still hit the next
   * query on it. A kill that failed leaves the connection unusable, so it is
   * dropped. Nobody waits for this: the caller has its answer already.
   */
  private killThenDrop(connection: SqlConnection, transactional: boolean): void {
    const threadId = connection.threadId;
    if (threadId === null) {
      if (transactional) connection.destroy();
      else connection.release();
      return;
    }
    this.tracked(
      this.kill(threadId).then(
        () => (transactional ? connection.destroy() : connection.release()),
        () => connection.destroy(),
      ),
    );
  }

  /** `killing`, remembered in `kills` until it settles, so close() waits for it. */
  private tracked(killing: Promise<void>): Promise<void> {
    this.kills.add(killing);
    killing.then(
      () => this.kills.delete(killing),
      () => this.kills.delete(killing),
    );
    return killing;
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
 * put's write on `db` (statements of their own, or one transaction): INSERT,
 * or on a duplicate run id UPDATE. created_at, counters, messages, cancel
 * and usage map stay; queue and slot too, unless the new status ends them or
 * the thread changes (PUT_FLAGS). A run deleted since the INSERT rethrows
 * its duplicate key, which resolvingCollisions answers by trying again.
 */
async function putRow(
  db: SqlTransaction,
  input: { runId: string; threadId: string; status: RunStatus; createdAt: string | null },
  described: SqlValues,
): Promise<void> {
  const now = toSql(nowTimestamp());
  const createdAt = input.createdAt === null ? now : toSql(input.createdAt);
  let exists: unknown;
  try {
    await db.run(STATEMENTS.putInsert, [input.runId, ...described, createdAt, now]);
    return;
  } catch (error) {
    if (duplicateKeyOf(error) !== "run_id") throw error;
    exists = error;
  }
  const flags = [input.status, input.threadId, input.status];
  const values = [...flags, ...described, now, input.runId];
  if (!matched(await db.run(STATEMENTS.putUpdate, values))) throw exists;
}

/**
 * A statement cut off midway: `answer` is what the caller gets; the
 * connection is unusable, killed first when the statement may still be
 * running on the server (`stillRunning`), else dropped at once.
 */
class StatementCutOff extends Error {
  constructor(
    readonly answer: unknown,
    readonly stillRunning: boolean,
  ) {
    super("statement cut off");
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

/**
 * A client span per statement while a traced call is active (the RPC span
 * of src/interceptors/tracing.ts): db.statement is the SQL with its `?`
 * placeholders, never the values. Without a recording parent (tracing off,
 * or work outside a call) the statement just runs.
 */
function traced<T>(sql: string, run: () => Promise<T>): Promise<T> {
  const parent = trace.getActiveSpan();
  if (parent === undefined || !parent.isRecording()) return run();
  const operation = sql.trimStart().split(/\s/, 1)[0]?.toUpperCase() ?? "SQL";
  const span = trace.getTracer("runstore").startSpan(operation, {
    kind: SpanKind.CLIENT,
    attributes: { "db.system": "mysql", "db.operation": operation, "db.statement": sql },
  });
  return context.with(trace.setSpan(context.active(), span), run).then(
    (result) => {
      span.end();
      return result;
    },
    (error: unknown) => {
      const errno = (error as { errno?: unknown }).errno;
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: typeof errno === "number" ? `errno ${errno}` : "statement failed",
      });
      span.end();
      throw error;
    },
  );
}
