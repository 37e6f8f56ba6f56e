import type {
  ExpiredLeaseOptions,
  OwnerOptions,
  Page,
  PageRequest,
  RecoveryOptions,
  RunRecord,
} from "@runstore/client";
import { checkExpiredLeaseList } from "./check-coordination.js";
import {
  checkExpiredLeasePage,
  checkRecoveryPage,
  checkThreadPage,
  type PageInput,
  pageOf,
  runKey,
} from "./check-history.js";
import type { SqlSession } from "./mysql-coordination.js";
import {
  COLUMNS,
  EXPIRED_PAST_GRACE,
  fromRow,
  graceValue,
  type SqlValues,
  toSql,
} from "./mysql-rows.js";

// Keyset pages on MySQL (docs/contract.md, "Pages"), and the four part 1 /
// part 2 lists read a page at a time. A page reads `size + 1` rows strictly
// after the previous page's last (created_at, run_id), in one index range
// read in order. Where a list covers several statuses (or a search several
// statuses and kinds), an IN list on the index's middle column would force a
// filesort; instead each status is a branch of its own (one index range,
// its own ORDER BY … LIMIT size + 1) and the branches are merged: UNION ALL,
// ORDER BY, LIMIT size + 1 over at most branches × (size + 1) keys, then the
// rows of the winners only.

/** A piece of SQL and the values of its placeholders, in order. */
export interface Sql {
  sql: string;
  values: SqlValues;
}

/** `text` with its values. */
export function sql(text: string, ...values: SqlValues): Sql {
  return { sql: text, values };
}

/** The conditions joined with AND (an empty list: always true). */
export function and(parts: readonly Sql[]): Sql {
  if (parts.length === 0) return sql("TRUE");
  return { sql: parts.map((p) => p.sql).join(" AND "), values: parts.flatMap((p) => p.values) };
}

/** What a statement needs of a page: its size and the sort key to continue after. */
export type PageSlice = Pick<PageInput, "size" | "after">;

/** Newest first (ListByThread, SearchRuns) or oldest first (the recovery lists). */
export type Order = "newest" | "oldest";

const ORDER_BY: Record<Order, string> = {
  newest: "ORDER BY created_at DESC, run_id DESC",
  oldest: "ORDER BY created_at, run_id",
};

const MERGED_ORDER: Record<Order, string> = {
  newest: "ORDER BY at DESC, run_id DESC",
  oldest: "ORDER BY at, run_id",
};

/** Kind run only, as every part 1 list. */
export const RUNS_ONLY = sql("operation_kind = 'run'");

/**
 * "After the previous page's last row" (none on a first page), written as
 * an OR of a strict bound and an equal-time tie-break, which both optimizers
 * turn into ranges on an index ending in (created_at, run_id).
 */
export function keysetAfter(order: Order, after: readonly string[] | null): Sql[] {
  if (after === null) return [];
  const at = toSql(after[0] as string);
  const id = after[1] as string;
  const op = order === "newest" ? "<" : ">";
  return [sql(`(created_at ${op} ? OR (created_at = ? AND run_id ${op} ?))`, at, at, id)];
}

/**
 * One index range of a page: the index (named, because MariaDB, costing a
 * wide range against the equality prefix alone, would otherwise read the
 * prefix from its newest end and filter) and the condition it serves.
 */
export interface Branch {
  index: string;
  where: Sql;
}

/**
 * The statement reading `size + 1` rows of the branches in `order`: the
 * branch itself when there is one, else the merge described above. Either
 * form starts with `SELECT ${COLUMNS} FROM runs `, so the response budget
 * can size it before the rows load.
 */
export function pageStatement(branches: readonly Branch[], order: Order, size: number): Sql {
  const limit = String(size + 1);
  const from = (b: Branch) =>
    `FROM runs FORCE INDEX (${b.index}) WHERE ${b.where.sql} ${ORDER_BY[order]} LIMIT ?`;
  const [only] = branches;
  if (branches.length === 1 && only !== undefined) {
    return { sql: `SELECT ${COLUMNS} ${from(only)}`, values: [...only.where.values, limit] };
  }
  const parts = branches.map((b) => `(SELECT run_id, created_at AS at ${from(b)})`);
  return {
    sql:
      `SELECT ${COLUMNS} FROM runs JOIN (${parts.join(" UNION ALL ")} ${MERGED_ORDER[order]} LIMIT ?) ` +
      `AS page USING (run_id) ${ORDER_BY[order]}`,
    values: [...branches.flatMap((b) => [...b.where.values, limit]), limit],
  };
}

/** Reads one page with `statement` (from pageStatement): its rows, and a token when more remain. */
export async function readPage(
  db: SqlSession,
  statement: Sql,
  page: PageInput,
): Promise<Page<RunRecord>> {
  const rows = await db.list(statement.sql, statement.values);
  return pageOf(rows.map(fromRow), page, runKey);
}

/** The statement of a ListByThread page: the thread's visible runs, newest first. */
export function listByThreadStatement(
  threadId: string,
  userId: string | null,
  page: PageSlice,
): Sql {
  const where = and([
    sql("thread_id = ?", threadId),
    ...(userId === null ? [] : [sql("user_id = ?", userId)]),
    RUNS_ONLY,
    ...keysetAfter("newest", page.after),
  ]);
  return pageStatement([{ index: "runs_thread_created", where }], "newest", page.size);
}

/** A page of listByThread's rows. */
export async function listByThreadPage(
  db: SqlSession,
  threadId: string,
  options: OwnerOptions | undefined,
  page: PageRequest | undefined,
): Promise<Page<RunRecord>> {
  const input = checkThreadPage(threadId, options, page);
  return readPage(db, listByThreadStatement(input.threadId, input.userId, input.page), input.page);
}

/** The statement of a ListPending page: pending runs created by `before`, oldest first. */
export function pendingPageStatement(before: string, page: PageSlice): Sql {
  const where = and([
    sql("status = 'pending'"),
    RUNS_ONLY,
    sql("created_at <= ?", toSql(before)),
    ...keysetAfter("oldest", page.after),
  ]);
  return pageStatement([{ index: "runs_kind_status_created", where }], "oldest", page.size);
}

/** A page of listPending's rows; `before` unset is pinned by the first page. */
export async function listPendingPage(
  db: SqlSession,
  options: RecoveryOptions | undefined,
  page: PageRequest | undefined,
): Promise<Page<RunRecord>> {
  const input = checkRecoveryPage("list_pending", options, page);
  return readPage(db, pendingPageStatement(input.before, input.page), input.page);
}

/** The active rows (of every kind) under `conditions`, oldest first: one range of runs_status_created per status. */
function activeBranches(conditions: readonly Sql[], page: PageSlice): Branch[] {
  return ["pending", "running"].map((status) => ({
    index: "runs_status_created",
    where: and([sql("status = ?", status), ...conditions, ...keysetAfter("oldest", page.after)]),
  }));
}

/** The statement of a ListInflight page: pending and running rows of every kind, oldest first. */
export function inflightPageStatement(before: string, page: PageSlice): Sql {
  const branches = activeBranches([sql("created_at <= ?", toSql(before))], page);
  return pageStatement(branches, "oldest", page.size);
}

/** A page of listInflight's rows; `before` unset is pinned by the first page. */
export async function listInflightPage(
  db: SqlSession,
  options: RecoveryOptions | undefined,
  page: PageRequest | undefined,
): Promise<Page<RunRecord>> {
  const input = checkRecoveryPage("list_inflight", options, page);
  return readPage(db, inflightPageStatement(input.before, input.page), input.page);
}

/**
 * The statement of an expired-lease page: active, unqueued rows of every
 * kind created by `before` (null: the database's now, on each page) whose
 * lease expired past grace, oldest first.
 */
export function expiredLeasePageStatement(
  before: string | null,
  graceSeconds: number,
  page: PageSlice,
): Sql {
  const created =
    before === null ? sql("created_at <= UTC_TIMESTAMP(6)") : sql("created_at <= ?", toSql(before));
  const expired = sql(EXPIRED_PAST_GRACE, graceValue(graceSeconds));
  const branches = activeBranches([sql("queued = 0"), created, expired], page);
  return pageStatement(branches, "oldest", page.size);
}

/** A page of listInflightWithExpiredLease's rows. */
export async function listInflightWithExpiredLeasePage(
  db: SqlSession,
  options: ExpiredLeaseOptions | undefined,
  page: PageRequest | undefined,
): Promise<Page<RunRecord>> {
  // grace_seconds checked as the unpaged list checks it (default 10).
  const { graceSeconds } = checkExpiredLeaseList(options);
  const input = checkExpiredLeasePage(options, page);
  const statement = expiredLeasePageStatement(input.before, graceSeconds, input.page);
  return readPage(db, statement, input.page);
}
