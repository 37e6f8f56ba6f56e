import type {
  CancelAction,
  ExpiredLeaseOptions,
  Lease,
  OwnerOptions,
  RunStatus,
  TakeoverOptions,
  ThreadOperationFields,
  TimestampInput,
} from "@runstore/client";
import {
  checkCancelAction,
  checkGraceSeconds,
  checkId,
  checkLease,
  checkOperationKind,
  checkOptionalId,
  checkOptionalText,
  checkStatus,
  checkStrategy,
  checkString,
  invalidArgument,
  type LeaseInput,
  MAX_LIMIT,
  parseTimestamp,
  toJsonObject,
} from "@runstore/client/internal";
import { checkModelName, optionsOf, type PutInput } from "./check-input.js";

// Part 2's argument checks (docs/contract.md, "Coordination"), called first by
// every backend like check-input.ts, so bad input is refused the same way
// everywhere and changes nothing.

/** An optional timestamp argument; null/undefined stay null. */
export function checkOptionalTimestamp(field: string, value: TimestampInput | null | undefined) {
  return value === undefined || value === null ? null : parseTimestamp(value, field);
}

/** stop_reason: at most 50 characters. */
export function checkOptionalStopReason(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : checkString(field, value, 0, 50);
}

/** owner_worker_id: 1 to 128 characters. */
export function checkOptionalWorkerId(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : checkString(field, value, 1, 128);
}

/** idempotency_key: 1 to 255 characters. */
export function checkOptionalKey(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : checkString(field, value, 1, 255);
}

/** An admission, checked: a put's fields plus the owner, lease and grace. */
export interface AdmissionInput
  extends Omit<PutInput, "status" | "error" | "stopReason" | "ownerWorkerId" | "leaseExpiresAt"> {
  ownerWorkerId: string;
  lease: LeaseInput | null;
  graceSeconds: number;
}

/** Checks createThreadOperation's arguments. */
export function checkAdmission(runId: unknown, fields: ThreadOperationFields): AdmissionInput {
  const id = checkId("run_id", runId);
  if (fields === null || typeof fields !== "object") {
    throw invalidArgument("fields", "must be an object with thread_id and owner_worker_id");
  }
  return {
    runId: id,
    threadId: checkId("thread_id", fields.threadId),
    ownerWorkerId: checkString("owner_worker_id", fields.ownerWorkerId, 1, 128),
    lease:
      fields.lease === undefined || fields.lease === null
        ? null
        : checkLease("lease", fields.lease),
    operationKind: checkOperationKind("operation_kind", fields.operationKind ?? "run"),
    multitaskStrategy: checkStrategy("multitask_strategy", fields.multitaskStrategy ?? "reject"),
    assistantId:
      fields.assistantId === undefined || fields.assistantId === null
        ? null
        : checkString("assistant_id", fields.assistantId, 0, 128),
    userId: checkOptionalId("user_id", fields.userId),
    modelName: checkModelName(fields.modelName),
    metadata: toJsonObject("metadata", fields.metadata),
    kwargs: toJsonObject("kwargs", fields.kwargs),
    createdAt: checkOptionalTimestamp("created_at", fields.createdAt),
    graceSeconds: checkGraceSeconds("grace_seconds", fields.graceSeconds),
    idempotencyKey: checkOptionalKey("idempotency_key", fields.idempotencyKey),
    followUpToRunId: checkOptionalId("follow_up_to_run_id", fields.followUpToRunId),
  };
}

/** Checks renewLease's / updateLease's arguments. */
export function checkLeaseCall(runId: unknown, ownerWorkerId: unknown, lease: Lease) {
  return {
    runId: checkId("run_id", runId),
    ownerWorkerId: checkString("owner_worker_id", ownerWorkerId, 1, 128),
    lease: checkLease("lease", lease),
  };
}

/** Checks requestCancel's arguments. */
export function checkCancel(runId: unknown, action: CancelAction) {
  return { runId: checkId("run_id", runId), action: checkCancelAction("action", action) };
}

/** Checks finalizeIfNotCancelled's arguments. */
export function checkFinalize(
  runId: unknown,
  status: RunStatus,
  options: { error?: string | null; stopReason?: string | null } | undefined,
) {
  const opts = optionsOf("options", options);
  return {
    runId: checkId("run_id", runId),
    status: checkStatus("status", status),
    error: checkOptionalText("error", opts.error),
    stopReason: checkOptionalStopReason("stop_reason", opts.stopReason),
  };
}

/** Checks claimForTakeover's arguments. */
export function checkTakeover(runId: unknown, options: TakeoverOptions) {
  const id = checkId("run_id", runId);
  if (options === null || typeof options !== "object") {
    throw invalidArgument("options", "must be an object with error");
  }
  return {
    runId: id,
    graceSeconds: checkGraceSeconds("grace_seconds", options.graceSeconds),
    error: checkString("error", options.error, 0, Number.MAX_SAFE_INTEGER),
    stopReason: checkOptionalStopReason("stop_reason", options.stopReason),
  };
}

/**
 * Checks listInflightWithExpiredLease's options. `before` not given stays
 * null: it means now on the store's clock (the database's, for MySQL).
 */
export function checkExpiredLeaseList(options: ExpiredLeaseOptions | undefined) {
  const opts = optionsOf("options", options);
  return {
    before: checkOptionalTimestamp("before", opts.before),
    graceSeconds: checkGraceSeconds("grace_seconds", opts.graceSeconds),
  };
}

/** Checks claimNextRun's arguments. */
export function checkClaimNext(
  ownerWorkerId: unknown,
  lease: Lease,
  options: { threadId?: string | null } | undefined,
) {
  const opts = optionsOf("options", options);
  return {
    ownerWorkerId: checkString("owner_worker_id", ownerWorkerId, 1, 128),
    lease: checkLease("lease", lease),
    threadId: checkOptionalId("thread_id", opts.threadId),
  };
}

/** Checks getManyByThread's arguments: at most MAX_LIMIT ids, each a valid run_id. */
export function checkGetMany(
  threadId: unknown,
  runIds: readonly string[],
  options: OwnerOptions | undefined,
) {
  const opts = optionsOf("options", options);
  if (!Array.isArray(runIds)) throw invalidArgument("run_ids", "must be a list of run ids");
  if (runIds.length > MAX_LIMIT) {
    throw invalidArgument("run_ids", `must hold at most ${MAX_LIMIT} ids, got ${runIds.length}`);
  }
  return {
    threadId: checkId("thread_id", threadId),
    runIds: [...new Set(runIds.map(checkManyId))],
    userId: checkOptionalId("user_id", opts.userId),
  };
}

/**
 * One id of get_many_by_thread. "__proto__" is refused: the answer is a map
 * keyed by run id, and JavaScript protobuf maps drop that key.
 */
function checkManyId(id: unknown): string {
  const runId = checkId("run_ids", id);
  if (runId === "__proto__") {
    throw invalidArgument(
      "run_ids",
      'must not hold "__proto__" (no protobuf map key can carry it)',
    );
  }
  return runId;
}

/** Checks the thread-wide reads' arguments (regenerate helpers). */
export function checkThreadOwned(threadId: unknown, options: OwnerOptions | undefined) {
  const opts = optionsOf("options", options);
  return {
    threadId: checkId("thread_id", threadId),
    userId: checkOptionalId("user_id", opts.userId),
  };
}
