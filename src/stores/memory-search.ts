import type { JsonObject } from "@bufbuild/protobuf";
import type { Page, PageRequest, RunRecord, RunSearch } from "@runstore/client";
import { checkSearch, type SearchInput } from "./check-history.js";
import { descending } from "./memory-keyset.js";
import { runPage } from "./memory-pages.js";
import type { MemoryRunTable, StoredRun } from "./memory-run-table.js";

// MemoryRunStore's search_runs (docs/contract.md, "History"). With a
// thread_id the thread's index gives the candidates; otherwise every row is
// a candidate: a full scan, which in memory costs a few milliseconds per
// 100,000 rows and needs no index of its own. Only the page's rows are sorted.

/** A page of the runs matching every filter, newest first. */
export function searchRunsPage(
  table: MemoryRunTable,
  search: RunSearch | undefined,
  page: PageRequest | undefined,
): Page<RunRecord> {
  const input = checkSearch(search, page);
  const filters = input.filters;
  const candidates =
    filters.threadId === null ? table.allRows() : table.threadRows(filters.threadId);
  return runPage(matching(candidates, filters), input.page, descending);
}

function* matching(rows: Iterable<StoredRun>, filters: SearchInput): Iterable<StoredRun> {
  for (const row of rows) if (matches(row, filters)) yield row;
}

/** Whether every given filter holds for `row`. */
function matches(row: StoredRun, f: SearchInput): boolean {
  return (
    (f.userId === null || row.userId === f.userId) &&
    (f.threadId === null || row.threadId === f.threadId) &&
    (f.statuses.length === 0 || f.statuses.includes(row.status)) &&
    (f.assistantId === null || row.assistantId === f.assistantId) &&
    (f.modelName === null || row.modelName === f.modelName) &&
    f.operationKinds.includes(row.operationKind) &&
    (f.createdAfter === null || row.createdAt >= f.createdAfter) &&
    (f.createdBefore === null || row.createdAt < f.createdBefore) &&
    f.metadata.every(([key, value]) => metadataHolds(row.metadata, key, value))
  );
}

/**
 * A top-level metadata key equal to `value`: a string only to a JSON string,
 * a number only to a JSON number of equal value (1 and 1.0 are one number
 * here), a bool only to a JSON bool; an absent key never matches.
 */
function metadataHolds(
  metadata: JsonObject,
  key: string,
  value: string | number | boolean,
): boolean {
  if (!Object.hasOwn(metadata, key)) return false;
  const stored = metadata[key];
  return typeof stored === typeof value && stored === value;
}
