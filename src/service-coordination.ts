import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { RunStore } from "@runstore/client";
import {
  actionToProto,
  kindFromProto,
  type pb,
  runToProto,
  statusFromProto,
  strategyFromProto,
} from "@runstore/client/internal";
import { withBoundedDetails } from "./bounded-details.js";
import type { ResponseBudget } from "./response-budget.js";
import {
  optionalInteger,
  optionalLease,
  optionalTimestamp,
  requiredAction,
  requiredLease,
} from "./wire-values.js";

// The part-2 RPCs (docs/contract.md, "Coordination"): request → store call →
// response, one function an RPC, called by RunStoreServiceImpl with the store
// bound to the call. Conflicts are the store's ConnectErrors (ABORTED /
// ALREADY_EXISTS with their details) and pass through unchanged.

/** What a handler answers: the response message's init shape. */
type Answer<Schema extends DescMessage> = Promise<MessageInitShape<Schema>>;

/** Admission: the new row and the rows it took over. */
export async function createThreadOperation(
  store: RunStore,
  req: pb.CreateThreadOperationRequest,
): Answer<typeof pb.CreateThreadOperationResponseSchema> {
  const admit = store.createThreadOperation(req.runId, {
    threadId: req.threadId,
    ownerWorkerId: req.ownerWorkerId,
    lease: optionalLease("lease", req.lease),
    operationKind: kindFromProto("operation_kind", req.operationKind),
    multitaskStrategy: strategyFromProto("multitask_strategy", req.multitaskStrategy),
    assistantId: req.assistantId ?? null,
    userId: req.userId ?? null,
    modelName: req.modelName ?? null,
    metadata: req.metadata ?? null,
    kwargs: req.kwargs ?? null,
    createdAt: optionalTimestamp(req.createdAt, "created_at"),
    graceSeconds: optionalInteger(req.graceSeconds),
    idempotencyKey: req.idempotencyKey ?? null,
    followUpToRunId: req.followUpToRunId ?? null,
  });
  const admission = await withBoundedDetails(admit);
  return { run: runToProto(admission.run), takenOver: admission.takenOver.map(runToProto) };
}

/** pending → running, as one conditional write. */
export async function startRun(
  store: RunStore,
  req: pb.StartRunRequest,
): Answer<typeof pb.StartRunResponseSchema> {
  return { started: await store.startRun(req.runId) };
}

/** The lease write and the recorded cancel, read in the same step. */
export async function renewLease(
  store: RunStore,
  req: pb.RenewLeaseRequest,
): Answer<typeof pb.RenewLeaseResponseSchema> {
  const renewal = await store.renewLease(
    req.runId,
    req.ownerWorkerId,
    requiredLease("lease", req.lease),
  );
  return { renewed: renewal.renewed, cancelAction: actionToProto(renewal.cancelAction) };
}

/** The first cancel request wins; the answer is the one recorded. */
export async function requestCancel(
  store: RunStore,
  req: pb.RequestCancelRequest,
): Answer<typeof pb.RequestCancelResponseSchema> {
  const action = await store.requestCancel(req.runId, requiredAction("action", req.action));
  return { cancelAction: actionToProto(action) };
}

/** Completion against cancellation: one compare-and-set. */
export async function finalizeIfNotCancelled(
  store: RunStore,
  req: pb.FinalizeIfNotCancelledRequest,
): Answer<typeof pb.FinalizeIfNotCancelledResponseSchema> {
  const result = await store.finalizeIfNotCancelled(
    req.runId,
    statusFromProto("status", req.status),
    { error: req.error ?? null, stopReason: req.stopReason ?? null },
  );
  return { finalized: result.finalized, cancelAction: actionToProto(result.cancelAction) };
}

/** Reclaims a run whose owner's lease expired past grace. */
export async function claimForTakeover(
  store: RunStore,
  req: pb.ClaimForTakeoverRequest,
): Answer<typeof pb.ClaimForTakeoverResponseSchema> {
  const claimed = await store.claimForTakeover(req.runId, {
    error: req.error,
    stopReason: req.stopReason ?? null,
    graceSeconds: optionalInteger(req.graceSeconds),
  });
  return { claimed };
}

/** The orphaned operations, for a worker's recovery sweep. */
export async function listInflightWithExpiredLease(
  store: RunStore,
  req: pb.ListInflightWithExpiredLeaseRequest,
  budget: ResponseBudget,
) {
  return budget.runs(
    await store.listInflightWithExpiredLease({
      before: optionalTimestamp(req.before, "before"),
      graceSeconds: optionalInteger(req.graceSeconds),
    }),
  );
}

/** The oldest queued run on a free thread; an empty answer when none. */
export async function claimNextRun(
  store: RunStore,
  req: pb.ClaimNextRunRequest,
): Answer<typeof pb.ClaimNextRunResponseSchema> {
  const run = await store.claimNextRun(req.ownerWorkerId, requiredLease("lease", req.lease), {
    threadId: req.threadId ?? null,
  });
  return run === null ? {} : { run: runToProto(run) };
}

/** Several runs of one thread, keyed by run id. */
export async function getManyByThread(
  store: RunStore,
  req: pb.GetManyByThreadRequest,
  budget: ResponseBudget,
): Answer<typeof pb.GetManyByThreadResponseSchema> {
  const found = await store.getManyByThread(req.threadId, req.runIds, {
    userId: req.userId ?? null,
  });
  return budget.runMap(found);
}

/** The regenerate sources of the thread's success runs. */
export async function listSuccessfulRegenerateSources(
  store: RunStore,
  req: pb.ListSuccessfulRegenerateSourcesRequest,
): Answer<typeof pb.ListSuccessfulRegenerateSourcesResponseSchema> {
  const runIds = await store.listSuccessfulRegenerateSources(req.threadId, {
    userId: req.userId ?? null,
  });
  return { runIds };
}

/** The thread's edit-regenerate runs, oldest first. */
export async function listEditRegenerateRuns(
  store: RunStore,
  req: pb.ListEditRegenerateRunsRequest,
  budget: ResponseBudget,
) {
  return budget.runs(
    await store.listEditRegenerateRuns(req.threadId, { userId: req.userId ?? null }),
  );
}
