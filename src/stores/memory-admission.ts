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
import { expiredPastGrace, leaseExpiry } from "./memory-lease.js";
import { checkThreadOwners, writableRow } from "./memory-owners.js";
import {
  copyRow,
  holdsSlot,
  type MemoryRunTable,
  newRow,
  oldestFirst,
  type StoredRun,
} from "./memory-run-table.js";
import type { Owners } from "./owners.js";

// MemoryRunStore's admission of operations on a thread and its queue
// (docs/contract.md, "create_thread_operation_atomic", "claim_next_run").
// Each function runs synchronously to its end: all or nothing.

/**
 * createThreadOperation: idempotency key, then run id, then the strategy,
 * then (on a view with owners) the thread's owners: a thread holding a row
 * none of `owners` owns takes no new run of theirs.
 */
export function admit(
  table: MemoryRunTable,
  runId: string,
  fields: ThreadOperationFields,
  owners: Owners | null,
): Admission {
  const input = checkAdmission(runId, fields);
  const holder = input.idempotencyKey === null ? undefined : table.holderOf(input.idempotencyKey);
  if (holder !== undefined) throw idempotencyConflictError(copyRow(holder));
  const existing = writableRow(table, input.runId, owners);
  if (existing !== undefined) {
    if (isRetryOf(existing, input)) return { run: copyRow(existing), takenOver: [] };
    throw runIdTakenError(input.runId);
  }
  const now = nowTimestamp();
  const enqueue = input.multitaskStrategy === "enqueue";
  const takeovers = enqueue ? [] : threadTakeovers(table, input, now);
  checkThreadOwners(table, input.threadId, owners);
  const { lease, graceSeconds: _, ownerWorkerId, ...described } = input;
  const row = newRow(
    {
      ...described,
      status: "pending",
      error: null,
      stopReason: null,
      ownerWorkerId: enqueue ? null : ownerWorkerId,
      leaseExpiresAt: enqueue || lease === null ? null : leaseExpiry(lease, now),
      queued: enqueue,
      holdsSlot: !enqueue,
    },
    now,
  );
  // Room for the new row and every takeover's growth before any row changes:
  // a refused admission changes nothing.
  table.makeRoom(
    table.growth(row) +
      takeovers.reduce(
        (sum, [taken, changes]) => sum + Math.max(0, table.growth(taken, changes)),
        0,
      ),
  );
  for (const [taken, changes] of takeovers) table.write(taken, changes);
  table.insert(row);
  return { run: copyRow(row), takenOver: takeovers.map(([taken]) => copyRow(taken)) };
}

/**
 * What freeing the thread for a reject / interrupt / rollback admission
 * writes into each of its active rows (all of them are taken over), or a
 * thread conflict. Changes nothing itself.
 */
function threadTakeovers(
  table: MemoryRunTable,
  input: AdmissionInput,
  now: string,
): [StoredRun, Partial<StoredRun>][] {
  const active = table.activeRowsOf(input.threadId);
  const blocking =
    input.multitaskStrategy === "reject"
      ? active[0]
      : active.find((row) => blocksTakeover(row, input, now));
  if (blocking !== undefined) throw threadConflictError(input.threadId, blocking.runId);
  return active.map((row) => [
    row,
    {
      status: "interrupted",
      error: TAKEN_OVER_ERROR,
      ownerWorkerId: input.ownerWorkerId,
      holdsSlot: false,
      queued: false,
      updatedAt: now,
    },
  ]);
}

/**
 * Whether an active row keeps an interrupt / rollback admission out: its
 * lease is live (not expired past grace) and it is owned by another worker
 * (a null owner included) or is not a run.
 */
function blocksTakeover(row: StoredRun, input: AdmissionInput, now: string): boolean {
  if (expiredPastGrace(row.leaseExpiresAt, now, input.graceSeconds)) return false;
  return row.ownerWorkerId !== input.ownerWorkerId || row.operationKind !== "run";
}

/**
 * claimNextRun: the oldest queued run created by now that heads its own
 * thread's queue, on a thread whose slot is free; it becomes the caller's,
 * running, holding the slot.
 */
export function claimNextRun(
  table: MemoryRunTable,
  ownerWorkerId: string,
  lease: Lease,
  options: { threadId?: string | null } | undefined,
): RunRecord | null {
  const input = checkClaimNext(ownerWorkerId, lease, options);
  const now = nowTimestamp();
  const heads = new Map<string, StoredRun>();
  for (const row of table.queuedRows()) {
    if (input.threadId !== null && row.threadId !== input.threadId) continue;
    const head = heads.get(row.threadId);
    if (head === undefined || oldestFirst(row, head) < 0) heads.set(row.threadId, row);
  }
  const next = [...heads.values()]
    .filter((row) => row.createdAt <= now && !table.activeRowsOf(row.threadId).some(holdsSlot))
    .sort(oldestFirst)[0];
  if (next === undefined) return null;
  table.write(next, {
    status: "running",
    ownerWorkerId: input.ownerWorkerId,
    leaseExpiresAt: leaseExpiry(input.lease, now),
    holdsSlot: true,
    queued: false,
    updatedAt: now,
  });
  return copyRow(next);
}
