import type {
  DeleteThreadOptions,
  OwnerOptions,
  Page,
  PageRequest,
  RunStatus,
  ThreadSummary,
} from "@runstore/client";
import { checkDeleteThread, checkThreadListing, pageOf } from "./check-history.js";
import { threadActiveError, threadStatus } from "./history-rules.js";
import { COORDINATION_STATEMENTS, rowsOf, type SqlSession } from "./mysql-coordination.js";
import { and, type PageSlice, type Sql, sql } from "./mysql-pages.js";
import { ACTIVE, fromSql, text, toSql } from "./mysql-rows.js";

// ListThreads and DeleteThread on MySQL (docs/contract.md, "list_threads",
// "delete_thread").
//
// ListThreads groups the visible runs by thread_id and keeps the groups
// after the previous page's (last_activity_at, thread_id), newest first:
// the sort key is a MAX over each thread's runs, which no index holds, so
// every page groups all of the caller's visible runs (an index range on the
// user's runs; the whole kind when no user is given) and sorts the groups.
// Only the page's threads then look up their latest visible run (three
// probes of runs_thread_created: id, status, updated_at) and whether any row
// of the thread is active (runs_thread_status). Measured at 100k rows (95k
// runs, 10k threads, MariaDB 10.11 on a loaded 2-core machine): a user's
// page (100 runs) 2.4 ms; a page over every user ~2.3 s, which grows with
// the table.

/** The most rows one DELETE of DeleteThread removes (each its own short transaction). */
export const DELETE_BATCH = 500;

/** The visible runs: kind run, the user's when given. */
function visible(userId: string | null, alias = ""): Sql[] {
  const column = (name: string) => `${alias}${name}`;
  return userId === null
    ? [sql(`${column("operation_kind")} = 'run'`)]
    : [sql(`${column("operation_kind")} = 'run'`), sql(`${column("user_id")} = ?`, userId)];
}

/** The thread's latest visible run's `column` (newest by created_at, then run_id). */
function latest(column: string, userId: string | null): Sql {
  const where = and([sql("l.thread_id = p.thread_id"), ...visible(userId, "l.")]);
  return {
    sql:
      `(SELECT l.${column} FROM runs l FORCE INDEX (runs_thread_created) WHERE ${where.sql} ` +
      "ORDER BY l.created_at DESC, l.run_id DESC LIMIT 1)",
    values: where.values,
  };
}

/** The statement of one ListThreads page: `size + 1` thread summaries. */
export function threadListingStatement(userId: string | null, page: PageSlice): Sql {
  const groups = and(visible(userId));
  const after =
    page.after === null
      ? sql("")
      : sql(
          "HAVING last_activity_at < ? OR (last_activity_at = ? AND thread_id < ?)",
          toSql(page.after[0] as string),
          toSql(page.after[0] as string),
          page.after[1] as string,
        );
  const id = latest("run_id", userId);
  const status = latest("status", userId);
  const updatedAt = latest("updated_at", userId);
  return {
    sql:
      "SELECT p.thread_id, p.run_count, p.last_activity_at, p.total_tokens, " +
      `${id.sql} AS latest_run_id, ${status.sql} AS latest_status, ` +
      `${updatedAt.sql} AS latest_updated_at, ` +
      `EXISTS (SELECT 1 FROM runs a WHERE a.thread_id = p.thread_id AND a.status IN ${ACTIVE}) AS busy ` +
      "FROM (SELECT thread_id, COUNT(*) AS run_count, MAX(updated_at) AS last_activity_at, " +
      `SUM(total_tokens) AS total_tokens FROM runs ${userId === null ? "" : "FORCE INDEX (runs_kind_user_created) "}` +
      `WHERE ${groups.sql} GROUP BY thread_id ${after.sql} ` +
      "ORDER BY last_activity_at DESC, thread_id DESC LIMIT ?) AS p " +
      "ORDER BY p.last_activity_at DESC, p.thread_id DESC",
    values: [
      ...id.values,
      ...status.values,
      ...updatedAt.values,
      ...groups.values,
      ...after.values,
      String(page.size + 1),
    ],
  };
}

interface ThreadRow {
  thread_id: Buffer | string;
  run_count: number | string;
  last_activity_at: string;
  total_tokens: number | string;
  latest_run_id: Buffer | string;
  latest_status: RunStatus;
  latest_updated_at: string;
  busy: number | string;
}

/** A page of the threads with visible runs, most recent activity first. */
export async function listThreadsPage(
  db: SqlSession,
  options: OwnerOptions | undefined,
  page: PageRequest | undefined,
): Promise<Page<ThreadSummary>> {
  const input = checkThreadListing(options, page);
  const statement = threadListingStatement(input.userId, input.page);
  const rows = rowsOf<ThreadRow>(await db.run(statement.sql, statement.values));
  const threads = rows.map(
    (row): ThreadSummary => ({
      threadId: text(row.thread_id) as string,
      runCount: Number(row.run_count),
      latestRunId: text(row.latest_run_id) as string,
      latestRunStatus: row.latest_status,
      latestRunUpdatedAt: fromSql(row.latest_updated_at),
      lastActivityAt: fromSql(row.last_activity_at),
      totalTokens: Number(row.total_tokens),
      status: threadStatus(Number(row.busy) === 1, row.latest_status),
    }),
  );
  return pageOf(threads, input.page, (t) => [t.lastActivityAt, t.threadId]);
}

/**
 * One batch of DeleteThread: at most DELETE_BATCH of the thread's rows
 * (only the user's when given; only rows that are not active unless
 * `force`), through one of the thread's indexes. No ORDER BY: MariaDB
 * sorts a DELETE's rows (all of the thread's) before it applies the LIMIT.
 */
export function deleteBatchStatement(threadId: string, userId: string | null, force: boolean): Sql {
  const where = and([
    sql("thread_id = ?", threadId),
    ...(userId === null ? [] : [sql("user_id = ?", userId)]),
    ...(force ? [] : [sql(`status NOT IN ${ACTIVE}`)]),
  ]);
  return {
    sql: `DELETE FROM runs WHERE ${where.sql} LIMIT ${DELETE_BATCH}`,
    values: where.values,
  };
}

/**
 * Removes the thread's rows of every kind (the user's only when given) in
 * batches of at most DELETE_BATCH rows, each DELETE its own transaction;
 * answers how many it removed. Without force, a thread with an active row
 * (any kind, any user) is refused first, and each batch still leaves
 * active rows alone, so an admission racing in after the check survives.
 */
export async function deleteThread(
  db: SqlSession,
  threadId: string,
  options: DeleteThreadOptions | undefined,
): Promise<number> {
  const input = checkDeleteThread(threadId, options);
  if (!input.force) {
    const active = await db.run(COORDINATION_STATEMENTS.firstActiveOfThread, [input.threadId]);
    if (rowsOf(active).length > 0) throw threadActiveError(input.threadId);
  }
  const batch = deleteBatchStatement(input.threadId, input.userId, input.force);
  let deleted = 0;
  for (;;) {
    const removed = (await db.run(batch.sql, batch.values)) as { affectedRows: number };
    deleted += removed.affectedRows;
    if (removed.affectedRows < DELETE_BATCH) return deleted;
  }
}
