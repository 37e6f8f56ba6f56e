import type { JsonObject } from "@bufbuild/protobuf";
import type {
  DeleteThreadOptions,
  Page,
  PageRequest,
  RunSearch,
  RunStats,
  RunStatsOptions,
  ThreadSummary,
} from "./history.js";

/** Where a run is in its lifecycle: pending → running → a terminal status. */
export type RunStatus = "pending" | "running" | "success" | "error" | "timeout" | "interrupted";

/** What the runtime does when a new run arrives on a busy thread. */
export type MultitaskStrategy = "reject" | "interrupt" | "rollback" | "enqueue";

/** Every status, in lifecycle order; handy for validation and tests. */
export const RUN_STATUSES: readonly RunStatus[] = [
  "pending",
  "running",
  "success",
  "error",
  "timeout",
  "interrupted",
];

/** Every multitask strategy; the first is the default. */
export const MULTITASK_STRATEGIES: readonly MultitaskStrategy[] = [
  "reject",
  "interrupt",
  "rollback",
  "enqueue",
];

/** What holds a thread's active slot; only "run" rows are runs (see docs/contract.md). */
export type OperationKind = "run" | "checkpoint_write" | "artifact_write" | "delete";

/** Every operation kind; the first is the default. */
export const OPERATION_KINDS: readonly OperationKind[] = [
  "run",
  "checkpoint_write",
  "artifact_write",
  "delete",
];

/** How a cancel request asks a run's owner to stop it. */
export type CancelAction = "interrupt" | "rollback";

/** Every cancel action. */
export const CANCEL_ACTIONS: readonly CancelAction[] = ["interrupt", "rollback"];

/**
 * An instant as callers may hand it in: a `Date`, or an ISO 8601 string with
 * any offset or none (naive means UTC). Stores answer with the fixed-width
 * UTC form `2026-01-01T00:00:00.000000Z`, whose string order is time order.
 */
export type TimestampInput = string | Date;

/** The eight token/usage counters a run carries, each an integer ≥ 0. */
export interface TokenCounters {
  totalInputTokens: number;
  totalOutputTokens: number;
  totalTokens: number;
  llmCallCount: number;
  leadAgentTokens: number;
  subagentTokens: number;
  middlewareTokens: number;
  messageCount: number;
}

/** The counter names with their wire (snake_case) spelling, in proto order. */
export const COUNTER_FIELDS: readonly (readonly [keyof TokenCounters, string])[] = [
  ["totalInputTokens", "total_input_tokens"],
  ["totalOutputTokens", "total_output_tokens"],
  ["totalTokens", "total_tokens"],
  ["llmCallCount", "llm_call_count"],
  ["leadAgentTokens", "lead_agent_tokens"],
  ["subagentTokens", "subagent_tokens"],
  ["middlewareTokens", "middleware_tokens"],
  ["messageCount", "message_count"],
];

/** One stored run, as every RunStore returns it. Absent values are `null`. */
export interface RunRecord extends TokenCounters {
  runId: string;
  threadId: string;
  assistantId: string | null;
  userId: string | null;
  modelName: string | null;
  status: RunStatus;
  multitaskStrategy: MultitaskStrategy;
  metadata: JsonObject;
  kwargs: JsonObject;
  error: string | null;
  /** Fixed-width UTC with microseconds, e.g. `2026-01-01T00:00:00.000000Z`. */
  createdAt: string;
  /** Fixed-width UTC with microseconds. */
  updatedAt: string;
  lastAiMessage: string | null;
  firstHumanMessage: string | null;
  operationKind: OperationKind;
  /** Why the run stopped, e.g. "orphan_recovered". */
  stopReason: string | null;
  /** The worker that owns the run. */
  ownerWorkerId: string | null;
  /** The owner's lease; null: no lease. Fixed-width UTC. */
  leaseExpiresAt: string | null;
  /** The first cancel request recorded, or null. */
  cancelAction: CancelAction | null;
  cancelRequestedAt: string | null;
  /** Unique across the whole store. */
  idempotencyKey: string | null;
  followUpToRunId: string | null;
  /** Token usage per model name; {} when none was recorded. */
  tokenUsageByModel: Record<string, ModelUsage>;
  /** Admitted with "enqueue" and not claimed yet: waits for claimNextRun. */
  queued: boolean;
}

/** One model's token usage within a run; counters as TokenCounters'. */
export interface ModelUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  /** Absent differs from 0: a map reads back exactly as written. */
  cacheReadTokens?: number;
}

/**
 * How long an owner holds a run: an instant computed on the caller's clock,
 * or a duration the store turns into an instant on its own clock (the
 * database's for MySQL), so workers' clocks need not agree.
 */
export type Lease = { expiresAt: TimestampInput } | { durationMs: number };

/**
 * The fields of a put. On overwrite every field here replaces the stored
 * one, and an omitted (or null) optional becomes null / {}; `createdAt`
 * applies only when the run is inserted.
 */
export interface PutFields {
  threadId: string;
  assistantId?: string | null;
  userId?: string | null;
  modelName?: string | null;
  /** Default "pending". */
  status?: RunStatus;
  /** Default "reject". */
  multitaskStrategy?: MultitaskStrategy;
  /** Any JSON-like object; values JSON cannot hold are converted as JSON.stringify would. */
  metadata?: Record<string, unknown> | null;
  /** Any JSON-like object; values JSON cannot hold are converted as JSON.stringify would. */
  kwargs?: Record<string, unknown> | null;
  error?: string | null;
  /** Default now. */
  createdAt?: TimestampInput | null;
  /** Default "run". */
  operationKind?: OperationKind;
  stopReason?: string | null;
  ownerWorkerId?: string | null;
  leaseExpiresAt?: TimestampInput | null;
  /** Unique across the store: a key another run holds rejects with AlreadyExists. */
  idempotencyKey?: string | null;
  followUpToRunId?: string | null;
}

/**
 * A run's end. Status and all eight counters are always written (an omitted
 * counter is 0); messages and error only when given (not null/undefined).
 */
export interface RunCompletion extends Partial<TokenCounters> {
  status: RunStatus;
  lastAiMessage?: string | null;
  firstHumanMessage?: string | null;
  error?: string | null;
  /** Always written, like the counters: omitted stores {}. */
  tokenUsageByModel?: Record<string, ModelUsage> | null;
  /**
   * Applies only while the status is pending, running or the target itself
   * (error may also replace interrupted); otherwise false. Default false.
   */
  guarded?: boolean;
}

/**
 * A best-effort snapshot of a running run: only the fields that are given
 * (not null/undefined; 0 is given) are written.
 */
export type RunProgress = {
  [K in keyof TokenCounters]?: number | null;
} & {
  lastAiMessage?: string | null;
  firstHumanMessage?: string | null;
  /** Written only when given (not null/undefined). */
  tokenUsageByModel?: Record<string, ModelUsage> | null;
};

/** Options of updateStatus. */
export interface UpdateStatusOptions {
  /** Written only when given. */
  error?: string | null;
  /** Written only when given. */
  stopReason?: string | null;
  /**
   * Applies only while the status is pending, running or interrupted
   * (success, error and timeout rows are locked). Default false.
   */
  guarded?: boolean;
}

/** Admission of a new operation on a thread (createThreadOperation). */
export interface ThreadOperationFields {
  threadId: string;
  /** The admitting worker; it owns the new row (not with "enqueue"). */
  ownerWorkerId: string;
  /** Default: no lease. Ignored with "enqueue". */
  lease?: Lease | null;
  /** Default "run". */
  operationKind?: OperationKind;
  /** Default "reject". */
  multitaskStrategy?: MultitaskStrategy;
  assistantId?: string | null;
  userId?: string | null;
  modelName?: string | null;
  metadata?: Record<string, unknown> | null;
  kwargs?: Record<string, unknown> | null;
  createdAt?: TimestampInput | null;
  /** Seconds past a lease's expiry before it counts as expired; default 10. */
  graceSeconds?: number;
  idempotencyKey?: string | null;
  followUpToRunId?: string | null;
}

/** What an admission answers: the new row and the rows it took over. */
export interface Admission {
  run: RunRecord;
  takenOver: RunRecord[];
}

/** What renewLease answers: whether it applied, and the recorded cancel. */
export interface LeaseRenewal {
  renewed: boolean;
  cancelAction: CancelAction | null;
}

/** What finalizeIfNotCancelled answers: which side of the race won. */
export interface StatusFinalization {
  finalized: boolean;
  /** When not finalized: the recorded cancel request, if any. */
  cancelAction: CancelAction | null;
}

/** Options of claimForTakeover. */
export interface TakeoverOptions {
  /** The error the run is marked with. */
  error: string;
  stopReason?: string | null;
  /** Default 10. */
  graceSeconds?: number;
}

/** Options of listInflightWithExpiredLease. */
export interface ExpiredLeaseOptions extends RecoveryOptions {
  /** Default 10. */
  graceSeconds?: number;
}

/** Token usage of one model within a thread. */
export interface ModelTokenUsage {
  tokens: number;
  runs: number;
}

/** Token usage of a thread's counted runs. */
export interface ThreadTokenUsage {
  totalTokens: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  totalRuns: number;
  /** Keyed by model_name; runs without one count under "unknown". */
  byModel: Record<string, ModelTokenUsage>;
  byCaller: { leadAgent: number; subagent: number; middleware: number };
}

/** Restricts a call to one owner; omitted or null means no filter. */
export interface OwnerOptions {
  userId?: string | null;
}

/** Options of listByThread. */
export interface ListByThreadOptions extends OwnerOptions {
  /** 0 to 10000; default 100. */
  limit?: number;
}

/** Options of listPending / listInflight. */
export interface RecoveryOptions {
  /** Only runs created at or before this instant; default now. */
  before?: TimestampInput | null;
}

/**
 * The run-metadata store of an agent runtime. Every implementation (memory,
 * MySQL, remote) behaves exactly as docs/contract.md says, so a caller can swap
 * one for another without changing a line. Bad input rejects with a
 * `ConnectError` of code InvalidArgument naming the field, and changes nothing.
 */
export interface RunStore {
  /** Upsert: insert, or overwrite the descriptive fields keeping created_at, counters and messages. */
  put(runId: string, fields: PutFields): Promise<void>;
  /** The run, or null when missing or invisible to `userId`. */
  get(runId: string, options?: OwnerOptions): Promise<RunRecord | null>;
  /** The thread's visible runs, newest first (ties by run id descending). */
  listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]>;
  /** true when the row was written, false when not, null when the store cannot tell. */
  updateStatus(
    runId: string,
    status: RunStatus,
    options?: UpdateStatusOptions,
  ): Promise<boolean | null>;
  /** Removes the run; a no-op when missing or invisible to `userId`. */
  delete(runId: string, options?: OwnerOptions): Promise<void>;
  /** Sets the normalised model name; a no-op when the run is missing. */
  updateModelName(runId: string, modelName: string | null): Promise<void>;
  /** Records the run's end; true / false / null as updateStatus. */
  updateRunCompletion(runId: string, completion: RunCompletion): Promise<boolean | null>;
  /** Writes a snapshot only while the run is running; otherwise a silent no-op. */
  updateRunProgress(runId: string, progress: RunProgress): Promise<void>;
  /** Pending runs created at or before `before`, oldest first, all users. */
  listPending(options?: RecoveryOptions): Promise<RunRecord[]>;
  /** Pending and running runs created at or before `before`, oldest first, all users. */
  listInflight(options?: RecoveryOptions): Promise<RunRecord[]>;
  /** Token usage over the thread's success/error runs (and running ones with includeActive). */
  aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
  ): Promise<ThreadTokenUsage>;

  // Coordination between workers (docs/contract.md, part 2).

  /**
   * Admits a new operation on a thread in one atomic step under its
   * multitask strategy. Rejects with Aborted (threadConflict(error)) when the
   * thread is busy, AlreadyExists (idempotencyConflict(error)) when the key
   * is held, AlreadyExists when the run id is taken by another operation.
   */
  createThreadOperation(runId: string, fields: ThreadOperationFields): Promise<Admission>;
  /** pending → running; false when missing or no longer pending. */
  startRun(runId: string): Promise<boolean>;
  /** Extends an owned active run's lease, answering the recorded cancel in the same step. */
  renewLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<LeaseRenewal>;
  /** renewLease answering only whether it applied. */
  updateLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<boolean>;
  /** Records the first cancel request of an active run; answers the recorded action. */
  requestCancel(runId: string, action: CancelAction): Promise<CancelAction | null>;
  /** Ends an active run unless a cancel is recorded: exactly one of the two wins. */
  finalizeIfNotCancelled(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null; stopReason?: string | null },
  ): Promise<StatusFinalization>;
  /** Marks an active run whose lease expired past grace as error; one claimer wins. */
  claimForTakeover(runId: string, options: TakeoverOptions): Promise<boolean>;
  /** Active, unqueued rows of every kind whose lease expired past grace (or is null), oldest first. */
  listInflightWithExpiredLease(options?: ExpiredLeaseOptions): Promise<RunRecord[]>;
  /** The oldest queued run on a free thread, now running and owned by the caller; null: none. */
  claimNextRun(
    ownerWorkerId: string,
    lease: Lease,
    options?: { threadId?: string | null },
  ): Promise<RunRecord | null>;
  /** delete() with the owner recorded at admission. */
  deleteThreadOperation(runId: string, userId: string | null): Promise<void>;
  /** The visible runs of the thread among runIds, keyed by run id. */
  getManyByThread(
    threadId: string,
    runIds: readonly string[],
    options?: OwnerOptions,
  ): Promise<Record<string, RunRecord>>;
  /** The distinct metadata.regenerate_from_run_id values of the thread's success runs, sorted. */
  listSuccessfulRegenerateSources(threadId: string, options?: OwnerOptions): Promise<string[]>;
  /** The thread's edit-regenerate runs, oldest first. */
  listEditRegenerateRuns(threadId: string, options?: OwnerOptions): Promise<RunRecord[]>;

  // History, accounting and retention (docs/contract.md, "History"). Pages
  // are keyset pages: a page never repeats or skips a row while rows are added.

  /** A page of listByThread's rows, newest first. */
  listByThreadPage(
    threadId: string,
    options?: OwnerOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>>;
  /** A page of listPending's rows, oldest first. */
  listPendingPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>>;
  /** A page of listInflight's rows, oldest first. */
  listInflightPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>>;
  /** A page of listInflightWithExpiredLease's rows, oldest first. */
  listInflightWithExpiredLeasePage(
    options?: ExpiredLeaseOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>>;
  /** A page of the runs matching every filter, across threads, newest first. */
  searchRunsPage(search?: RunSearch, page?: PageRequest): Promise<Page<RunRecord>>;
  /** Every matching run, newest first, read a page at a time. */
  searchRuns(search?: RunSearch, pageSize?: number | null): AsyncIterable<RunRecord>;
  /** Counts and token totals, in all and per local day. */
  getRunStats(options?: RunStatsOptions): Promise<RunStats>;
  /** A page of the threads that have visible runs, most recent activity first. */
  listThreadsPage(options?: OwnerOptions, page?: PageRequest): Promise<Page<ThreadSummary>>;
  /** Every such thread, read a page at a time. */
  listThreads(options?: OwnerOptions, pageSize?: number | null): AsyncIterable<ThreadSummary>;
  /** Removes the thread's visible rows in bounded batches; answers how many. */
  deleteThread(threadId: string, options?: DeleteThreadOptions): Promise<number>;
}
