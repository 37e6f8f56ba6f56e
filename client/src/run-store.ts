import type { JsonObject } from "@bufbuild/protobuf";

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
}

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
};

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
  /** true when the run exists, false when not, null when the store cannot tell. */
  updateStatus(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null },
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
}
