import {
  type CancelAction,
  type ExpiredLeaseOptions,
  type Lease,
  type LeaseRenewal,
  nowTimestamp,
  type RunRecord,
  type RunStatus,
  type StatusFinalization,
  type TakeoverOptions,
} from "@runstore/client";
import { checkId } from "@runstore/client/internal";
import {
  checkCancel,
  checkExpiredLeaseList,
  checkFinalize,
  checkLeaseCall,
  checkTakeover,
} from "./check-coordination.js";
import { CANCELLED_BEFORE_START } from "./coordination-rules.js";
import { expiredPastGrace, leaseExpiry } from "./memory-lease.js";
import { writableRow } from "./memory-owners.js";
import { ACTIVE, copyRow, type MemoryRunTable, type StoredRun } from "./memory-run-table.js";
import type { Owners } from "./owners.js";

// MemoryRunStore's ownership, cancellation and takeover of admitted runs
// (docs/contract.md, "Coordination"). Each function is one conditional
// write, read and written synchronously, so of racing callers one wins. On
// a view with owners (owners.ts) the row's owner is checked in that same step.

/** pending → running; a queued run starts only through claimNextRun. */
export function startRun(table: MemoryRunTable, runId: string, owners: Owners | null): boolean {
  const row = writableRow(table, checkId("run_id", runId), owners);
  if (row === undefined || row.status !== "pending" || row.queued) return false;
  table.write(row, { status: "running", updatedAt: nowTimestamp() });
  return true;
}

/** Extends an active run's lease for its owner, answering the recorded cancel. */
export function renewLease(
  table: MemoryRunTable,
  runId: string,
  ownerWorkerId: string,
  lease: Lease,
  owners: Owners | null,
): LeaseRenewal {
  const input = checkLeaseCall(runId, ownerWorkerId, lease);
  const row = writableRow(table, input.runId, owners);
  if (row === undefined || !ACTIVE.has(row.status) || row.ownerWorkerId !== input.ownerWorkerId) {
    return { renewed: false, cancelAction: null };
  }
  const now = nowTimestamp();
  table.write(row, { leaseExpiresAt: leaseExpiry(input.lease, now), updatedAt: now });
  return { renewed: true, cancelAction: row.cancelAction };
}

/**
 * Records the first cancel request of an active run. A queued run has no
 * owner to see it, so it is interrupted at once and never claimed.
 */
export function requestCancel(
  table: MemoryRunTable,
  runId: string,
  action: CancelAction,
  owners: Owners | null,
): CancelAction | null {
  const input = checkCancel(runId, action);
  const row = writableRow(table, input.runId, owners);
  if (row === undefined || !ACTIVE.has(row.status)) return null;
  const now = nowTimestamp();
  const changes: Partial<StoredRun> = { updatedAt: now };
  if (row.cancelAction === null) {
    changes.cancelAction = input.action;
    changes.cancelRequestedAt = now;
  }
  if (row.queued) {
    changes.status = "interrupted";
    changes.error = CANCELLED_BEFORE_START;
  }
  table.write(row, changes);
  return row.cancelAction;
}

/** Ends an active run unless a cancel is recorded; otherwise answers that cancel. */
export function finalizeIfNotCancelled(
  table: MemoryRunTable,
  runId: string,
  status: RunStatus,
  options: { error?: string | null; stopReason?: string | null } | undefined,
  owners: Owners | null,
): StatusFinalization {
  const input = checkFinalize(runId, status, options);
  const row = writableRow(table, input.runId, owners);
  if (row === undefined) return { finalized: false, cancelAction: null };
  if (!ACTIVE.has(row.status) || row.cancelAction !== null) {
    return { finalized: false, cancelAction: row.cancelAction };
  }
  const changes: Partial<StoredRun> = { status: input.status, updatedAt: nowTimestamp() };
  if (input.error !== null) changes.error = input.error;
  if (input.stopReason !== null) changes.stopReason = input.stopReason;
  table.write(row, changes);
  return { finalized: true, cancelAction: null };
}

/** Marks an active, unqueued run whose lease expired past grace as error. */
export function claimForTakeover(
  table: MemoryRunTable,
  runId: string,
  options: TakeoverOptions,
  owners: Owners | null,
): boolean {
  const input = checkTakeover(runId, options);
  const row = writableRow(table, input.runId, owners);
  const now = nowTimestamp();
  if (row === undefined || !isOrphan(row, now, input.graceSeconds)) return false;
  const changes: Partial<StoredRun> = { status: "error", error: input.error, updatedAt: now };
  if (input.stopReason !== null) changes.stopReason = input.stopReason;
  table.write(row, changes);
  return true;
}

/** Active, unqueued rows of every kind created by `before` whose lease expired past grace. */
export function listInflightWithExpiredLease(
  table: MemoryRunTable,
  options: ExpiredLeaseOptions | undefined,
): RunRecord[] {
  const input = checkExpiredLeaseList(options);
  const now = nowTimestamp();
  return table
    .activeCreatedBy(input.before ?? now, (row) => isOrphan(row, now, input.graceSeconds))
    .map(copyRow);
}

/** An active row no live owner holds: not queued (a queued row waits), lease expired past grace. */
export function isOrphan(row: StoredRun, now: string, graceSeconds: number): boolean {
  return (
    ACTIVE.has(row.status) && !row.queued && expiredPastGrace(row.leaseExpiresAt, now, graceSeconds)
  );
}
