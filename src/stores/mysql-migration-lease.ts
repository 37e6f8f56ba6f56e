import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Pool, PoolConnection } from "mysql2/promise";
import { RETENTION_STATEMENTS } from "./mysql-retention.js";

// The lock around migrate(): one runner applies the migrations, the others
// wait, across every server of the database. Kysely's Migrator locks with
// GET_LOCK, which on a Galera cluster is local to one node: replicas
// starting at once on different nodes both applied 0001 (the others failed
// with "Table 'runs' already exists"). This lease is a row of
// runstore_leases, the table the retention sweep's lease lives in, taken by
// the same upsert on the database clock: the row changes hands only when
// its lease has expired or the holder is already the caller. Two runners
// racing for it on two nodes write the same row, so Galera's certification
// lets one commit and fails the other (a deadlock error, read as "not
// ours"). The holder renews it while it migrates and deletes it after; one
// that dies holding it is waited for until the lease expires.

/** The lease's name in runstore_leases. */
export const MIGRATION_LEASE = "migrations";

/** How long a lease lasts unless renewed. */
const LEASE_MS = 60_000;
/** How often the holder renews it (one renewal at a time). */
const RENEW_EVERY_MS = 15_000;
/** How often a waiting runner asks again. */
const POLL_MS = 200;

const ER_LOCK_DEADLOCK = 1213;

/**
 * runstore_leases as migration 0004_retention creates it (IF NOT EXISTS on
 * both sides: whichever runs first creates it; the other is a no-op).
 */
export const CREATE_LEASES = `
  CREATE TABLE IF NOT EXISTS runstore_leases (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    holder VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
  ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
`;

const RELEASE = "DELETE FROM runstore_leases WHERE name = ? AND holder = ?";

/**
 * `work` while holding the migration lease on the database `pool` reaches
 * (a pool of its own: at most one of its connections is busy at a time).
 * Waits while another runner holds it; renews it while `work` runs;
 * releases it after, whether `work` succeeded or not.
 */
export async function withMigrationLease<T>(pool: Pool, work: () => Promise<T>): Promise<T> {
  const holder = `${hostname()}:${process.pid}:${randomBytes(6).toString("hex")}`;
  await pool.query(CREATE_LEASES);
  while (!(await claim(pool, holder))) await sleep(POLL_MS);
  const renewal = keepRenewing(pool, holder);
  try {
    return await work();
  } finally {
    await renewal.stop();
    await release(pool, holder);
  }
}

/** Renews the lease every RENEW_EVERY_MS until stop(), which waits for a renewal in flight. */
function keepRenewing(pool: Pool, holder: string): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      try {
        await sleep(RENEW_EVERY_MS, undefined, { signal: stopped.signal });
      } catch {
        return; // stopped
      }
      // A failed renewal (database away, a conflict) is tried again at the next tick.
      await claim(pool, holder).catch(() => false);
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await loop;
    },
  };
}

/**
 * One attempt at the lease: true when `holder` holds it now (taken or
 * renewed). A certification conflict or deadlock means another runner
 * wrote the row at the same time: not ours this time.
 */
async function claim(pool: Pool, holder: string): Promise<boolean> {
  const micros = String(LEASE_MS * 1000);
  try {
    return await inTransaction(pool, async (connection) => {
      await connection.execute(RETENTION_STATEMENTS.claimSweep, [
        MIGRATION_LEASE,
        holder,
        micros,
        holder,
        holder,
        holder,
        micros,
      ]);
      const [rows] = await connection.execute(RETENTION_STATEMENTS.sweepHolder, [MIGRATION_LEASE]);
      return (rows as { holder: string }[])[0]?.holder === holder;
    });
  } catch (error) {
    if ((error as { errno?: unknown }).errno === ER_LOCK_DEADLOCK) return false;
    throw error;
  }
}

/** Deletes the lease row if it is still ours; a conflicting write is tried again a few times. */
async function release(pool: Pool, holder: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.execute(RELEASE, [MIGRATION_LEASE, holder]);
      return;
    } catch (error) {
      const errno = (error as { errno?: unknown }).errno;
      // Left in place, the row only makes the next runner wait for its expiry.
      if (errno !== ER_LOCK_DEADLOCK || attempt === 5) return;
    }
  }
}

/** `work` between BEGIN and COMMIT on one connection of `pool`; ROLLBACK when it throws. */
async function inTransaction<T>(
  pool: Pool,
  work: (connection: PoolConnection) => Promise<T>,
): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.query("BEGIN");
    try {
      const result = await work(connection);
      await connection.query("COMMIT");
      return result;
    } catch (error) {
      await connection.query("ROLLBACK").catch(() => {});
      throw error;
    }
  } finally {
    connection.release();
  }
}
