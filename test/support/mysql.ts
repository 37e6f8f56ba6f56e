import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createConnection } from "mysql2/promise";
import { expect, onTestFinished } from "vitest";
import { migrate } from "../../src/stores/mysql-migrations.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore, type SqlPool } from "../../src/stores/mysql-run-store.js";

/** The server the MySQL tests use; override with TEST_MYSQL_URL (no database part). */
export const MYSQL_SERVER_URL = process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

/** Host and port of MYSQL_SERVER_URL, for a TcpProxy in front of the server. */
export const MYSQL_SERVER_ADDRESS = {
  host: new URL(MYSQL_SERVER_URL).hostname,
  port: Number(new URL(MYSQL_SERVER_URL).port || 3306),
};

/** A database of one test file's own, migrated, and dropped again by drop(). */
export interface TestDatabase {
  name: string;
  url: string;
  /** A store on the database; each call opens its own pool, closed by drop(). */
  openStore(): MysqlRunStore;
  /** Empties the runs table, so each test starts from nothing. */
  truncate(): Promise<void>;
  /** Closes every store this database opened, and drops it. */
  drop(): Promise<void>;
}

/**
 * The parts of the suite the caller opted out of by name, RUNSTORE_SKIP=mysql,python
 * (`npm test` names them in its closing line). Nothing else may be skipped.
 */
export function optedOut(part: "mysql" | "python"): boolean {
  return (process.env.RUNSTORE_SKIP ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .includes(part);
}

/**
 * Creates a fresh database for a test file. No MySQL server is a failure,
 * unless the caller opted out with RUNSTORE_SKIP=mysql: then it returns null
 * and the caller skips its MySQL tests.
 */
export async function createTestDatabase(
  label: string,
  options = { migrate: true },
): Promise<TestDatabase | null> {
  if (optedOut("mysql")) {
    console.warn(`MySQL tests (${label}) not run: opted out by RUNSTORE_SKIP=mysql`);
    return null;
  }
  try {
    const probe = await createConnection({ uri: MYSQL_SERVER_URL, connectTimeout: 3000 });
    await probe.end();
  } catch (error) {
    throw new Error(
      `MySQL tests (${label}): no MySQL server at ${MYSQL_SERVER_URL} (${(error as Error).message}); ` +
        "`npm test` starts a private one, or set TEST_MYSQL_URL, or opt out with RUNSTORE_SKIP=mysql",
    );
  }
  // `npm test` counts the tests of the files that ran on MySQL from this list.
  const log = process.env.RUNSTORE_TEST_MYSQL_LOG;
  if (log !== undefined) appendFileSync(log, `${expect.getState().testPath}\n`);
  const name = `rs_test_${label}_${randomBytes(4).toString("hex")}`;
  const url = `${MYSQL_SERVER_URL}/${name}`;
  const admin = createMysqlPool({ url: MYSQL_SERVER_URL }, { connectionLimit: 1 }).promise();
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  if (options.migrate) await migrate({ url });
  const stores: MysqlRunStore[] = [];
  const maintenance = createMysqlPool({ url }, { connectionLimit: 1 }).promise();
  return {
    name,
    url,
    openStore() {
      const store = MysqlRunStore.open({ url, poolSize: 4 });
      stores.push(store);
      return store;
    },
    async truncate() {
      await maintenance.query("TRUNCATE TABLE runs");
    },
    async drop() {
      await Promise.all(stores.map((s) => s.close()));
      await maintenance.end();
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  };
}

/**
 * Holds run_id's row lock from a session of its own until the returned
 * function is called, so a statement on that row waits as long as a test
 * needs (a call held in flight).
 */
export async function lockRow(url: string, runId: string): Promise<() => Promise<void>> {
  const connection = await createConnection({ uri: url });
  await connection.query("BEGIN");
  await connection.query("SELECT run_id FROM runs WHERE run_id = ? FOR UPDATE", [runId]);
  return async () => {
    await connection.query("ROLLBACK");
    await connection.end();
  };
}

/**
 * lockRow for one test: the lock is released when the test ends at the
 * latest (a held lock would block the database's drop()); releasing it
 * earlier and again is safe.
 */
export async function lockRowForTest(url: string, runId: string): Promise<() => Promise<void>> {
  const release = await lockRow(url, runId);
  let released: Promise<void> | undefined;
  const once = () => {
    released ??= release();
    return released;
  };
  onTestFinished(once);
  return once;
}

/**
 * How many statements starting with `sqlPrefix` are running on the database
 * right now: a call held by lockRow() shows up here once it has reached
 * MySQL, and is gone once it was killed. Poll it with expect.poll.
 */
export async function runningStatements(
  db: { url: string; name: string },
  sqlPrefix: string,
): Promise<number> {
  const connection = await createConnection({ uri: db.url });
  try {
    const [rows] = await connection.query(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE ?",
      [db.name, `${sqlPrefix}%`],
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await connection.end();
  }
}

/**
 * A store on a pool of its own that reports every prepared statement it
 * executes and its result, for counting statements (close it yourself).
 */
export function observedStore(
  url: string,
  seen: (sql: string, result: { affectedRows?: number }) => Promise<void> | void,
): MysqlRunStore {
  const pool = createMysqlPool({ url }, { connectionLimit: 2 }).promise();
  const observed: SqlPool = {
    async getConnection() {
      const connection = await pool.getConnection();
      return {
        threadId: connection.threadId,
        async execute(options, values) {
          const answer = await connection.execute(options, values);
          await seen(options.sql, answer[0] as { affectedRows?: number });
          return answer;
        },
        query: (options) => connection.query(options),
        release: () => connection.release(),
        destroy: () => connection.destroy(),
      };
    },
    end: () => pool.end(),
  };
  return new MysqlRunStore(observed);
}
