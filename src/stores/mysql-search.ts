import type { Page, PageRequest, RunRecord, RunSearch } from "@runstore/client";
import { checkSearch, type SearchInput } from "./check-history.js";
import type { SqlSession } from "./mysql-coordination.js";
import {
  and,
  keysetAfter,
  type PageSlice,
  pageStatement,
  readPage,
  type Sql,
  sql,
} from "./mysql-pages.js";
import { toSql } from "./mysql-rows.js";

// SearchRuns on MySQL (docs/contract.md, "search_runs"): every filter a
// condition, newest first in keyset pages. The equality filters pick the
// index: a thread's rows through (thread_id, [status,] created_at), else
// (operation_kind, [user_id,] [status,] created_at) (migration 0003), one
// branch per kind and status so each is one ordered range (mysql-pages.ts).
// assistant_id, model_name, created_after/before and metadata are read
// within those ranges: a search whose only filter is metadata reads every
// row of its kinds (newest first, until a page is full).

/** The JSON types a number filter matches (MySQL 8 names four; MariaDB uses INTEGER and DOUBLE). */
const NUMBER_TYPES = "('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')";

/**
 * A metadata equality: the value at the top-level key (a JSON path bound as
 * a value, the key quoted as a JSON string so dots, quotes and stars are
 * only characters) is of the filter's JSON type and equal to it: a string
 * byte for byte, a number as a double (1 and 1.0 are equal), a bool by name.
 * A missing key extracts NULL, which matches nothing.
 */
export function metadataCondition(key: string, value: string | number | boolean): Sql {
  const path = `$.${JSON.stringify(key)}`;
  const at = "JSON_EXTRACT(metadata, ?)";
  if (typeof value === "string") {
    return sql(
      `JSON_TYPE(${at}) = 'STRING' AND CAST(JSON_UNQUOTE(${at}) AS BINARY) = CAST(? AS BINARY)`,
      path,
      path,
      value,
    );
  }
  if (typeof value === "number") {
    return sql(
      `JSON_TYPE(${at}) IN ${NUMBER_TYPES} AND CAST(JSON_UNQUOTE(${at}) AS DOUBLE) = ?`,
      path,
      path,
      value,
    );
  }
  return sql(
    `JSON_TYPE(${at}) = 'BOOLEAN' AND JSON_UNQUOTE(${at}) = ?`,
    path,
    path,
    value ? "true" : "false",
  );
}

/** `column` equal to one of `values` (never empty). */
function oneOf(column: string, values: readonly string[]): Sql {
  if (values.length === 1) return sql(`${column} = ?`, values[0] as string);
  return sql(`${column} IN (${values.map(() => "?").join(", ")})`, ...values);
}

/** The index a branch reads: the equality columns it has, then (created_at, run_id). */
function indexOf(f: SearchInput): string {
  const status = f.statuses.length > 0;
  if (f.threadId !== null) return status ? "runs_thread_status" : "runs_thread_created";
  if (f.userId !== null) return status ? "runs_kind_user_status_created" : "runs_kind_user_created";
  return status ? "runs_kind_status_created" : "runs_kind_created";
}

/**
 * The index ranges a search reads, each a list of equalities: on a thread,
 * one per status (kinds filtered within); otherwise one per kind and status.
 */
function branchesOf(f: SearchInput): Sql[][] {
  const statuses: (string | null)[] = f.statuses.length === 0 ? [null] : f.statuses;
  const status = (s: string | null) => (s === null ? [] : [sql("status = ?", s)]);
  if (f.threadId !== null) {
    const thread = [sql("thread_id = ?", f.threadId), oneOf("operation_kind", f.operationKinds)];
    return statuses.map((s) => [...thread, ...status(s)]);
  }
  return f.operationKinds.flatMap((kind) =>
    statuses.map((s) => [sql("operation_kind = ?", kind), ...status(s)]),
  );
}

/** The conditions every branch shares: the other filters and the page's start. */
function sharedConditions(f: SearchInput, after: readonly string[] | null): Sql[] {
  const shared: Sql[] = [];
  if (f.userId !== null) shared.push(sql("user_id = ?", f.userId));
  // Binary: the column's collation pads spaces, and assistant ids compare exactly.
  if (f.assistantId !== null) {
    shared.push(sql("CAST(assistant_id AS BINARY) = CAST(? AS BINARY)", f.assistantId));
  }
  if (f.modelName !== null) shared.push(sql("model_name = ?", f.modelName));
  if (f.createdAfter !== null) shared.push(sql("created_at >= ?", toSql(f.createdAfter)));
  if (f.createdBefore !== null) shared.push(sql("created_at < ?", toSql(f.createdBefore)));
  for (const [key, value] of f.metadata) shared.push(metadataCondition(key, value));
  return [...shared, ...keysetAfter("newest", after)];
}

/** The statement of one SearchRuns page. */
export function searchStatement(f: SearchInput, page: PageSlice): Sql {
  const shared = sharedConditions(f, page.after);
  const index = indexOf(f);
  const branches = branchesOf(f).map((equalities) => ({
    index,
    where: and([...equalities, ...shared]),
  }));
  return pageStatement(branches, "newest", page.size);
}

/** A page of the runs matching every filter, newest first. */
export async function searchRunsPage(
  db: SqlSession,
  search: RunSearch | undefined,
  page: PageRequest | undefined,
): Promise<Page<RunRecord>> {
  const input = checkSearch(search, page);
  return readPage(db, searchStatement(input.filters, input.page), input.page);
}
