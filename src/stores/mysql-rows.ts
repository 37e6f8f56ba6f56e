import type {
  CancelAction,
  ModelUsage,
  MultitaskStrategy,
  OperationKind,
  RunRecord,
  RunStatus,
} from "@runstore/client";
import { COUNTER_FIELDS, type LeaseInput, nowTimestamp } from "@runstore/client/internal";

// How MysqlRunStore's rows look in SQL and in JavaScript, shared by the
// part 1 statements (mysql-run-store.ts) and part 2's (mysql-coordination.ts).

/** Values bound to a statement's placeholders. */
export type SqlValues = (string | number | null)[];

/** The eight counter columns, in proto order. */
export const COUNTER_COLUMNS = COUNTER_FIELDS.map(([, column]) => column);

/** The columns put writes on insert and overwrites on an existing run (besides updated_at). */
export const PUT_COLUMNS = [
  "thread_id",
  "assistant_id",
  "user_id",
  "model_name",
  "status",
  "multitask_strategy",
  "metadata",
  "kwargs",
  "error",
  "operation_kind",
  "stop_reason",
  "owner_worker_id",
  "lease_expires_at",
  "idempotency_key",
  "follow_up_to_run_id",
];

/** Every column of a record (fromRow reads them by name). */
export const COLUMNS = [
  "run_id",
  ...PUT_COLUMNS,
  "created_at",
  "updated_at",
  ...COUNTER_COLUMNS,
  "last_ai_message",
  "first_human_message",
  "cancel_action",
  "cancel_requested_at",
  "token_usage_by_model",
  "queued",
].join(", ");

/** One run by id. */
export const SELECT_RUN = `SELECT ${COLUMNS} FROM runs WHERE run_id = ?`;

/** The statuses that make a row active (it may hold its thread's slot). */
export const ACTIVE = "('pending', 'running')";

/**
 * What every status write does besides the status (bound twice more): a row
 * that leaves pending leaves the queue, and one that ends gives its thread's
 * slot back for good, so a later write that makes it active again (a part 1
 * put or update_status) never takes the slot.
 */
export const STATUS_FLAGS =
  "queued = IF(? = 'pending', queued, 0), holds_slot = IF(? IN ('pending', 'running'), holds_slot, 0)";

/** update_status's write, also finalize_if_not_cancelled's once it has decided; bind statusValues(). */
export const UPDATE_STATUS =
  "UPDATE runs SET status = ?, error = COALESCE(?, error), stop_reason = COALESCE(?, stop_reason), " +
  `${STATUS_FLAGS}, updated_at = ? WHERE run_id = ?`;

/** UPDATE_STATUS's values: the status, the error and stop_reason when given (else null), now. */
export function statusValues(input: {
  runId: string;
  status: RunStatus;
  error: string | null;
  stopReason: string | null;
}): SqlValues {
  const { runId, status, error, stopReason } = input;
  return [status, error, stopReason, status, status, toSql(nowTimestamp()), runId];
}

/**
 * A lease's expiry on the database clock, from leaseValues()' two values:
 * an absolute instant as given, or now + a duration in microseconds
 * (UTC_TIMESTAMP, so the session time zone plays no part); both null: none.
 */
export const LEASE_EXPIRY =
  "COALESCE(CAST(? AS DATETIME(6)), UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)";

/** "Expired past grace" on the database clock; bind graceValue(). */
export const EXPIRED_PAST_GRACE =
  "(lease_expires_at IS NULL OR lease_expires_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND)";

/**
 * 1500 years, in seconds. Subtracting more from now overflows DATETIME, which
 * strict mode turns into an error; any grace this long or longer already
 * puts the cutoff before year 1000 (until year 2500), where no lease lies,
 * so clamping changes no answer.
 */
const MAX_GRACE_SECONDS = 1500 * 31_557_600;

/** A grace period as bound to EXPIRED_PAST_GRACE (a string: mysql2 would send a number as DOUBLE). */
export function graceValue(seconds: number): string {
  return String(Math.min(seconds, MAX_GRACE_SECONDS));
}

/** The two values LEASE_EXPIRY binds; null: no lease. */
export function leaseValues(lease: LeaseInput | null): [string | null, string | null] {
  if (lease === null) return [null, null];
  if ("expiresAt" in lease) return [toSql(lease.expiresAt), null];
  // A string: mysql2 would send a number as DOUBLE.
  return [null, String(Math.round(lease.durationMs * 1000))];
}

/** A row as mysql2 returns it with our pool settings. */
export interface RunRow {
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
  operation_kind: string;
  stop_reason: string | null;
  owner_worker_id: Buffer | string | null;
  lease_expires_at: string | null;
  cancel_action: string | null;
  cancel_requested_at: string | null;
  idempotency_key: Buffer | string | null;
  follow_up_to_run_id: Buffer | string | null;
  token_usage_by_model: string;
  queued: number | string;
}

/** Fixed-width UTC string → DATETIME(6) literal. */
export function toSql(timestamp: string): string {
  return `${timestamp.slice(0, 10)} ${timestamp.slice(11, 26)}`;
}

/** DATETIME(6) as read with dateStrings → fixed-width UTC string. */
export function fromSql(value: string): string {
  const [date, time = "00:00:00"] = value.split(" ");
  const [whole, fraction = ""] = time.split(".");
  return `${date}T${whole}.${fraction.padEnd(6, "0")}Z`;
}

/** A VARBINARY column (a Buffer) or text column as a string. */
export function text(value: Buffer | string | null): string | null {
  return value === null ? null : typeof value === "string" ? value : value.toString("utf8");
}

/** A usage map as stored: model → {input_tokens, output_tokens, total_tokens, cache_read_tokens?}. */
export function usageMapToSql(map: Readonly<Record<string, ModelUsage>>): string {
  const stored: Record<string, Record<string, number>> = {};
  for (const [model, u] of Object.entries(map)) {
    const usage: Record<string, number> = {
      input_tokens: u.inputTokens,
      output_tokens: u.outputTokens,
      total_tokens: u.totalTokens,
    };
    if (u.cacheReadTokens !== undefined) usage.cache_read_tokens = u.cacheReadTokens;
    Object.defineProperty(stored, model, { value: usage, enumerable: true });
  }
  return JSON.stringify(stored);
}

/** A stored usage map read back; an absent cache_read_tokens stays absent. */
export function usageMapFromSql(json: string): Record<string, ModelUsage> {
  const stored = JSON.parse(json) as Record<string, Record<string, number>>;
  return Object.fromEntries(
    Object.entries(stored).map(([model, u]) => {
      const usage: ModelUsage = {
        inputTokens: Number(u.input_tokens),
        outputTokens: Number(u.output_tokens),
        totalTokens: Number(u.total_tokens),
      };
      if (u.cache_read_tokens !== undefined) usage.cacheReadTokens = Number(u.cache_read_tokens);
      return [model, usage];
    }),
  );
}

/** A row as the record every RunStore returns. */
export function fromRow(row: RunRow): RunRecord {
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
    operationKind: row.operation_kind as OperationKind,
    stopReason: row.stop_reason,
    ownerWorkerId: text(row.owner_worker_id),
    leaseExpiresAt: row.lease_expires_at === null ? null : fromSql(row.lease_expires_at),
    cancelAction: row.cancel_action as CancelAction | null,
    cancelRequestedAt: row.cancel_requested_at === null ? null : fromSql(row.cancel_requested_at),
    idempotencyKey: text(row.idempotency_key),
    followUpToRunId: text(row.follow_up_to_run_id),
    tokenUsageByModel: usageMapFromSql(row.token_usage_by_model),
    queued: Number(row.queued) === 1,
  };
}
