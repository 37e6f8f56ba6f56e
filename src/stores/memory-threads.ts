import type {
  DeleteThreadOptions,
  OwnerOptions,
  Page,
  PageRequest,
  ThreadSummary,
} from "@runstore/client";
import { checkDeleteThread, checkThreadListing } from "./check-history.js";
import { checkedSum, threadActiveError, threadStatus } from "./history-rules.js";
import { descending, keysetPage } from "./memory-keyset.js";
import { ACTIVE, type MemoryRunTable, newestFirst, type StoredRun } from "./memory-run-table.js";

// MemoryRunStore's list_threads and delete_thread (docs/contract.md,
// "History"). Each listing page summarises every thread from its index (a
// full pass over the rows, a few milliseconds per 100,000 in memory) and
// sorts only the page's threads.

/** A page of the threads with visible runs, most recent activity first. */
export function listThreadsPage(
  table: MemoryRunTable,
  options: OwnerOptions | undefined,
  page: PageRequest | undefined,
): Page<ThreadSummary> {
  const input = checkThreadListing(options, page);
  return keysetPage(summaries(table, input.userId), input.page, threadKey, descending);
}

/** The listing's sort key: last activity, then thread id. */
function threadKey(thread: ThreadSummary): string[] {
  return [thread.lastActivityAt, thread.threadId];
}

function* summaries(table: MemoryRunTable, userId: string | null): Iterable<ThreadSummary> {
  for (const threadId of table.threadIds()) {
    const summary = summarise(threadId, table.threadRows(threadId), userId);
    if (summary !== null) yield summary;
  }
}

/** The thread over its visible runs (kind run, `userId`'s when given); null when it has none. */
function summarise(
  threadId: string,
  rows: Iterable<StoredRun>,
  userId: string | null,
): ThreadSummary | null {
  let latest: StoredRun | undefined;
  let runCount = 0;
  let totalTokens = 0;
  let lastActivityAt = "";
  let busy = false;
  for (const row of rows) {
    busy ||= ACTIVE.has(row.status);
    if (row.operationKind !== "run" || (userId !== null && row.userId !== userId)) continue;
    runCount++;
    totalTokens += row.totalTokens;
    if (row.updatedAt > lastActivityAt) lastActivityAt = row.updatedAt;
    if (latest === undefined || newestFirst(row, latest) < 0) latest = row;
  }
  if (latest === undefined) return null;
  return {
    threadId,
    runCount,
    latestRunId: latest.runId,
    latestRunStatus: latest.status,
    latestRunUpdatedAt: latest.updatedAt,
    lastActivityAt,
    totalTokens: checkedSum(totalTokens, `total_tokens of thread_id ${threadId}`),
    status: threadStatus(busy, latest.status),
  };
}

/**
 * Removes the thread's rows of every kind (only `userId`'s when given);
 * without force, FAILED_PRECONDITION while any row of the thread is active.
 * One synchronous step, so no admission can come between the check and the
 * removal; answers how many rows went.
 */
export function deleteThread(
  table: MemoryRunTable,
  threadId: string,
  options: DeleteThreadOptions | undefined,
): number {
  const input = checkDeleteThread(threadId, options);
  const rows = [...table.threadRows(input.threadId)];
  if (!input.force && rows.some((row) => ACTIVE.has(row.status))) {
    throw threadActiveError(input.threadId);
  }
  const doomed = rows.filter((row) => input.userId === null || row.userId === input.userId);
  for (const row of doomed) table.remove(row);
  return doomed.length;
}
