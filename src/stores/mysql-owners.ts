import type { SqlSession, SqlTransaction } from "./mysql-coordination.js";
import { rowsOf } from "./mysql-coordination.js";
import { text } from "./mysql-rows.js";
import { type Owners, ownedBy, runNotYours, threadNotYours } from "./owners.js";

// MysqlRunStore's owner condition (owners.ts), inside the write's own
// transaction. The pool reads committed data without gap locks
// (mysql-pool.ts), so the condition rests on row locks alone:
//  - a write by run id first locks the row (FOR UPDATE) and reads its owner;
//    an owner another transaction is changing is read once that one commits,
//    and no one can change it after, until this transaction ends. A row that
//    was missing at the lock but matched by the write (inserted and committed
//    in between) is locked by the write and checked again after it.
//  - a new run on a thread is inserted first and the thread's rows are read
//    after, with a locking read: it waits for any row another transaction is
//    inserting or moving there, or whose owner it is changing, so of two
//    users' transactions racing onto one thread the later one sees the
//    earlier one's row (two inserting at once wait on each other: InnoDB
//    picks one as the deadlock victim, and MysqlRunStore retries it whole).

/** Sizes of the owner lists bound: a set is padded up to one of these (or bound as it is, past the last). */
const OWNER_LIST_SIZES = [4, 32] as const;

/** The owner of one run, and its thread, locked until the transaction ends. */
export const LOCK_OWNER = "SELECT user_id, thread_id FROM runs WHERE run_id = ? FOR UPDATE";

/** A row of the thread owned by no user of a list of `size`; every row it passes is locked. */
export function foreignOnThread(size: number): string {
  const users = Array(size).fill("?").join(", ");
  return (
    "SELECT run_id FROM runs FORCE INDEX (runs_thread_created) WHERE thread_id = ? " +
    `AND (user_id IS NULL OR user_id NOT IN (${users})) LIMIT 1 FOR UPDATE`
  );
}

const foreignStatements = new Map<number, string>();

interface LockedOwner {
  userId: string | null;
  threadId: string;
}

/** Run `runId`'s owner and thread, locked; null when it is missing. */
async function lockOwner(tx: SqlTransaction, runId: string): Promise<LockedOwner | null> {
  const [row] = rowsOf<{ user_id: Buffer | null; thread_id: Buffer }>(
    await tx.run(LOCK_OWNER, [runId]),
  );
  return row === undefined
    ? null
    : { userId: text(row.user_id), threadId: text(row.thread_id) as string };
}

function refuseForeign(row: LockedOwner | null, owners: Owners): void {
  if (row !== null && !ownedBy(owners, row.userId)) throw runNotYours();
}

/** Refuses (PERMISSION_DENIED naming the thread) when the thread holds a row none of `owners` owns. */
export async function checkThreadOwners(
  tx: SqlTransaction,
  threadId: string,
  owners: Owners,
): Promise<void> {
  const users = [...owners];
  const size = OWNER_LIST_SIZES.find((n) => n >= users.length) ?? users.length;
  let sql = foreignStatements.get(size);
  if (sql === undefined) {
    sql = foreignOnThread(size);
    foreignStatements.set(size, sql);
  }
  const padded = [...users, ...Array<string>(size - users.length).fill(users[0] as string)];
  const [foreign] = rowsOf(await tx.run(sql, [threadId, ...padded]));
  if (foreign !== undefined) throw threadNotYours(threadId);
}

/**
 * `work`, a write to run `runId`, in one transaction on `db` that applies
 * only while one of `owners` owns the row (a missing row: `work` finds
 * nothing, as without owners). With `threadId`, the write puts the row on
 * that thread: when it is new there (inserted, or moved from another
 * thread), the thread's owners are checked once it is written.
 */
export function ownedWrite<T>(
  db: SqlSession,
  runId: string,
  owners: Owners,
  work: (tx: SqlTransaction) => Promise<T>,
  threadId?: string,
): Promise<T> {
  return db.transaction(async (tx) => {
    const before = await lockOwner(tx, runId);
    refuseForeign(before, owners);
    const result = await work(tx);
    if (before === null) refuseForeign(await lockOwner(tx, runId), owners);
    if (threadId !== undefined && before?.threadId !== threadId) {
      await checkThreadOwners(tx, threadId, owners);
    }
    return result;
  });
}

/**
 * `db` with every statement and transaction a write to run `runId` under
 * the owner condition (ownedWrite): what the part 2 writes run on for a view
 * with owners. Their input is checked before they touch the session, so a
 * bad argument is still INVALID_ARGUMENT before any lock is taken.
 */
export function ownedSession(db: SqlSession, runId: string, owners: Owners): SqlSession {
  return {
    run: (sql, values) => ownedWrite(db, runId, owners, (tx) => tx.run(sql, values)),
    list: (sql, values) => db.list(sql, values),
    transaction: (work) => ownedWrite(db, runId, owners, work),
  };
}
