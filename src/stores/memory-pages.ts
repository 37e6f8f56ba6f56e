import {
  type ExpiredLeaseOptions,
  nowTimestamp,
  type OwnerOptions,
  type Page,
  type PageRequest,
  type RecoveryOptions,
  type RunRecord,
} from "@runstore/client";
import { checkExpiredLeaseList } from "./check-coordination.js";
import {
  checkExpiredLeasePage,
  checkRecoveryPage,
  checkThreadPage,
  type PageInput,
  runKey,
} from "./check-history.js";
import { isOrphan } from "./memory-coordination.js";
import { ascending, descending, type KeyOrder, keysetPage } from "./memory-keyset.js";
import { copyRow, type MemoryRunTable, type StoredRun } from "./memory-run-table.js";
import { visibleRuns } from "./memory-thread-reads.js";

// MemoryRunStore's keyset pages of the part-1 and part-2 lists
// (docs/contract.md, "History"): each page holds the same rows as the unpaged
// call, read from the same index (the thread's rows, the active rows).

/** A page of `rows` after the page's run key in `order`, as copies. */
export function runPage(
  rows: Iterable<StoredRun>,
  page: PageInput,
  order: KeyOrder,
): Page<RunRecord> {
  const found = keysetPage(rows, page, runKey, order);
  return { ...found, items: found.items.map(copyRow) };
}

/** listByThread's rows, newest first, from the thread's index. */
export function listByThreadPage(
  table: MemoryRunTable,
  threadId: string,
  options: OwnerOptions | undefined,
  page: PageRequest | undefined,
): Page<RunRecord> {
  const input = checkThreadPage(threadId, options, page);
  return runPage(visibleRuns(table, input.threadId, input.userId), input.page, descending);
}

/** listPending's rows (pending runs created by `before`, pinned by the first page), oldest first. */
export function listPendingPage(
  table: MemoryRunTable,
  options: RecoveryOptions | undefined,
  page: PageRequest | undefined,
): Page<RunRecord> {
  const input = checkRecoveryPage("list_pending", options, page);
  const rows = activeWhere(
    table,
    (row) =>
      row.status === "pending" && row.operationKind === "run" && row.createdAt <= input.before,
  );
  return runPage(rows, input.page, ascending);
}

/** listInflight's rows (active rows of every kind created by `before`), oldest first. */
export function listInflightPage(
  table: MemoryRunTable,
  options: RecoveryOptions | undefined,
  page: PageRequest | undefined,
): Page<RunRecord> {
  const input = checkRecoveryPage("list_inflight", options, page);
  const rows = activeWhere(table, (row) => row.createdAt <= input.before);
  return runPage(rows, input.page, ascending);
}

/** listInflightWithExpiredLease's rows, oldest first; `before` unset is this page's now. */
export function listInflightWithExpiredLeasePage(
  table: MemoryRunTable,
  options: ExpiredLeaseOptions | undefined,
  page: PageRequest | undefined,
): Page<RunRecord> {
  const { graceSeconds } = checkExpiredLeaseList(options);
  const input = checkExpiredLeasePage(options, page);
  const now = nowTimestamp();
  const before = input.before ?? now;
  const rows = activeWhere(
    table,
    (row) => row.createdAt <= before && isOrphan(row, now, graceSeconds),
  );
  return runPage(rows, input.page, ascending);
}

/** The active rows `wanted` keeps. */
function* activeWhere(
  table: MemoryRunTable,
  wanted: (row: StoredRun) => boolean,
): Iterable<StoredRun> {
  for (const row of table.activeRows()) if (wanted(row)) yield row;
}
