import {
  type ListByThreadOptions,
  type ModelUsage,
  nowTimestamp,
  type OwnerOptions,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  type TokenCounters,
  type UpdateStatusOptions,
} from "@runstore/client";
import {
  COUNTER_FIELDS,
  checkBoolean,
  checkCounter,
  checkId,
  checkLimit,
  checkOperationKind,
  checkOptionalId,
  checkOptionalText,
  checkStatus,
  checkStrategy,
  checkString,
  checkUsageMap,
  invalidArgument,
  parseTimestamp,
  toJsonObject,
} from "@runstore/client/internal";
import {
  checkOptionalKey,
  checkOptionalStopReason,
  checkOptionalTimestamp,
  checkOptionalWorkerId,
} from "./check-coordination.js";
import { cutMessage, normalizeModelName } from "./text.js";

/**
 * model_name, normalised. "__proto__" is refused: it is the by_model key of
 * aggregate_tokens_by_thread, and JavaScript protobuf maps drop that key.
 */
export function checkModelName(value: unknown): string | null {
  const name = normalizeModelName(checkOptionalText("model_name", value));
  if (name === "__proto__") {
    throw invalidArgument(
      "model_name",
      'must not be "__proto__" (no protobuf map key can carry it)',
    );
  }
  return name;
}

// Every backend calls these first, so a bad value is refused the same way
// (InvalidArgument naming the field) before anything is read or written, and
// every backend stores the same normalised values.

/** A put, checked and normalised: the descriptive fields of a record, plus created_at (null: now). */
export type PutInput = Pick<
  RunRecord,
  | "runId"
  | "threadId"
  | "assistantId"
  | "userId"
  | "modelName"
  | "status"
  | "multitaskStrategy"
  | "metadata"
  | "kwargs"
  | "error"
  | "operationKind"
  | "stopReason"
  | "ownerWorkerId"
  | "leaseExpiresAt"
  | "idempotencyKey"
  | "followUpToRunId"
> & { createdAt: string | null };

/** A completion, checked and normalised; messages already cut. */
export interface CompletionInput extends TokenCounters {
  runId: string;
  status: RunStatus;
  lastAiMessage: string | null;
  firstHumanMessage: string | null;
  error: string | null;
  tokenUsageByModel: Record<string, ModelUsage>;
  guarded: boolean;
}

/** A progress snapshot, checked; only given fields are present. */
export interface ProgressInput {
  runId: string;
  counters: Partial<TokenCounters>;
  lastAiMessage: string | null;
  firstHumanMessage: string | null;
  /** null: not given, keep the stored map. */
  tokenUsageByModel: Record<string, ModelUsage> | null;
}

/** Reads an options argument: null/undefined mean none; anything else must be an object. */
export function optionsOf<T extends object>(
  field: string,
  value: T | null | undefined,
): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object") throw invalidArgument(field, "must be an object");
  return value;
}

/** Checks put's arguments. */
export function checkPut(runId: unknown, fields: PutFields): PutInput {
  const id = checkId("run_id", runId);
  if (fields === null || typeof fields !== "object") {
    throw invalidArgument("fields", "must be an object with at least thread_id");
  }
  return {
    runId: id,
    threadId: checkId("thread_id", fields.threadId),
    assistantId:
      fields.assistantId === undefined || fields.assistantId === null
        ? null
        : checkString("assistant_id", fields.assistantId, 0, 128),
    userId: checkOptionalId("user_id", fields.userId),
    modelName: checkModelName(fields.modelName),
    status: checkStatus("status", fields.status ?? "pending"),
    multitaskStrategy: checkStrategy("multitask_strategy", fields.multitaskStrategy ?? "reject"),
    metadata: toJsonObject("metadata", fields.metadata),
    kwargs: toJsonObject("kwargs", fields.kwargs),
    error: checkOptionalText("error", fields.error),
    createdAt: checkOptionalTimestamp("created_at", fields.createdAt),
    operationKind: checkOperationKind("operation_kind", fields.operationKind ?? "run"),
    stopReason: checkOptionalStopReason("stop_reason", fields.stopReason),
    ownerWorkerId: checkOptionalWorkerId("owner_worker_id", fields.ownerWorkerId),
    leaseExpiresAt: checkOptionalTimestamp("lease_expires_at", fields.leaseExpiresAt),
    idempotencyKey: checkOptionalKey("idempotency_key", fields.idempotencyKey),
    followUpToRunId: checkOptionalId("follow_up_to_run_id", fields.followUpToRunId),
  };
}

/** Checks get's / delete's arguments. */
export function checkOwned(runId: unknown, options: OwnerOptions | undefined) {
  const opts = optionsOf("options", options);
  return { runId: checkId("run_id", runId), userId: checkOptionalId("user_id", opts.userId) };
}

/** Checks listByThread's arguments. */
export function checkListByThread(threadId: unknown, options: ListByThreadOptions | undefined) {
  const opts = optionsOf("options", options);
  return {
    threadId: checkId("thread_id", threadId),
    userId: checkOptionalId("user_id", opts.userId),
    limit: checkLimit("limit", opts.limit),
  };
}

/** Checks updateStatus's arguments. */
export function checkUpdateStatus(
  runId: unknown,
  status: unknown,
  options: UpdateStatusOptions | undefined,
) {
  const opts = optionsOf("options", options);
  return {
    runId: checkId("run_id", runId),
    status: checkStatus("status", status),
    error: checkOptionalText("error", opts.error),
    stopReason: checkOptionalStopReason("stop_reason", opts.stopReason),
    guarded: checkBoolean("guarded", opts.guarded ?? false),
  };
}

/** Checks updateModelName's arguments; the name comes back normalised. */
export function checkUpdateModelName(runId: unknown, modelName: unknown) {
  return {
    runId: checkId("run_id", runId),
    modelName: checkModelName(modelName),
  };
}

/** Checks updateRunCompletion's arguments; omitted counters become 0. */
export function checkCompletion(runId: unknown, completion: RunCompletion): CompletionInput {
  const id = checkId("run_id", runId);
  if (completion === null || typeof completion !== "object") {
    throw invalidArgument("completion", "must be an object with at least status");
  }
  const counters = {} as TokenCounters;
  for (const [name, wire] of COUNTER_FIELDS) {
    counters[name] = checkCounter(wire, completion[name] ?? 0);
  }
  return {
    runId: id,
    status: checkStatus("status", completion.status),
    ...counters,
    lastAiMessage: cutMessage(checkOptionalText("last_ai_message", completion.lastAiMessage)),
    firstHumanMessage: cutMessage(
      checkOptionalText("first_human_message", completion.firstHumanMessage),
    ),
    error: checkOptionalText("error", completion.error),
    tokenUsageByModel:
      completion.tokenUsageByModel === undefined || completion.tokenUsageByModel === null
        ? {}
        : checkUsageMap("token_usage_by_model", completion.tokenUsageByModel),
    guarded: checkBoolean("guarded", completion.guarded ?? false),
  };
}

/** Checks updateRunProgress's arguments; only given counters are kept. */
export function checkProgress(runId: unknown, progress: RunProgress): ProgressInput {
  const id = checkId("run_id", runId);
  const given = optionsOf("progress", progress);
  const counters: Partial<TokenCounters> = {};
  for (const [name, wire] of COUNTER_FIELDS) {
    const value = given[name];
    if (value !== undefined && value !== null) counters[name] = checkCounter(wire, value);
  }
  return {
    runId: id,
    counters,
    lastAiMessage: cutMessage(checkOptionalText("last_ai_message", given.lastAiMessage)),
    firstHumanMessage: cutMessage(
      checkOptionalText("first_human_message", given.firstHumanMessage),
    ),
    tokenUsageByModel:
      given.tokenUsageByModel === undefined || given.tokenUsageByModel === null
        ? null
        : checkUsageMap("token_usage_by_model", given.tokenUsageByModel),
  };
}

/** Checks listPending's / listInflight's options; `before` defaults to now. */
export function checkRecovery(options: RecoveryOptions | undefined): { before: string } {
  const opts = optionsOf("options", options);
  return {
    before:
      opts.before === undefined || opts.before === null
        ? nowTimestamp()
        : parseTimestamp(opts.before, "before"),
  };
}

/** Checks aggregateTokensByThread's arguments. */
export function checkAggregate(
  threadId: unknown,
  options: { includeActive?: boolean } | undefined,
) {
  const opts = optionsOf("options", options);
  return {
    threadId: checkId("thread_id", threadId),
    includeActive: checkBoolean("include_active", opts.includeActive ?? false),
  };
}
