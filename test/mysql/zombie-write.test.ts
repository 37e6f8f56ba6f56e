import { Code } from "@connectrpc/connect";
import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, lockRow, runningStatements } from "../support/mysql.js";

// Red team, issue 14: "A write answered UNAVAILABLE lands later". When the
// store's own query timeout passes, the statement is killed before the
// caller is answered, and a session's lock waits end with the query timeout,
// so an UPDATE waiting on a row lock never commits after its caller was told
// UNAVAILABLE. A row lock held by another session makes the UPDATE wait.

const db = await createTestDatabase("zombie");

const QUERY_TIMEOUT_MS = 500;
const POOL_SIZE = 4;

describe("the query timeout stops the statement before answering", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  const store = MysqlRunStore.open({
    url: db.url,
    poolSize: POOL_SIZE,
    queryTimeoutMs: QUERY_TIMEOUT_MS,
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });
  const updatesWaiting = () => runningStatements(db, "UPDATE runs");

  it("UNAVAILABLE, nothing of it left waiting, and the row unchanged once the lock goes", async () => {
    await store.put("r1", { threadId: "t1" });
    const release = await lockRow(db.url, "r1");
    try {
      const error = await failureOf(store.updateStatus("r1", "success"));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe(
        "database unavailable (statement timed out; it was stopped and changed nothing)",
      );
      // Still holding the lock: a statement the timeout left running would
      // sit here, waiting to apply, for innodb_lock_wait_timeout (50 s).
      await expect.poll(updatesWaiting, { timeout: 5000, interval: 20 }).toBe(0);
    } finally {
      await release();
    }
    expect((await store.get("r1"))?.status).toBe("pending");
  });

  it("20 callers on one locked row: every one UNAVAILABLE, the pool free again, unrelated Gets answered", async () => {
    await store.put("r2", { threadId: "t2" });
    await store.put("r3", { threadId: "t3" });
    const release = await lockRow(db.url, "r2");
    try {
      const before = await sessionsOn(db.name);
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          failureOf(store.updateRunCompletion("r2", { status: "success", totalTokens: i })),
        ),
      );
      expect(outcomes.map((e) => e.code)).toEqual(Array(20).fill(Code.Unavailable));
      await expect.poll(updatesWaiting, { timeout: 5000, interval: 20 }).toBe(0);
      // The lock is still held: Gets of another row run on the same pool.
      const gets = await Promise.all(Array.from({ length: 8 }, () => store.get("r3")));
      expect(gets.map((run) => run?.threadId)).toEqual(Array(8).fill("t3"));
      const after = await sessionsOn(db.name);
      console.log(
        `REPORT zombie-write: 20 callers on a locked row, pool ${POOL_SIZE}: sessions on the database ${before} before, ${after} after (orphans would add to it)`,
      );
      // At most the pool and its control connection were added.
      expect(after - before).toBeLessThanOrEqual(POOL_SIZE + 1);
    } finally {
      await release();
    }
    const run = await store.get("r2");
    expect([run?.status, run?.totalTokens]).toEqual(["pending", 0]);
  });

  it("without a way to kill it, the session's lock wait ends the statement with the query timeout", async () => {
    // No control pool: the kill cannot be sent, the connection is dropped,
    // and only the session's innodb_lock_wait_timeout (1 s here) stops the
    // UPDATE on the server.
    const uncontrolled = new MysqlRunStore(
      createMysqlPool({ url: db.url, poolSize: 1, queryTimeoutMs: QUERY_TIMEOUT_MS }).promise(),
      { queryTimeoutMs: QUERY_TIMEOUT_MS },
    );
    await store.put("r4", { threadId: "t4" });
    const release = await lockRow(db.url, "r4");
    try {
      const error = await failureOf(uncontrolled.updateStatus("r4", "success"));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe(
        "database unavailable (statement timed out; it could not be stopped)",
      );
      // Gone while the lock is still held: it gave up waiting, it did not apply.
      await expect.poll(updatesWaiting, { timeout: 10_000, interval: 50 }).toBe(0);
    } finally {
      await release();
      await uncontrolled.close();
    }
    expect((await store.get("r4"))?.status).toBe("pending");
  });

  it("every pooled session waits for locks no longer than the query timeout, rounded up to seconds", async () => {
    const pool = createMysqlPool({ url: db.url, queryTimeoutMs: 1500 }).promise();
    try {
      const [rows] = await pool.query(
        "SELECT @@SESSION.innodb_lock_wait_timeout AS row_locks, @@SESSION.lock_wait_timeout AS metadata_locks",
      );
      expect(rows).toEqual([{ row_locks: 2, metadata_locks: 2 }]);
    } finally {
      await pool.end();
    }
  });
});

/** Sessions connected to `database` right now (the counting one included). */
async function sessionsOn(database: string): Promise<number> {
  const connection = await createConnection({ uri: db?.url });
  try {
    const [rows] = await connection.query(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?",
      [database],
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await connection.end();
  }
}
