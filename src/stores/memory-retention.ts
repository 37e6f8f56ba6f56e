import { checkClaimSweep, checkSweepTerminal } from "./check-retention.js";
import type { MemoryRunTable } from "./memory-run-table.js";

// RETENTION_DAYS on the memory store (retention.ts, docs/operations.md
// "Retention"): the table keeps its terminal rows in a heap ordered by
// updated_at (memory-eviction.ts, the order MEMORY_MAX_RUNS evicts in), so a
// batch pops the oldest ones until it reaches the cutoff or its limit,
// O(log n) a row; active rows are never in the heap.

/** One process holds the store, so its one sweeper always holds the sweep. */
export function claimSweep(holder: string, leaseMs: number): boolean {
  checkClaimSweep(holder, leaseMs);
  return true;
}

/**
 * Deletes at most `limit` terminal rows (success, error, timeout,
 * interrupted) whose updated_at is before `cutoff`, oldest first (ties by
 * run_id); answers how many.
 */
export function sweepTerminal(table: MemoryRunTable, cutoff: string, limit: number): number {
  const input = checkSweepTerminal(cutoff, limit);
  let deleted = 0;
  while (deleted < input.limit) {
    const row = table.oldestTerminal();
    if (row === undefined || row.updatedAt >= input.cutoff) break;
    table.remove(row);
    deleted++;
  }
  return deleted;
}
