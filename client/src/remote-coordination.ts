import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  actionFromProto,
  actionToProto,
  checkCancelAction,
  checkOperationKind,
  checkUsageMap,
  kindToProto,
  usageMapToProto,
} from "./coordination.js";
import {
  type CreateThreadOperationRequestSchema,
  type CreateThreadOperationResponse,
  type FinalizeIfNotCancelledResponse,
  IdempotencyConflictSchema,
  type RenewLeaseResponse,
} from "./gen/runstore/v1/run_store_pb.js";
import { toJsonObject } from "./json-object.js";
import { runFromProto, strategyToProto } from "./proto-convert.js";
import { lease, optionalCount, optionalLease, optionalTimestamp, text } from "./remote-request.js";
import type {
  Admission,
  CancelAction,
  Lease,
  LeaseRenewal,
  ModelUsage,
  StatusFinalization,
  TakeoverOptions,
  ThreadOperationFields,
} from "./run-store.js";
import { checkString, invalidArgument } from "./validation.js";

// RemoteRunStore's part-2 requests and answers (docs/contract.md,
// "Coordination"), kept apart so the store reads as one call a method.

/** createThreadOperation's arguments as its request. */
export function admissionRequest(
  runId: string,
  fields: ThreadOperationFields,
): MessageInitShape<typeof CreateThreadOperationRequestSchema> {
  if (fields === null || typeof fields !== "object") {
    throw invalidArgument("fields", "must be an object with thread_id and owner_worker_id");
  }
  return {
    runId: text("run_id", runId),
    threadId: text("thread_id", fields.threadId),
    ownerWorkerId: text("owner_worker_id", fields.ownerWorkerId),
    lease: optionalLease("lease", fields.lease),
    operationKind: kindToProto(checkOperationKind("operation_kind", fields.operationKind ?? "run")),
    multitaskStrategy: strategyToProto("multitask_strategy", fields.multitaskStrategy ?? "reject"),
    assistantId: text("assistant_id", fields.assistantId),
    userId: text("user_id", fields.userId),
    modelName: text("model_name", fields.modelName),
    metadata: toJsonObject("metadata", fields.metadata),
    kwargs: toJsonObject("kwargs", fields.kwargs),
    createdAt: optionalTimestamp(fields.createdAt, "created_at"),
    graceSeconds: optionalCount("grace_seconds", fields.graceSeconds),
    idempotencyKey: text("idempotency_key", fields.idempotencyKey),
    followUpToRunId: text("follow_up_to_run_id", fields.followUpToRunId),
  };
}

/** The admission answer: the new row and the rows it took over. */
export function admissionFromProto(response: CreateThreadOperationResponse): Admission {
  if (response.run === undefined) throw badResponse("an admission without its run");
  return { run: runFromProto(response.run), takenOver: response.takenOver.map(runFromProto) };
}

/** The renewal answer. */
export function renewalFromProto(response: RenewLeaseResponse): LeaseRenewal {
  return {
    renewed: response.renewed,
    cancelAction: actionFromProto("cancel_action", response.cancelAction),
  };
}

/** The finalization answer. */
export function finalizationFromProto(
  response: FinalizeIfNotCancelledResponse,
): StatusFinalization {
  return {
    finalized: response.finalized,
    cancelAction: actionFromProto("cancel_action", response.cancelAction),
  };
}

/** renewLease's arguments as its request. */
export function leaseCallRequest(runId: string, ownerWorkerId: string, value: Lease) {
  return {
    runId: text("run_id", runId),
    ownerWorkerId: text("owner_worker_id", ownerWorkerId),
    lease: lease("lease", value),
  };
}

/** A required cancel action: a wrong name must not be sent as UNSPECIFIED. */
export function actionRequest(field: string, action: CancelAction) {
  return actionToProto(checkCancelAction(field, action));
}

/** claimForTakeover's options as request fields; `error` is required, even empty. */
export function takeoverRequest(options: TakeoverOptions) {
  if (options === null || typeof options !== "object") {
    throw invalidArgument("options", "must be an object with error");
  }
  return {
    error: checkString("error", options.error, 0, Number.POSITIVE_INFINITY),
    stopReason: text("stop_reason", options.stopReason),
    graceSeconds: optionalCount("grace_seconds", options.graceSeconds),
  };
}

/** getManyByThread's ids: each a string the wire can carry. */
export function runIdsRequest(runIds: readonly string[]): string[] {
  if (!Array.isArray(runIds)) throw invalidArgument("run_ids", "must be a list of run ids");
  return runIds.map((id) => checkString("run_ids", id, 0, Number.POSITIVE_INFINITY));
}

/** A usage map as request entries; null/undefined are left unset. */
export function usageMapRequest(value: Record<string, ModelUsage> | null | undefined) {
  return value === undefined || value === null
    ? undefined
    : usageMapToProto(checkUsageMap("token_usage_by_model", value));
}

/** A progress snapshot's usage map, wrapped so that "not given" differs from empty. */
export function usageSnapshotRequest(value: Record<string, ModelUsage> | null | undefined) {
  const models = usageMapRequest(value);
  return models === undefined ? undefined : { models };
}

/** The row an idempotency conflict refers to without carrying it. */
export interface ConflictReference {
  runId: string;
  /** The key the row held; "" when the reference lacks it, which matches no row (keys are 1–255 characters). */
  idempotencyKey: string;
}

/**
 * The run id and key of an idempotency conflict whose detail is a reference
 * (a Run with no created_at: the server sends a row too large for a gRPC
 * trailer that way), or null when `error` is not such a conflict.
 */
export function referencedConflictRow(error: unknown): ConflictReference | null {
  if (!(error instanceof ConnectError) || error.code !== Code.AlreadyExists) return null;
  const [detail] = error.findDetails(IdempotencyConflictSchema);
  const row = detail?.existing;
  return row !== undefined && row.createdAt === undefined
    ? { runId: row.runId, idempotencyKey: row.idempotencyKey ?? "" }
    : null;
}

/** A server's answer that breaks the contract: the client cannot map it. */
function badResponse(what: string) {
  return new ConnectError(`server answered ${what}`, Code.Internal);
}
