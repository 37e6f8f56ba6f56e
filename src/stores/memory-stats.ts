import type { RunStats, RunStatsOptions } from "@runstore/client";
import { checkStats } from "./check-history.js";
import type { MemoryRunTable } from "./memory-run-table.js";
import { RunStatsTally } from "./run-stats-tally.js";

// MemoryRunStore's get_run_stats (docs/contract.md, "History"): one pass over
// every row (a full scan, a few milliseconds per 100,000 rows in memory),
// counting the runs (operation kind run) of the user and creation range.

/** Counts and token totals of the runs in scope, in all and per local day. */
export function getRunStats(table: MemoryRunTable, options: RunStatsOptions | undefined): RunStats {
  const input = checkStats(options);
  const tally = new RunStatsTally(input.offsetMinutes);
  for (const row of table.allRows()) {
    if (
      row.operationKind === "run" &&
      (input.userId === null || row.userId === input.userId) &&
      (input.createdAfter === null || row.createdAt >= input.createdAfter) &&
      (input.createdBefore === null || row.createdAt < input.createdBefore)
    ) {
      tally.add(row);
    }
  }
  return tally.result();
}
