import type { MemoryRunTable, StoredRun } from "./memory-run-table.js";
import { type Owners, ownedBy, runNotYours, threadNotYours } from "./owners.js";

// MemoryRunStore's owner condition (owners.ts): read in the same synchronous
// step as the write it guards, so no other call can change the row between.

/**
 * The row a write to `runId` changes, or undefined when it is missing;
 * PERMISSION_DENIED when the view acts for `owners` and none of them owns it.
 */
export function writableRow(
  table: MemoryRunTable,
  runId: string,
  owners: Owners | null,
): StoredRun | undefined {
  const row = table.get(runId);
  if (row !== undefined && owners !== null && !ownedBy(owners, row.userId)) throw runNotYours();
  return row;
}

/** Refuses a run created on (or moved onto) a thread holding a row none of `owners` owns. */
export function checkThreadOwners(
  table: MemoryRunTable,
  threadId: string,
  owners: Owners | null,
): void {
  if (owners === null) return;
  for (const row of table.threadRows(threadId)) {
    if (!ownedBy(owners, row.userId)) throw threadNotYours(threadId);
  }
}
