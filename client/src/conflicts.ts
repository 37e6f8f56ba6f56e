import { Code, ConnectError } from "@connectrpc/connect";
import { IdempotencyConflictSchema, ThreadConflictSchema } from "./gen/runstore/v1/run_store_pb.js";
import { runFromProto, runToProto } from "./proto-convert.js";
import type { RunRecord } from "./run-store.js";

// The expected refusals of part 2 (docs/contract.md, "Conflicts"), with their
// typed error details: built by the stores, sent as gRPC status details by
// the server, decoded by the SDK. Conflicts are outcomes, never retried.

/** The thread and the active run that made an admission fail. */
export interface ThreadConflictInfo {
  threadId: string;
  conflictingRunId: string;
}

/** Aborted: the thread has an active operation; the detail names it. */
export function threadConflictError(threadId: string, conflictingRunId: string): ConnectError {
  return new ConnectError(
    `thread_id ${threadId} is busy: run ${conflictingRunId} is active`,
    Code.Aborted,
    undefined,
    [{ desc: ThreadConflictSchema, value: { threadId, conflictingRunId } }],
  );
}

/** AlreadyExists: another run holds the idempotency key; the detail is that run. */
export function idempotencyConflictError(existing: RunRecord): ConnectError {
  return new ConnectError(
    `idempotency_key is held by run ${existing.runId}`,
    Code.AlreadyExists,
    undefined,
    [{ desc: IdempotencyConflictSchema, value: { existing: runToProto(existing) } }],
  );
}

/** AlreadyExists without a detail: the run id is taken by a different operation. */
export function runIdTakenError(runId: string): ConnectError {
  return new ConnectError(
    `run_id ${runId} already exists as a different operation`,
    Code.AlreadyExists,
  );
}

/** The thread conflict an admission failed with, or null when `error` is not one. */
export function threadConflict(error: unknown): ThreadConflictInfo | null {
  if (!(error instanceof ConnectError) || error.code !== Code.Aborted) return null;
  const [detail] = error.findDetails(ThreadConflictSchema);
  return detail === undefined
    ? null
    : { threadId: detail.threadId, conflictingRunId: detail.conflictingRunId };
}

/** The run holding the idempotency key a write failed on, or null when `error` is not that. */
export function idempotencyConflict(error: unknown): RunRecord | null {
  if (!(error instanceof ConnectError) || error.code !== Code.AlreadyExists) return null;
  const [detail] = error.findDetails(IdempotencyConflictSchema);
  return detail?.existing === undefined ? null : runFromProto(detail.existing);
}
