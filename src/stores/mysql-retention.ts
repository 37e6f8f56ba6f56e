import { checkClaimSweep, checkSweepTerminal } from "./check-retention.js";
import { rowsOf, type SqlSession } from "./mysql-coordination.js";
import { text, toSql } from "./mysql-rows.js";

// RETENTION_DAYS on MySQL (retention.ts, docs/operations.md "Retention").
//
// The sweep lease is a row of runstore_leases (migration 0004_retention),
// taken or renewed by one upsert on the database clock: the row changes
// hands only when its lease has expired or the holder is already the
// caller, and the holder read back in the same transaction says who has
// it. A row lock, not GET_LOCK, so it holds across a Galera cluster (a
// certification conflict comes back as a deadlock and is retried whole).
//
// A batch reads at most `limit` ids through runs_status_updated (one range
// per terminal status, read in index order and stopped at the limit: no
// sort, no active row scanned), then deletes exactly those ids by primary
// key with the condition checked again, as its own autocommit statement:
// a run written since the read (made active again, or updated after the
// cutoff) stays, and only the deleted rows are locked, briefly.
//
// CHANGE_LOG_HOURS prunes the change log (mysql-change-feed.ts) the same
// way: ids read without locks, then deleted by primary key. Numbered
// changes go oldest number first and only as a prefix (the first one not
// old enough stops the batch, even when later ones are older: a long
// transaction commits after changes recorded later), so the log kept is
// always one run of numbers and read() can tell a pruned position from a
// hole. Unnumbered ones (no sequencer ran since: no server had watchers)
// go oldest id first, the same way, and never once numbered meanwhile.

/** The name of the retention sweep's row in runstore_leases. */
export const SWEEP_LEASE = "retention";

const TERMINAL = "('success', 'error', 'timeout', 'interrupted')";

/** Whether a lease row may go to the caller (bound: the caller's holder). */
const OURS_TO_TAKE = "(expires_at <= NOW(6) OR holder = ?)";

/**
 * The statements of retention, each one that MySQL 8 and MariaDB 10.11
 * both accept. In the upsert, holder is assigned before expires_at: MySQL
 * evaluates the assignments in order, so expires_at's condition sees the
 * new holder, which gives the same answer as the old row (taken: ours now;
 * not taken: unchanged), and MariaDB's simultaneous assignment the same.
 */
export const RETENTION_STATEMENTS = {
  claimSweep:
    "INSERT INTO runstore_leases (name, holder, expires_at) VALUES (?, ?, NOW(6) + INTERVAL ? MICROSECOND) " +
    `ON DUPLICATE KEY UPDATE holder = IF(${OURS_TO_TAKE}, ?, holder), ` +
    `expires_at = IF(${OURS_TO_TAKE}, NOW(6) + INTERVAL ? MICROSECOND, expires_at)`,
  sweepHolder: "SELECT holder FROM runstore_leases WHERE name = ?",
  oldTerminal:
    "SELECT run_id FROM runs FORCE INDEX (runs_status_updated) " +
    `WHERE status IN ${TERMINAL} AND updated_at < ? ORDER BY status, updated_at LIMIT ?`,
} as const;

/** The statements of change log pruning (bind the cutoff, then the batch size). */
export const PRUNE_STATEMENTS = {
  oldestNumbered:
    "SELECT change_id, changed_at < ? AS old FROM runstore_changes FORCE INDEX (changes_seq) " +
    "WHERE change_seq IS NOT NULL ORDER BY change_seq LIMIT ?",
  oldestUnnumbered:
    "SELECT change_id, changed_at < ? AS old FROM runstore_changes FORCE INDEX (changes_unnumbered) " +
    "WHERE change_seq IS NULL ORDER BY change_id LIMIT ?",
} as const;

/** The DELETE of `size` change ids, numbered ones or unnumbered ones (the condition checked again). */
export function deleteChangesStatement(size: number, numbered: boolean): string {
  const ids = Array(size).fill("?").join(", ");
  return (
    `DELETE FROM runstore_changes WHERE change_id IN (${ids}) ` +
    `AND change_seq IS ${numbered ? "NOT " : ""}NULL`
  );
}

/** The DELETE of one batch of `size` ids, the condition checked again. */
export function deleteTerminalStatement(size: number): string {
  const ids = Array(size).fill("?").join(", ");
  return `DELETE FROM runs WHERE run_id IN (${ids}) AND status IN ${TERMINAL} AND updated_at < ?`;
}

/**
 * The IN list size for `count` ids of a batch of at most `limit`: the next
 * power of two, or the limit, so a sweeper prepares at most a handful of
 * statements whatever its batches' sizes.
 */
export function idListSize(count: number, limit: number): number {
  return Math.min(limit, 2 ** Math.ceil(Math.log2(Math.max(count, 1))));
}

/** true when `holder` now holds the sweep lease for `leaseMs` (taken or renewed). */
export async function claimSweep(
  db: SqlSession,
  holder: string,
  leaseMs: number,
): Promise<boolean> {
  const input = checkClaimSweep(holder, leaseMs);
  const micros = String(input.leaseMs * 1000);
  return db.transaction(async (tx) => {
    await tx.run(RETENTION_STATEMENTS.claimSweep, [
      SWEEP_LEASE,
      input.holder,
      micros,
      input.holder,
      input.holder,
      input.holder,
      micros,
    ]);
    const [row] = rowsOf<{ holder: string }>(
      await tx.run(RETENTION_STATEMENTS.sweepHolder, [SWEEP_LEASE]),
    );
    return row?.holder === input.holder;
  });
}

/**
 * Deletes at most `limit` terminal runs updated before `cutoff` (the
 * oldest of each status first); answers how many.
 */
export async function sweepTerminal(
  db: SqlSession,
  cutoff: string,
  limit: number,
): Promise<number> {
  const input = checkSweepTerminal(cutoff, limit);
  const before = toSql(input.cutoff);
  const rows = rowsOf<{ run_id: Buffer | string }>(
    await db.run(RETENTION_STATEMENTS.oldTerminal, [before, String(input.limit)]),
  );
  if (rows.length === 0) return 0;
  const ids = rows.map((row) => text(row.run_id) as string);
  const size = idListSize(ids.length, input.limit);
  // Padded with repeats of the last id, so a few prepared statements serve every batch.
  const padded = [...ids, ...Array<string>(size - ids.length).fill(ids[ids.length - 1] as string)];
  const removed = (await db.run(deleteTerminalStatement(size), [...padded, before])) as {
    affectedRows: number;
  };
  return removed.affectedRows;
}

/**
 * Deletes at most `limit` changes recorded before `cutoff`: the oldest
 * numbered ones (a prefix of the numbers), then old unnumbered ones;
 * answers how many.
 */
export async function pruneChanges(db: SqlSession, cutoff: string, limit: number): Promise<number> {
  const input = checkSweepTerminal(cutoff, limit);
  const before = toSql(input.cutoff);
  const numbered = await pruneOldest(db, true, before, input.limit);
  if (numbered === input.limit) return numbered;
  return numbered + (await pruneOldest(db, false, before, input.limit - numbered));
}

/** One pruning statement pair: the old prefix of the oldest `limit` (un)numbered changes, deleted. */
async function pruneOldest(
  db: SqlSession,
  numbered: boolean,
  before: string,
  limit: number,
): Promise<number> {
  const sql = numbered ? PRUNE_STATEMENTS.oldestNumbered : PRUNE_STATEMENTS.oldestUnnumbered;
  const rows = rowsOf<{ change_id: number | string; old: number | string }>(
    await db.run(sql, [before, String(limit)]),
  );
  const young = rows.findIndex((row) => Number(row.old) !== 1);
  const ids = rows.slice(0, young === -1 ? rows.length : young).map((row) => String(row.change_id));
  if (ids.length === 0) return 0;
  const size = idListSize(ids.length, limit);
  const padded = [...ids, ...Array<string>(size - ids.length).fill(ids[ids.length - 1] as string)];
  const removed = (await db.run(deleteChangesStatement(size, numbered), padded)) as {
    affectedRows: number;
  };
  return removed.affectedRows;
}
