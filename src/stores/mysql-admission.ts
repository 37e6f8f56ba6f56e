import {
  type Admission,
  type Lease,
  nowTimestamp,
  type RunRecord,
  type ThreadOperationFields,
} from "@runstore/client";
import {
  idempotencyConflictError,
  runIdTakenError,
  threadConflictError,
} from "@runstore/client/internal";
import { type AdmissionInput, checkAdmission, checkClaimNext } from "./check-coordination.js";
import { isRetryOf, TAKEN_OVER_ERROR } from "./coordination-rules.js";
import {
  holdersOf,
  rowsOf,
  COORDINATION_STATEMENTS as S,
  type SqlSession,
  type SqlTransaction,
  stillColliding,
} from "./mysql-coordination.js";
import { conflictOf, duplicateKeyOf } from "./mysql-errors.js";
import { checkThreadOwners } from "./mysql-owners.js";
import {
  fromRow,
  graceValue,
  leaseValues,
  type RunRow,
  SELECT_RUN,
  text,
  toSql,
} from "./mysql-rows.js";
import { type Owners, ownedBy, runNotYours } from "./owners.js";

// MysqlRunStore's admission of operations on a thread and its queue
// (docs/contract.md, "create_thread_operation_atomic", "claim_next_run").
// Each attempt is one transaction. The database keeps one slot holder per
// thread (the UNIQUE index on active_thread_id), so what a concurrent
// admission or claim on another replica did shows up here as a duplicate
// key at the INSERT / UPDATE: the transaction rolls back, and the attempt
// either becomes that conflict or looks at the thread again.

/** Attempts of one admission while concurrent ones keep changing the thread under it. */
const ADMISSION_ATTEMPTS = 5;

/** Attempts of one claim while other claimers keep winning the threads it picked. */
const CLAIM_ATTEMPTS = 20;

/** A thread's active row, locked, with whether its lease expired past grace on the database clock. */
type ActiveRow = RunRow & { lease_expired: number | string };

/**
 * createThreadOperation: idempotency key, then run id, then the strategy, in
 * one transaction. A duplicate key at the INSERT means a concurrent
 * admission got there first: on the idempotency key, or on the slot for
 * reject, that is the conflict (naming whoever holds it); on the run id, or
 * on the slot for interrupt / rollback, the next attempt looks again. On a
 * view with `owners`, a run id another user holds is PERMISSION_DENIED, and
 * so is a thread holding a row none of them owns, checked once the new row
 * is inserted (mysql-owners.ts), after the strategy's own conflict.
 */
export async function createThreadOperation(
  db: SqlSession,
  runId: string,
  fields: ThreadOperationFields,
  owners: Owners | null,
): Promise<Admission> {
  const input = checkAdmission(runId, fields);
  const holders = holdersOf(db, input);
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => admit(tx, input, owners));
    } catch (error) {
      const key = duplicateKeyOf(error);
      if (key === null) throw error;
      const settled =
        key === "idempotency_key" ||
        (key === "thread_slot" && input.multitaskStrategy === "reject") ||
        attempt === ADMISSION_ATTEMPTS;
      if (settled) {
        const conflict = await conflictOf(key, holders);
        if (conflict !== null) throw conflict;
        if (attempt === ADMISSION_ATTEMPTS) throw stillColliding();
      }
    }
  }
}

async function admit(
  tx: SqlTransaction,
  input: AdmissionInput,
  owners: Owners | null,
): Promise<Admission> {
  if (input.idempotencyKey !== null) {
    const [holder] = rowsOf(await tx.run(S.keyHolder, [input.idempotencyKey]));
    if (holder !== undefined) throw idempotencyConflictError(fromRow(holder));
  }
  const [existing] = rowsOf(await tx.run(SELECT_RUN, [input.runId]));
  if (existing !== undefined) {
    const row = fromRow(existing);
    // A stored row is answered, never written: its owner needs no lock.
    if (owners !== null && !ownedBy(owners, row.userId)) throw runNotYours();
    if (isRetryOf(row, input)) return { run: row, takenOver: [] };
    throw runIdTakenError(input.runId);
  }
  const now = nowTimestamp();
  const enqueue = input.multitaskStrategy === "enqueue";
  const takenOver = enqueue ? [] : await clearThread(tx, input, now);
  await tx.run(S.insertOperation, [
    input.runId,
    input.threadId,
    input.assistantId,
    input.userId,
    input.modelName,
    input.multitaskStrategy,
    JSON.stringify(input.metadata),
    JSON.stringify(input.kwargs),
    input.operationKind,
    // A queued row has no owner and no lease until it is claimed.
    enqueue ? null : input.ownerWorkerId,
    ...leaseValues(enqueue ? null : input.lease),
    input.idempotencyKey,
    input.followUpToRunId,
    enqueue ? 1 : 0,
    enqueue ? 0 : 1,
    toSql(input.createdAt ?? now),
    toSql(now),
  ]);
  if (owners !== null) await checkThreadOwners(tx, input.threadId, owners);
  const [row] = rowsOf(await tx.run(SELECT_RUN, [input.runId]));
  return { run: fromRow(row as RunRow), takenOver };
}

/**
 * Frees the thread for a reject / interrupt / rollback admission, or throws
 * a thread conflict having changed nothing. Reject refuses any active row;
 * interrupt / rollback lock every active row, refuse when one has a live
 * lease held by another worker (a null owner included) or is not a run, and
 * otherwise take them all over. Answers the rows taken over, oldest first.
 */
async function clearThread(
  tx: SqlTransaction,
  input: AdmissionInput,
  now: string,
): Promise<RunRecord[]> {
  if (input.multitaskStrategy === "reject") {
    const [active] = rowsOf(await tx.run(S.firstActiveOfThread, [input.threadId]));
    if (active !== undefined) {
      throw threadConflictError(input.threadId, text(active.run_id) as string);
    }
    return [];
  }
  const grace = graceValue(input.graceSeconds);
  const active = rowsOf<ActiveRow>(await tx.run(S.lockActiveOfThread, [grace, input.threadId]));
  const blocking = active.find(
    (row) =>
      Number(row.lease_expired) !== 1 &&
      (text(row.owner_worker_id) !== input.ownerWorkerId || row.operation_kind !== "run"),
  );
  if (blocking !== undefined) {
    throw threadConflictError(input.threadId, text(blocking.run_id) as string);
  }
  const takenOver: RunRecord[] = [];
  for (const row of active) {
    const runId = text(row.run_id) as string;
    await tx.run(S.takeOver, [TAKEN_OVER_ERROR, input.ownerWorkerId, toSql(now), runId]);
    takenOver.push({
      ...fromRow(row),
      status: "interrupted",
      error: TAKEN_OVER_ERROR,
      ownerWorkerId: input.ownerWorkerId,
      queued: false,
      updatedAt: now,
    });
  }
  return takenOver;
}

/**
 * claimNextRun: the oldest queued run created by now that heads its own
 * thread's queue, on a thread whose slot is free, becomes the caller's,
 * running and holding the slot. Rows another claimer has locked are
 * skipped (FOR UPDATE SKIP LOCKED); when the slot turns out taken at the
 * UPDATE (a claimer or admission on that thread committed first), the next
 * attempt sees that holder and picks another run.
 */
export async function claimNextRun(
  db: SqlSession,
  ownerWorkerId: string,
  lease: Lease,
  options: { threadId?: string | null } | undefined,
): Promise<RunRecord | null> {
  const input = checkClaimNext(ownerWorkerId, lease, options);
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => claim(tx, input));
    } catch (error) {
      if (duplicateKeyOf(error) !== "thread_slot") throw error;
      if (attempt === CLAIM_ATTEMPTS) throw stillColliding();
    }
  }
}

async function claim(
  tx: SqlTransaction,
  input: ReturnType<typeof checkClaimNext>,
): Promise<RunRecord | null> {
  const [next] = rowsOf(
    input.threadId === null
      ? await tx.run(S.nextQueued, [])
      : await tx.run(S.nextQueuedOfThread, [input.threadId]),
  );
  if (next === undefined) return null;
  const runId = text(next.run_id) as string;
  const now = toSql(nowTimestamp());
  await tx.run(S.claim, [input.ownerWorkerId, ...leaseValues(input.lease), now, runId]);
  const [row] = rowsOf(await tx.run(SELECT_RUN, [runId]));
  return fromRow(row as RunRow);
}
