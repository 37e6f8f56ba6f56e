import { Code, ConnectError } from "@connectrpc/connect";
import type { PutFields, RunRecord } from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { RetentionSweeper, startRetention } from "../../src/retention.js";
import { ChangeLogGap, type ChangeRecord } from "../../src/stores/change-feed.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { type MysqlChangeFeed, SEQUENCE_BATCH } from "../../src/stores/mysql-change-feed.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { createTestDatabase, runningStatements } from "../support/mysql.js";
import { capturingLogger, settings } from "../support/retention.js";

// The MySQL change log behind WatchRuns (docs/mysql.md "Change log") on a
// real MariaDB: every write path of the store leaves exactly the change rows
// it should, in the writer's transaction; the sequencer numbers committed
// changes densely in commit order, also against a second sequencer; pruning
// leaves a log that read() can tell from a hole.

const db = await createTestDatabase("changes");

/** [kind, run id, previous status, status after] of each change. */
type Brief = [string, string, string | null, string];

const brief = (c: ChangeRecord): Brief => [c.kind, c.run.runId, c.previousStatus, c.run.status];

/** Changes of several runs in one call (their order among runs is not the point), by run id. */
const byRunId = (changes: ChangeRecord[]) =>
  [...changes].sort((a, b) => a.run.runId.localeCompare(b.run.runId));

const pending = (threadId = "thread-1"): PutFields => ({
  threadId,
  status: "pending",
  userId: "user-1",
  metadata: { a: 1 },
});

if (db === null) {
  describe("MySQL change log", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const store = db.openStore();
  const other = db.openStore();
  const feed = store.changeFeed({ pollMs: 10 });
  const pool = createMysqlPool({ url: db.url }, { connectionLimit: 2 }).promise();
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });
  beforeEach(async () => {
    await db.truncate();
    // The counter stays: numbers go on from where they were.
    await pool.query("TRUNCATE TABLE runstore_changes");
    await pool.query("DELETE FROM runstore_leases");
  });

  /** The changes `call` made: read from the head before it to the head after it. */
  async function changesOf(call: () => Promise<unknown>): Promise<ChangeRecord[]> {
    const before = await feed.head();
    await call();
    const head = await feed.head();
    const changes = head === before ? [] : await feed.read(before, 5000);
    expect(changes.map((c) => c.sequence)).toEqual(
      Array.from({ length: Number(head - before) }, (_, i) => before + BigInt(i + 1)),
    );
    for (const change of changes) {
      expect(change.changedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    return changes;
  }

  /** The run as the store reads it now (it must exist). */
  async function current(runId: string): Promise<RunRecord> {
    const run = await store.get(runId);
    expect(run).not.toBeNull();
    return run as RunRecord;
  }

  async function unnumbered(): Promise<number> {
    const [rows] = await pool.query(
      "SELECT COUNT(*) AS n FROM runstore_changes WHERE change_seq IS NULL",
    );
    return Number((rows as { n: number }[])[0]?.n);
  }

  describe("every write path records its changes", () => {
    it("put: a new run is created, an existing one updated; each change carries the row after it", async () => {
      const created = await changesOf(() => store.put("run-1", pending()));
      expect(created.map(brief)).toEqual([["created", "run-1", null, "pending"]]);
      expect(created[0]?.run).toEqual(await current("run-1"));
      const overwritten = await changesOf(() =>
        store.put("run-1", { ...pending(), status: "running", modelName: "m1" }),
      );
      expect(overwritten.map(brief)).toEqual([["updated", "run-1", "pending", "running"]]);
      expect(overwritten[0]?.run).toEqual(await current("run-1"));
      expect(overwritten[0]?.run.modelName).toBe("m1");
    });

    it("updateStatus, progress, completion, model name: one update each, the row after it", async () => {
      await store.put("run-1", pending());
      const steps: [() => Promise<unknown>, Brief][] = [
        [() => store.updateStatus("run-1", "running"), ["updated", "run-1", "pending", "running"]],
        [
          () => store.updateRunProgress("run-1", { totalTokens: 5, lastAiMessage: "hi" }),
          ["updated", "run-1", "running", "running"],
        ],
        [() => store.updateModelName("run-1", "m2"), ["updated", "run-1", "running", "running"]],
        [
          () =>
            store.updateRunCompletion("run-1", {
              status: "success",
              totalTokens: 9,
              tokenUsageByModel: { m2: { inputTokens: 4, outputTokens: 5, totalTokens: 9 } },
            }),
          ["updated", "run-1", "running", "success"],
        ],
      ];
      for (const [call, expected] of steps) {
        const changes = await changesOf(call);
        expect(changes.map(brief)).toEqual([expected]);
        expect(changes[0]?.run).toEqual(await current("run-1"));
      }
      const last = await current("run-1");
      expect([last.totalTokens, last.lastAiMessage, last.modelName]).toEqual([9, "hi", "m2"]);
      expect(last.tokenUsageByModel).toEqual({
        m2: { inputTokens: 4, outputTokens: 5, totalTokens: 9 },
      });
    });

    it("a write that changes nothing records nothing (progress of a run not running)", async () => {
      await store.put("run-1", pending());
      expect(await changesOf(() => store.updateRunProgress("run-1", { totalTokens: 5 }))).toEqual(
        [],
      );
      expect(await changesOf(() => store.updateStatus("missing", "running"))).toEqual([]);
    });

    it("admission, startRun, renewLease, finalizeIfNotCancelled", async () => {
      const admitted = await changesOf(() =>
        store.createThreadOperation("op-1", {
          threadId: "thread-1",
          ownerWorkerId: "w1",
          lease: { durationMs: 60_000 },
        }),
      );
      expect(admitted.map(brief)).toEqual([["created", "op-1", null, "pending"]]);
      expect(admitted[0]?.run).toEqual(await current("op-1"));
      const steps: [() => Promise<unknown>, Brief][] = [
        [() => store.startRun("op-1"), ["updated", "op-1", "pending", "running"]],
        [
          () => store.renewLease("op-1", "w1", { durationMs: 60_000 }),
          ["updated", "op-1", "running", "running"],
        ],
        [
          () => store.finalizeIfNotCancelled("op-1", "success"),
          ["updated", "op-1", "running", "success"],
        ],
      ];
      for (const [call, expected] of steps) {
        const changes = await changesOf(call);
        expect(changes.map(brief)).toEqual([expected]);
        expect(changes[0]?.run).toEqual(await current("op-1"));
      }
    });

    it("requestCancel records an update; a finalize it wins over records nothing", async () => {
      await store.createThreadOperation("op-c", { threadId: "thread-c", ownerWorkerId: "w1" });
      await store.startRun("op-c");
      const cancelled = await changesOf(() => store.requestCancel("op-c", "interrupt"));
      expect(cancelled.map(brief)).toEqual([["updated", "op-c", "running", "running"]]);
      expect(cancelled[0]?.run).toEqual(await current("op-c"));
      expect(cancelled[0]?.run.cancelAction).toBe("interrupt");
      expect(await changesOf(() => store.finalizeIfNotCancelled("op-c", "success"))).toEqual([]);
    });

    it("an interrupting admission: the run it takes over, then the new one, in one transaction", async () => {
      await store.createThreadOperation("op-1", { threadId: "thread-1", ownerWorkerId: "w1" });
      await store.startRun("op-1");
      const changes = await changesOf(() =>
        store.createThreadOperation("op-2", {
          threadId: "thread-1",
          ownerWorkerId: "w2",
          multitaskStrategy: "interrupt",
        }),
      );
      expect(changes.map(brief)).toEqual([
        ["updated", "op-1", "running", "interrupted"],
        ["created", "op-2", null, "pending"],
      ]);
      expect(changes[0]?.run).toEqual(await current("op-1"));
      expect(changes[1]?.run).toEqual(await current("op-2"));
    });

    it("enqueue, claimNextRun, cancelling a queued run", async () => {
      const queued = await changesOf(() =>
        store.createThreadOperation("op-q", {
          threadId: "thread-q",
          ownerWorkerId: "w1",
          multitaskStrategy: "enqueue",
        }),
      );
      expect(queued.map(brief)).toEqual([["created", "op-q", null, "pending"]]);
      expect(queued[0]?.run.queued).toBe(true);
      const claimed = await changesOf(() => store.claimNextRun("w2", { durationMs: 60_000 }));
      expect(claimed.map(brief)).toEqual([["updated", "op-q", "pending", "running"]]);
      expect(claimed[0]?.run).toEqual(await current("op-q"));
      expect(claimed[0]?.run.ownerWorkerId).toBe("w2");
      await store.createThreadOperation("op-q2", {
        threadId: "thread-q2",
        ownerWorkerId: "w1",
        multitaskStrategy: "enqueue",
      });
      const cancelled = await changesOf(() => store.requestCancel("op-q2", "rollback"));
      expect(cancelled.map(brief)).toEqual([["updated", "op-q2", "pending", "interrupted"]]);
      expect(cancelled[0]?.run).toEqual(await current("op-q2"));
    });

    it("claimForTakeover of an expired lease", async () => {
      await store.createThreadOperation("op-x", {
        threadId: "thread-x",
        ownerWorkerId: "w1",
        lease: { expiresAt: "2020-01-01T00:00:00Z" },
      });
      await store.startRun("op-x");
      const changes = await changesOf(() => store.claimForTakeover("op-x", { error: "lost" }));
      expect(changes.map(brief)).toEqual([["updated", "op-x", "running", "error"]]);
      expect(changes[0]?.run).toEqual(await current("op-x"));
      expect(changes[0]?.run.error).toBe("lost");
    });

    it("delete and deleteThread: the row as it was", async () => {
      await store.put("run-1", pending());
      await store.put("run-2", { ...pending("thread-2"), status: "success" });
      await store.put("run-3", { ...pending("thread-2"), status: "error" });
      const before = await current("run-1");
      const deleted = await changesOf(() => store.delete("run-1"));
      expect(deleted.map(brief)).toEqual([["deleted", "run-1", "pending", "pending"]]);
      expect(deleted[0]?.run).toEqual(before);
      const thread = [await current("run-2"), await current("run-3")];
      const removed = await changesOf(() => store.deleteThread("thread-2"));
      expect(byRunId(removed).map(brief)).toEqual([
        ["deleted", "run-2", "success", "success"],
        ["deleted", "run-3", "error", "error"],
      ]);
      expect(byRunId(removed).map((c) => c.run)).toEqual(thread);
    });

    it("a retention sweep: each run it deleted", async () => {
      await store.put("old-1", { ...pending(), status: "success" });
      await store.put("old-2", { ...pending(), status: "timeout" });
      await store.put("active", pending());
      await pool.query(
        "UPDATE runs SET updated_at = '2020-01-01' WHERE run_id IN ('old-1', 'old-2')",
      );
      const rows = [await current("old-1"), await current("old-2")];
      const changes = await changesOf(() =>
        new RetentionSweeper(store, settings(), capturingLogger().logger).sweepOnce(),
      );
      expect(byRunId(changes).map(brief)).toEqual([
        ["deleted", "old-1", "success", "success"],
        ["deleted", "old-2", "timeout", "timeout"],
      ]);
      expect(byRunId(changes).map((c) => c.run)).toEqual(rows);
    });

    it("a rolled-back transaction records nothing: a refused admission, and a ROLLBACK", async () => {
      await store.createThreadOperation("op-1", { threadId: "thread-1", ownerWorkerId: "w1" });
      const before = await feed.head();
      await expect(
        store.createThreadOperation("op-2", { threadId: "thread-1", ownerWorkerId: "w2" }),
      ).rejects.toMatchObject({ code: Code.Aborted });
      const connection = await createConnection({ uri: db.url });
      try {
        await connection.query("BEGIN");
        await connection.query(
          "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) " +
            "VALUES ('rolled', 't', 'pending', 'reject', '{}', '{}', NOW(6), NOW(6))",
        );
        await connection.query("UPDATE runs SET status = 'error' WHERE run_id = 'op-1'");
        await connection.query("ROLLBACK");
      } finally {
        await connection.end();
      }
      expect(await feed.head()).toBe(before);
      expect(await unnumbered()).toBe(0);
      expect(await store.get("rolled")).toBeNull();
    });
  });

  describe("numbering", () => {
    it("head() waits for a sequencer holding the counter: a change committed before it is counted", async () => {
      const start = await feed.head();
      const holder = await createConnection({ uri: db.url });
      try {
        await holder.query("BEGIN");
        await holder.query("SELECT last_seq FROM runstore_change_counter WHERE id = 1 FOR UPDATE");
        await store.put("before-head", pending());
        const head = feed.head();
        // The poll sees the committed change; head() then waits on the counter lock.
        await vi.waitFor(
          async () =>
            expect(
              await runningStatements(
                db,
                "SELECT last_seq FROM runstore_change_counter WHERE id = 1 FOR UPDATE",
              ),
            ).toBe(1),
          { timeout: 15_000, interval: 20 },
        );
        await holder.query("COMMIT");
        expect(await head).toBe(start + 1n);
      } finally {
        await holder.end();
      }
    });

    it("head() numbers the whole backlog, past one sequencer batch", async () => {
      const start = await feed.head();
      const count = SEQUENCE_BATCH + 7;
      const values = Array.from(
        { length: count },
        (_, i) => `('backlog-${i}', 't', 'pending', 'reject', '{}', '{}', NOW(6), NOW(6))`,
      );
      await pool.query(
        `INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) VALUES ${values.join(",")}`,
      );
      expect(await unnumbered()).toBe(count);
      expect(await feed.head()).toBe(start + BigInt(count));
      expect(await unnumbered()).toBe(0);
    });

    it("commit order, not change_id order: a change committed later is numbered later", async () => {
      const start = await feed.head();
      const slow = await createConnection({ uri: db.url });
      try {
        await slow.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
        await slow.query("BEGIN");
        // Its change row takes the lower change_id, but stays uncommitted.
        await slow.query(
          "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) " +
            "VALUES ('first-written', 't', 'pending', 'reject', '{}', '{}', NOW(6), NOW(6))",
        );
        await store.put("first-committed", pending());
        expect(await feed.head()).toBe(start + 1n);
        expect((await feed.read(start, 10)).map((c) => c.run.runId)).toEqual(["first-committed"]);
        await slow.query("COMMIT");
      } finally {
        await slow.end();
      }
      expect(await feed.head()).toBe(start + 2n);
      const changes = await feed.read(start, 10);
      expect(changes.map((c) => [c.sequence, c.run.runId])).toEqual([
        [start + 1n, "first-committed"],
        [start + 2n, "first-written"],
      ]);
      const [ids] = await pool.query(
        "SELECT CAST(run_id AS CHAR) AS id FROM runstore_changes WHERE change_seq > ? ORDER BY change_id",
        [String(start)],
      );
      expect((ids as { id: string }[]).map((r) => r.id)).toEqual([
        "first-written",
        "first-committed",
      ]);
    });

    it("two sequencers at once (two stores, two pools) number every change exactly once, densely", async () => {
      const start = await feed.head();
      const feeds = [store.changeFeed(), other.changeFeed()];
      let writing = true;
      const sequencers = feeds.map(async (f) => {
        let runs = 0;
        while (writing || runs < 3) {
          await f.head();
          runs++;
        }
        return runs;
      });
      const writers = [store, other].map(async (s, w) => {
        for (let i = 0; i < 100; i++) {
          await s.put(`w${w}-${i}`, pending(`thread-${w}`));
          await s.updateStatus(`w${w}-${i}`, "running");
        }
      });
      await Promise.all(writers);
      writing = false;
      expect((await Promise.all(sequencers)).every((runs) => runs >= 3)).toBe(true);
      const head = await feed.head();
      expect(head).toBe(start + 400n);
      const changes = [
        ...(await feed.read(start, 300)),
        ...(await other.changeFeed().read(start + 300n, 300)),
      ];
      expect(changes.map((c) => c.sequence)).toEqual(
        Array.from({ length: 400 }, (_, i) => start + BigInt(i + 1)),
      );
      expect(await unnumbered()).toBe(0);
      const [counts] = await pool.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT change_seq) AS d, MAX(change_seq) AS top FROM runstore_changes WHERE change_seq > ?",
        [String(start)],
      );
      expect((counts as { n: number; d: number; top: number }[])[0]).toMatchObject({
        n: 400,
        d: 400,
      });
      // Per run, in the order it was written.
      for (const runId of ["w0-0", "w1-99"]) {
        expect(changes.filter((c) => c.run.runId === runId).map((c) => c.kind)).toEqual([
          "created",
          "updated",
        ]);
      }
    });
  });

  describe("reading", () => {
    it("identity: the same for every store on one database, another on another database", async () => {
      const id = await feed.identity();
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await other.changeFeed().identity()).toBe(id);
      const second = await createTestDatabase("changes_other");
      try {
        expect(await second?.openStore().changeFeed().identity()).not.toBe(id);
      } finally {
        await second?.drop();
      }
    });

    it("read past head: ChangeLogGap ahead; at head: nothing; bad arguments name the field", async () => {
      await store.put("run-1", pending());
      const head = await feed.head();
      await expect(feed.read(head + 1n, 10)).rejects.toMatchObject({
        name: "ChangeLogGap",
        reason: "ahead",
      });
      expect(await feed.read(head, 10)).toEqual([]);
      const refusal = await feed.read(-1n, 10).catch((error: unknown) => error);
      expect(ConnectError.from(refusal).code).toBe(Code.InvalidArgument);
      expect((refusal as Error).message).toContain("after");
      const limit = await feed.read(0n, 0).catch((error: unknown) => error);
      expect(ConnectError.from(limit).code).toBe(Code.InvalidArgument);
      expect((limit as Error).message).toContain("limit");
    });

    it("read with a small limit pages through in order", async () => {
      const start = await feed.head();
      for (const id of ["a", "b", "c", "d", "e"]) await store.put(id, pending());
      const first = await feed.read(start, 2);
      const second = await feed.read(start + 2n, 2);
      const third = await feed.read(start + 4n, 2);
      expect([...first, ...second, ...third].map((c) => c.run.runId)).toEqual([
        "a",
        "b",
        "c",
        "d",
        "e",
      ]);
      expect(third.map((c) => c.sequence)).toEqual([start + 5n]);
    });

    it("after pruning: an older position is ChangeLogGap pruned, the newest kept still read", async () => {
      const start = await feed.head();
      for (const id of ["p1", "p2", "p3"]) await store.put(id, pending());
      await feed.head();
      // The first two look old; the third is recent and stays.
      await pool.query(
        "UPDATE runstore_changes SET changed_at = '2020-01-01' WHERE change_seq IN (?, ?)",
        [String(start + 1n), String(start + 2n)],
      );
      expect(await store.pruneChanges("2021-01-01T00:00:00Z", 500)).toBe(2);
      const gap = await feed.read(start, 10).catch((error: unknown) => error);
      expect(gap).toBeInstanceOf(ChangeLogGap);
      expect(gap).toMatchObject({ reason: "pruned" });
      expect((await feed.read(start + 2n, 10)).map((c) => c.run.runId)).toEqual(["p3"]);
    });

    it("pruning deletes numbered changes as a prefix only, and old unnumbered ones", async () => {
      const start = await feed.head();
      for (const id of ["q1", "q2", "q3"]) await store.put(id, pending());
      await feed.head();
      await store.put("q4", pending()); // not numbered yet
      // q1 and q3 look old, q2 recent: only q1 goes (q3 stays behind q2); q4 goes unnumbered.
      await pool.query(
        "UPDATE runstore_changes SET changed_at = '2020-01-01' WHERE change_seq IN (?, ?) OR change_seq IS NULL",
        [String(start + 1n), String(start + 3n)],
      );
      expect(await store.pruneChanges("2021-01-01T00:00:00Z", 500)).toBe(2);
      expect(await unnumbered()).toBe(0);
      expect((await feed.read(start + 1n, 10)).map((c) => c.run.runId)).toEqual(["q2", "q3"]);
      expect(await feed.head()).toBe(start + 3n);
    });

    it("pruning never deletes an unnumbered change that a sequencer numbers meanwhile", async () => {
      const start = await feed.head();
      await store.put("raced", pending());
      await pool.query("UPDATE runstore_changes SET changed_at = '2020-01-01'");
      // A sequencer of our own holds the change (as its locking read would)…
      const sequencer = await createConnection({ uri: db.url });
      try {
        await sequencer.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
        await sequencer.query("BEGIN");
        await sequencer.query(
          "SELECT change_id FROM runstore_changes WHERE change_seq IS NULL FOR UPDATE",
        );
        // …while pruning reaches it: its DELETE waits for the lock.
        const pruning = store.pruneChanges("2021-01-01T00:00:00Z", 500);
        await expect
          .poll(() => runningStatements(db, "DELETE FROM runstore_changes"), { timeout: 10_000 })
          .toBe(1);
        await sequencer.query(
          "UPDATE runstore_change_counter SET last_seq = last_seq + 1 WHERE id = 1",
        );
        await sequencer.query(
          "UPDATE runstore_changes SET change_seq = (SELECT last_seq FROM runstore_change_counter WHERE id = 1) WHERE change_seq IS NULL",
        );
        await sequencer.query("COMMIT");
        expect(await pruning).toBe(0);
      } finally {
        await sequencer.end();
      }
      expect((await feed.read(start, 10)).map(brief)).toEqual([
        ["created", "raced", null, "pending"],
      ]);
    });

    it("a sweeper with CHANGE_LOG_HOURS alone prunes changes and keeps runs", async () => {
      await store.put("kept", { ...pending(), status: "success" });
      await pool.query("UPDATE runs SET updated_at = '2020-01-01'");
      await feed.head();
      await pool.query("UPDATE runstore_changes SET changed_at = '2020-01-01'");
      const report = await new RetentionSweeper(
        store,
        settings({ days: null, changeLogHours: 1 }),
        capturingLogger().logger,
      ).sweepOnce();
      expect(report).toMatchObject({ swept: true, ended: "done", deleted: 0, cutoff: null });
      expect(report.changes?.deleted).toBeGreaterThan(0);
      expect(await store.get("kept")).not.toBeNull();
      const [left] = await pool.query("SELECT COUNT(*) AS n FROM runstore_changes");
      expect(Number((left as { n: number }[])[0]?.n)).toBe(0);
    });

    it("startRetention: CHANGE_LOG_HOURS alone starts a sweeper on MySQL, none on the memory store", async () => {
      const only = settings({ days: null, changeLogHours: 24 });
      const { logger, lines } = capturingLogger();
      expect(startRetention(new MemoryRunStore(), only, logger)).toBeNull();
      const sweeper = startRetention(store, only, logger);
      try {
        expect(sweeper).toBeInstanceOf(RetentionSweeper);
        expect(lines.map((line) => line.msg)).toContain(
          "retention: changes recorded more than 24 hour(s) ago are deleted, checked every 3600 s",
        );
      } finally {
        await sweeper?.close();
      }
    });

    it("waitForChange resolves once a change is numbered, at its timeout, or when aborted", async () => {
      const head = await feed.head();
      const never = new AbortController();
      const waiting = feed.waitForChange(head, 60_000, never.signal);
      await store.put("woken", pending());
      await waiting;
      expect(await feed.head()).toBe(head + 1n);
      await feed.waitForChange(head + 1n, 1, never.signal); // times out: resolves
      const aborted = new AbortController();
      const stopped = feed.waitForChange(head + 1n, 60_000, aborted.signal);
      aborted.abort();
      await stopped;
    });

    it("a feed of a store opened on its own reads the same changes", async () => {
      const start = await feed.head();
      await store.put("shared", pending());
      const separate = MysqlRunStore.open({ url: db.url, poolSize: 1 });
      try {
        const changes = await (separate.changeFeed() as MysqlChangeFeed).read(start, 10);
        expect(changes.map(brief)).toEqual([["created", "shared", null, "pending"]]);
      } finally {
        await separate.close();
      }
    });
  });
}
