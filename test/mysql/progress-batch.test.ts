import { Code } from "@connectrpc/connect";
import type { RunProgress, RunRecord } from "@runstore/client";
import { retryDelayOf } from "@runstore/client/internal";
import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { BATCH_PROGRESS } from "../../src/stores/mysql-progress-batch.js";
import { MysqlRunStore, type SqlPool, STATEMENTS } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, lockRowForTest, runningStatements } from "../support/mysql.js";

// Issue 18 item 3, group commit: progress writes that arrive together go to
// the database as one statement, each row still as if written alone (only
// while running, in arrival order per run, one change in the log per row).

const db = await createTestDatabase("progbatch");
afterAll(() => db?.drop());

const PROGRESS_STATEMENTS = new Set<string>([BATCH_PROGRESS, STATEMENTS.updateRunProgress]);

/** A store whose progress statements are recorded in order, as executed on the pool. */
function countingStore(
  url: string,
  options: { maxAllowedPacketBytes?: number; progressBatch?: number } = {},
) {
  const pool = createMysqlPool({ url }, { connectionLimit: 4 }).promise();
  const progress: string[] = [];
  const counted: SqlPool = {
    async getConnection() {
      const connection = await pool.getConnection();
      return {
        threadId: connection.threadId,
        execute(statement, values) {
          if (PROGRESS_STATEMENTS.has(statement.sql)) progress.push(statement.sql);
          return connection.execute(statement, values);
        },
        query: (statement) => connection.query(statement),
        release: () => connection.release(),
        destroy: () => connection.destroy(),
      };
    },
    end: () => pool.end(),
  };
  const control = createMysqlPool({ url }, { connectionLimit: 1 }).promise();
  const store = new MysqlRunStore(counted, { progressBatch: true, ...options }, control);
  return { store, progress };
}

/** A run's stored fields that a progress write may change, without its id and instants. */
function written(record: RunRecord | null) {
  if (record === null) return null;
  const { runId: _id, createdAt: _c, updatedAt: _u, ...rest } = record;
  return rest;
}

/** The rows of one query on a connection of its own. */
async function rowsAt<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ uri: url });
  try {
    return (await connection.query(sql, values))[0] as T[];
  } finally {
    await connection.end();
  }
}

/** The 'updated' changes the log holds per run id (hex) since change `after`. */
async function updatesSince(url: string, after: number): Promise<Record<string, number>> {
  const rows = await rowsAt<{ id: string; n: number }>(
    url,
    "SELECT HEX(run_id) AS id, COUNT(*) AS n FROM runstore_changes " +
      "WHERE change_kind = 'updated' AND change_id > ? GROUP BY run_id",
    [after],
  );
  return Object.fromEntries(rows.map((r) => [r.id, Number(r.n)]));
}

async function lastChange(url: string): Promise<number> {
  const [row] = await rowsAt<{ n: number }>(
    url,
    "SELECT COALESCE(MAX(change_id), 0) AS n FROM runstore_changes",
  );
  return Number(row?.n);
}

const hex = (id: string) => Buffer.from(id, "utf8").toString("hex").toUpperCase();

function progressOf(i: number): RunProgress {
  return {
    totalTokens: 1000 + i,
    totalInputTokens: i % 3 === 0 ? 600 + i : undefined,
    llmCallCount: i,
    messageCount: i % 2 === 0 ? 2 * i : undefined,
    lastAiMessage: i % 4 === 0 ? undefined : `answer ${i} 😀 "quoted" \\ \n tab\t`,
    firstHumanMessage: i % 5 === 0 ? `question ${i}` : undefined,
    tokenUsageByModel:
      i % 2 === 0
        ? { [`model-${i}`]: { inputTokens: i, outputTokens: 2 * i, totalTokens: 3 * i } }
        : undefined,
  };
}

describe("MYSQL_PROGRESS_BATCH", () => {
  const base = { ALLOW_INSECURE: "true", DATABASE_URL: "mysql://root@127.0.0.1:3306/x" };
  it("defaults to 400, 0 turns group commit off, bad values are named", () => {
    expect(readConfig(base).database?.progressBatch).toBe(400);
    expect(readConfig({ ...base, MYSQL_PROGRESS_BATCH: "0" }).database?.progressBatch).toBe(0);
    for (const value of ["-1", "100001", "many", "1.5"]) {
      expect(() => readConfig({ ...base, MYSQL_PROGRESS_BATCH: value })).toThrow(ConfigError);
      expect(() => readConfig({ ...base, MYSQL_PROGRESS_BATCH: value })).toThrow(
        /MYSQL_PROGRESS_BATCH/,
      );
    }
  });
});

describe("group commit of progress writes on MySQL", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  const { store, progress } = countingStore(db.url);
  const alone = new MysqlRunStore(createMysqlPool({ url: db.url }).promise(), {
    progressBatch: false,
  });
  afterAll(() => Promise.all([store.close(), alone.close()]));

  it("50 concurrent writes for 50 running runs: one statement, each row as if written alone", async () => {
    const base = { lastAiMessage: "before", totalTokens: 7 } as const;
    for (let i = 0; i < 50; i++) {
      for (const id of [`b${i}`, `s${i}`]) {
        await store.put(id, { threadId: `t${i}`, status: "running" });
        await alone.updateRunProgress(id, base);
      }
    }
    for (let i = 0; i < 50; i++) await alone.updateRunProgress(`s${i}`, progressOf(i));
    const since = await lastChange(db.url);
    progress.length = 0;

    await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.updateRunProgress(`b${i}`, progressOf(i))),
    );

    expect(progress).toEqual([BATCH_PROGRESS]);
    for (let i = 0; i < 50; i++) {
      const [batched, single] = await Promise.all([store.get(`b${i}`), store.get(`s${i}`)]);
      expect(written(batched)).toEqual(written(single));
    }
    expect((await store.get("b4"))?.lastAiMessage).toBe("before");
    expect((await store.get("b3"))?.lastAiMessage).toBe('answer 3 😀 "quoted" \\ \n tab\t');
    expect((await store.get("b3"))?.totalInputTokens).toBe(603);
    expect((await store.get("b1"))?.totalInputTokens).toBe(0);
    const changes = await updatesSince(db.url, since);
    expect(changes).toEqual(
      Object.fromEntries(Array.from({ length: 50 }, (_, i) => [hex(`b${i}`), 1])),
    );
  });

  it("a burst: only running runs change, one run's writes apply in order, ids match byte for byte", async () => {
    const ids = ["m-a", "m-A", "m-b ", "m-b", "m-😀", "m-dup", "m-pending", "m-done"];
    for (const id of ids) {
      const status = id === "m-pending" ? "pending" : id === "m-done" ? "success" : "running";
      await store.put(id, { threadId: "tm", status });
    }
    const untouched = await Promise.all(["m-b", "m-pending", "m-done"].map((id) => store.get(id)));
    const since = await lastChange(db.url);
    progress.length = 0;

    await Promise.all([
      store.updateRunProgress("m-a", { totalTokens: 1 }),
      store.updateRunProgress("m-dup", { totalTokens: 10, lastAiMessage: "first" }),
      store.updateRunProgress("m-A", { totalTokens: 2 }),
      store.updateRunProgress("m-b ", { totalTokens: 3 }),
      store.updateRunProgress("m-😀", { totalTokens: 4, lastAiMessage: "🙂" }),
      store.updateRunProgress("m-pending", { totalTokens: 5 }),
      store.updateRunProgress("m-done", { totalTokens: 6 }),
      store.updateRunProgress("m-dup", { totalTokens: 20, messageCount: 2 }),
    ]);

    expect(progress).toEqual([BATCH_PROGRESS, STATEMENTS.updateRunProgress]);
    const tokens = await Promise.all(ids.map(async (id) => (await store.get(id))?.totalTokens));
    expect(tokens).toEqual([1, 2, 3, 0, 4, 20, 0, 0]);
    const dup = await store.get("m-dup");
    expect([dup?.lastAiMessage, dup?.messageCount]).toEqual(["first", 2]);
    expect((await store.get("m-😀"))?.lastAiMessage).toBe("🙂");
    expect(await Promise.all(["m-b", "m-pending", "m-done"].map((id) => store.get(id)))).toEqual(
      untouched,
    );
    expect(await updatesSince(db.url, since)).toEqual({
      [hex("m-a")]: 1,
      [hex("m-A")]: 1,
      [hex("m-b ")]: 1,
      [hex("m-😀")]: 1,
      [hex("m-dup")]: 2,
    });
  });

  it("the batch statement joins each input to its run by primary key (eq_ref)", async () => {
    const inputs = JSON.stringify([{ run_id: hex("x1") }, { run_id: hex("x2") }]);
    const plan = await rowsAt<{ table: string; type: string; key: string | null }>(
      db.url,
      `EXPLAIN ${BATCH_PROGRESS}`,
      [inputs],
    );
    const runs = plan.find((row) => row.table === "runs");
    expect([runs?.type, runs?.key]).toEqual(["eq_ref", "PRIMARY"]);
  });

  it("a caller whose signal aborts while its write rides in a batch is answered at once; the write may still apply", async () => {
    if (db === null) return;
    for (const id of ["q1", "q2", "q3"]) await store.put(id, { threadId: "tq", status: "running" });
    const release = await lockRowForTest(db.url, "q1");
    const controller = new AbortController();
    const calls = [
      store.updateRunProgress("q1", { totalTokens: 1 }),
      store.withCallSignal(controller.signal).updateRunProgress("q2", { totalTokens: 2 }),
      store.updateRunProgress("q3", { totalTokens: 3 }),
    ];
    await expect.poll(() => runningStatements(db, "UPDATE JSON_TABLE")).toBe(1);
    controller.abort();
    expect((await failureOf(calls[1] as Promise<void>)).code).toBe(Code.Canceled);
    await release();
    await Promise.all([calls[0], calls[2]]);
    const stored = await Promise.all(["q1", "q2", "q3"].map((id) => store.get(id)));
    // q2's answer was lost, not its write: it rode in the statement that committed.
    expect(stored.map((r) => r?.totalTokens)).toEqual([1, 2, 3]);
  });

  it("a caller whose signal aborts while its write still waits is answered at once and the write never runs", async () => {
    if (db === null) return;
    await store.put("w1", { threadId: "tw", status: "running" });
    const release = await lockRowForTest(db.url, "w1");
    progress.length = 0;
    const controller = new AbortController();
    const first = store.updateRunProgress("w1", { totalTokens: 1 });
    const second = store
      .withCallSignal(controller.signal)
      .updateRunProgress("w1", { totalTokens: 2, lastAiMessage: "never" });
    await expect.poll(() => runningStatements(db, "UPDATE runs SET")).toBe(1);
    controller.abort();
    expect((await failureOf(second)).code).toBe(Code.Canceled);
    await release();
    await first;
    const stored = await store.get("w1");
    expect([stored?.totalTokens, stored?.lastAiMessage]).toEqual([1, null]);
    expect(progress).toEqual([STATEMENTS.updateRunProgress]);
  });

  it("past MYSQL_PROGRESS_BATCH writes waiting, one more is refused at once with a retry hint and never runs", async () => {
    if (db === null) return;
    const small = countingStore(db.url, { progressBatch: 2 });
    try {
      await small.store.put("m1", { threadId: "tm", status: "running" });
      const release = await lockRowForTest(db.url, "m1");
      const first = small.store.updateRunProgress("m1", { totalTokens: 1 });
      await expect.poll(() => runningStatements(db, "UPDATE runs SET")).toBe(1);
      // m1 has a write in flight: these two wait, which is all two may.
      const waiting = [2, 3].map((n) => small.store.updateRunProgress("m1", { totalTokens: n }));
      const refused = await failureOf(
        small.store.updateRunProgress("m1", { totalTokens: 4, lastAiMessage: "never" }),
      );
      expect(refused.code).toBe(Code.Unavailable);
      expect(refused.rawMessage).toMatch(
        /^server overloaded: MYSQL_PROGRESS_BATCH \(2\) progress writes already waiting for a batch; retry after (\d+) ms$/,
      );
      const hint = Number(/after (\d+) ms/.exec(refused.rawMessage)?.[1]);
      expect(retryDelayOf(refused)).toBe(hint);
      expect(hint).toBeGreaterThanOrEqual(10);
      await release();
      await Promise.all([first, ...waiting]);
      const stored = await small.store.get("m1");
      expect([stored?.totalTokens, stored?.lastAiMessage]).toEqual([3, null]);
    } finally {
      await small.store.close();
    }
  });

  it("a caller whose signal has aborted is answered with it and its write never runs", async () => {
    await store.put("m-cut", { threadId: "tc", status: "running" });
    const controller = new AbortController();
    controller.abort();
    const error = await failureOf(
      store.withCallSignal(controller.signal).updateRunProgress("m-cut", { totalTokens: 9 }),
    );
    expect(error.code).toBe(Code.Canceled);
    expect((await store.get("m-cut"))?.totalTokens).toBe(0);
  });
});

describe("group commit: a write over max_allowed_packet", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  const LIMIT = 64 * 1024;
  const { store, progress } = countingStore(db.url, { maxAllowedPacketBytes: LIMIT });
  afterAll(() => store.close());

  it("is refused alone, naming the field; the writes that came with it apply together", async () => {
    const ids = ["p1", "p2", "p3", "p4", "p5"];
    for (const id of ids) await store.put(id, { threadId: "tp", status: "running" });
    const usage = Object.fromEntries(
      Array.from({ length: 2000 }, (_, i) => [
        `model-${i}-${"x".repeat(20)}`,
        { inputTokens: i, outputTokens: i, totalTokens: 2 * i },
      ]),
    );
    progress.length = 0;

    const answers = await Promise.allSettled(
      ids.map((id, i) =>
        store.updateRunProgress(
          id,
          i === 2 ? { tokenUsageByModel: usage } : { totalTokens: i + 1 },
        ),
      ),
    );

    expect(answers.map((a) => a.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    const error = await failureOf(Promise.reject((answers[2] as PromiseRejectedResult).reason));
    expect([error.code, error.rawMessage.split(" ")[0]]).toEqual([
      Code.ResourceExhausted,
      "token_usage_by_model",
    ]);
    expect(progress).toEqual([BATCH_PROGRESS]);
    const stored = await Promise.all(ids.map((id) => store.get(id)));
    expect(stored.map((r) => r?.totalTokens)).toEqual([1, 2, 0, 4, 5]);
    expect(stored[2]?.tokenUsageByModel).toEqual({});
  });
});
