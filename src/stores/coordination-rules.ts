import type { RunRecord } from "@runstore/client";
import type { AdmissionInput } from "./check-coordination.js";

// Rules of part 2 (docs/contract.md, "Coordination") that every backend
// applies alike, kept in one place so the stores cannot drift apart.

/** The error of a row an interrupt / rollback admission took over. */
export const TAKEN_OVER_ERROR = "Cancelled by newer run";

/** The error of a queued run cancelled before any worker claimed it. */
export const CANCELLED_BEFORE_START = "Cancelled before start";

/** An admission whose answer was lost, asked again: same thread, kind and owner (or both queued). */
export function isRetryOf(row: RunRecord, input: AdmissionInput): boolean {
  const bothEnqueue = row.multitaskStrategy === "enqueue" && input.multitaskStrategy === "enqueue";
  return (
    row.threadId === input.threadId &&
    row.operationKind === input.operationKind &&
    (row.ownerWorkerId === input.ownerWorkerId || bothEnqueue)
  );
}
