import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Admission,
  idempotencyConflict,
  type RunRecord,
  threadConflict,
} from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, runningStatements } from "../support/mysql.js";

// Part 2's invariants held by the database itself: two MysqlRunStore
// instances with pools of their own play two server replicas on one
// database, and race each other. Nothing in one process coordinates them;
// the UNIQUE index on the slot column, the idempotency index, row locks and
// FOR UPDATE SKIP LOCKED do.

const db = await createTestDatabase("coordination");

/** The outcome of a call that may fail: its value, or its error as a ConnectError. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: ConnectError };

async function outcomeOf<T>(call: Promise<T>): Promise<Outcome<T>> {
  return call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: ConnectError.from(error) }),
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

if (db === null) {
  describe("coordination across replicas", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  // Two replicas, each with a pool of its own: concurrent calls really race in MySQL.
  const replicas = [
    MysqlRunStore.open({ url: db.url, poolSize: 8 }),
    MysqlRunStore.open({ url: db.url, poolSize: 8 }),
  ] as const;
  const [a, b] = replicas;
  /** The replica serving the i-th of several racing calls. */
  const replica = (i: number) => replicas[i % 2] as MysqlRunStore;

  afterAll(async () => {
    await Promise.all(replicas.map((store) => store.close()));
    await db.drop();
  });
  beforeEach(() => db.truncate());

  /** Rows holding a thread's slot, straight from the table. */
  async function slotHolders(): Promise<{ thread: string; run: string }[]> {
    const connection = await createConnection({ uri: db?.url });
    try {
      const [rows] = await connection.query(
        "SELECT CAST(active_thread_id AS CHAR) AS thread, CAST(run_id AS CHAR) AS run FROM runs " +
          "WHERE active_thread_id IS NOT NULL ORDER BY thread",
      );
      return rows as { thread: string; run: string }[];
    } finally {
      await connection.end();
    }
  }

  /** `n` runs admitted on threads of their own, owned by `owner`, their leases long expired. */
  async function admitExpired(n: number, owner: string): Promise<string[]> {
    const runs = range(n).map((i) => `run-${i}`);
    for (const [i, runId] of runs.entries()) {
      await a.createThreadOperation(runId, {
        threadId: `thread-${i}`,
        ownerWorkerId: owner,
        lease: { expiresAt: "2020-01-01T00:00:00Z" },
      });
    }
    return runs;
  }

  describe("coordination across two replicas on one database", () => {
    it("racing reject admissions: exactly one admitted per thread, the others ABORTED naming it", async () => {
      const threads = range(8).map((t) => `thread-${t}`);
      const attempts = threads.flatMap((threadId) =>
        range(12).map((i) => ({ threadId, runId: `${threadId}-run-${i}`, worker: `w${i % 4}` })),
      );
      const outcomes = await Promise.all(
        attempts.map(({ threadId, runId, worker }, i) =>
          outcomeOf(
            replica(i).createThreadOperation(runId, {
              threadId,
              ownerWorkerId: worker,
              lease: { durationMs: 60_000 },
            }),
          ),
        ),
      );
      const admitted = new Map<string, RunRecord>();
      for (const [i, outcome] of outcomes.entries()) {
        const { threadId } = attempts[i] as (typeof attempts)[number];
        if (outcome.ok) {
          expect(admitted.has(threadId), `two admissions on ${threadId}`).toBe(false);
          expect(outcome.value.takenOver).toEqual([]);
          admitted.set(threadId, outcome.value.run);
          continue;
        }
        expect(outcome.error.code).toBe(Code.Aborted);
        expect(threadConflict(outcome.error)?.threadId).toBe(threadId);
      }
      expect([...admitted.keys()].sort()).toEqual(threads);
      // Every conflict names the admitted run of its thread.
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.ok) continue;
        const { threadId } = attempts[i] as (typeof attempts)[number];
        expect(threadConflict(outcome.error)?.conflictingRunId).toBe(admitted.get(threadId)?.runId);
      }
      expect(await slotHolders()).toEqual(
        threads.map((thread) => ({ thread, run: admitted.get(thread)?.runId })),
      );
      // The losers changed nothing: only the admitted rows exist.
      for (const thread of threads) {
        expect((await a.listByThread(thread)).map((r) => r.runId)).toEqual([
          admitted.get(thread)?.runId,
        ]);
      }
    });

    it("racing interrupt admissions with live leases: one wins per thread, the rest are conflicts", async () => {
      const threads = range(4).map((t) => `thread-${t}`);
      const attempts = threads.flatMap((threadId) =>
        range(8).map((i) => ({ threadId, runId: `${threadId}-run-${i}`, worker: `w${i}` })),
      );
      const outcomes = await Promise.all(
        attempts.map(({ threadId, runId, worker }, i) =>
          outcomeOf(
            replica(i).createThreadOperation(runId, {
              threadId,
              ownerWorkerId: worker,
              multitaskStrategy: "interrupt",
              lease: { durationMs: 60_000 },
            }),
          ),
        ),
      );
      const won = outcomes.filter((o): o is { ok: true; value: Admission } => o.ok);
      expect(won.map((o) => o.value.run.threadId).sort()).toEqual(threads);
      for (const outcome of outcomes) {
        if (!outcome.ok) expect(threadConflict(outcome.error)).not.toBeNull();
      }
      expect((await slotHolders()).map((h) => h.run).sort()).toEqual(
        won.map((o) => o.value.run.runId).sort(),
      );
    });

    it("racing admissions taking one idempotency key: one succeeds, the others carry its row", async () => {
      const outcomes = await Promise.all(
        range(16).map((i) =>
          outcomeOf(
            replica(i).createThreadOperation(`run-${i}`, {
              threadId: `thread-${i}`,
              ownerWorkerId: "w1",
              idempotencyKey: "the-key",
            }),
          ),
        ),
      );
      const winners = outcomes.filter((o): o is { ok: true; value: Admission } => o.ok);
      expect(winners).toHaveLength(1);
      const winner = (winners[0] as { value: Admission }).value.run;
      for (const outcome of outcomes) {
        if (outcome.ok) continue;
        expect(outcome.error.code).toBe(Code.AlreadyExists);
        expect(idempotencyConflict(outcome.error)).toEqual(winner);
      }
    });

    it("put with a key another run holds fails and leaves both runs as they were (no upsert onto the holder)", async () => {
      await a.createThreadOperation("holder", {
        threadId: "t1",
        ownerWorkerId: "w1",
        idempotencyKey: "k",
      });
      await b.put("other", { threadId: "t2", modelName: "m" });
      const holder = await a.get("holder");
      const other = await a.get("other");
      const fresh = await failureOf(b.put("fresh", { threadId: "t3", idempotencyKey: "k" }));
      expect(idempotencyConflict(fresh)).toEqual(holder);
      const overwrite = await failureOf(b.put("other", { threadId: "t2", idempotencyKey: "k" }));
      expect(idempotencyConflict(overwrite)).toEqual(holder);
      expect(await a.get("holder")).toEqual(holder);
      expect(await a.get("other")).toEqual(other);
      expect(await a.get("fresh")).toBeNull();
      // Keys are compared exactly: "k " is another key.
      await b.put("fresh", { threadId: "t3", idempotencyKey: "k " });
      expect((await a.get("fresh"))?.idempotencyKey).toBe("k ");
    });

    it("part 1 writes never make two slot holders: an ended row gives its slot back for good", async () => {
      await a.createThreadOperation("first", { threadId: "t1", ownerWorkerId: "w1" });
      expect(await a.updateStatus("first", "success")).toBe(true);
      await b.createThreadOperation("second", { threadId: "t1", ownerWorkerId: "w2" });
      // Active again through part 1, without the slot: no conflict, one holder.
      expect(await a.updateStatus("first", "running")).toBe(true);
      await a.put("first", { threadId: "t1", status: "pending" });
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "second" }]);
      // A put moving an active slot holder onto a busy thread takes no slot
      // there and keeps none: no conflict, and its old thread is free.
      await a.createThreadOperation("third", { threadId: "t2", ownerWorkerId: "w3" });
      expect(await slotHolders()).toEqual([
        { thread: "t1", run: "second" },
        { thread: "t2", run: "third" },
      ]);
      await b.put("third", { threadId: "t1", status: "running" });
      expect(await a.get("third")).toMatchObject({ threadId: "t1", status: "running" });
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "second" }]);
      // Moved back while active, it still holds nothing.
      await a.put("third", { threadId: "t2", status: "running" });
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "second" }]);
    });

    it("put keeps the slot of a row it leaves on its thread, and drops it with the thread it moves off", async () => {
      await a.createThreadOperation("holder", { threadId: "t1", ownerWorkerId: "w1" });
      await b.put("holder", { threadId: "t1", status: "running", metadata: { n: 1 } });
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "holder" }]);
      // Thread ids compare byte for byte: "t1 " is another thread.
      await b.put("holder", { threadId: "t1 ", status: "running" });
      expect(await slotHolders()).toEqual([]);
      const { run } = await a.createThreadOperation("next", {
        threadId: "t1",
        ownerWorkerId: "w2",
      });
      expect(run.threadId).toBe("t1");
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "next" }]);
    });

    it("racing claimNextRun: every queued run claimed exactly once, per thread in creation order, one at a time", async () => {
      const threads = range(4).map((t) => `thread-${t}`);
      const created: Record<string, string[]> = {};
      for (const threadId of threads) {
        created[threadId] = [];
        for (const i of range(6)) {
          const runId = `${threadId}-run-${i}`;
          await a.createThreadOperation(runId, {
            threadId,
            ownerWorkerId: "admitter",
            multitaskStrategy: "enqueue",
            createdAt: `2026-01-01T00:00:00.00000${i}Z`,
          });
          created[threadId]?.push(runId);
        }
      }
      const claimedInOrder: Record<string, string[]> = Object.fromEntries(
        threads.map((t) => [t, []]),
      );
      const running = new Map<string, string>();
      const violations: string[] = [];
      /** A worker: claims until nothing is left, finishing each run before the next. */
      async function worker(store: MysqlRunStore, name: string): Promise<number> {
        let claims = 0;
        for (;;) {
          const run = await store.claimNextRun(name, { durationMs: 60_000 });
          if (run === null) {
            if (Object.values(claimedInOrder).flat().length === threads.length * 6) return claims;
            // Every run of every free thread is taken; the rest wait on a slot: ask again.
            continue;
          }
          claims++;
          expect(run).toMatchObject({ status: "running", ownerWorkerId: name, queued: false });
          const other = running.get(run.threadId);
          if (other !== undefined) violations.push(`${run.runId} claimed while ${other} runs`);
          running.set(run.threadId, run.runId);
          claimedInOrder[run.threadId]?.push(run.runId);
          // The run "runs": a renewal and a progress snapshot, each a round trip.
          expect(await store.renewLease(run.runId, name, { durationMs: 60_000 })).toEqual({
            renewed: true,
            cancelAction: null,
          });
          await store.updateRunProgress(run.runId, { totalTokens: 1 });
          // Cleared before the run ends: its slot stays taken until the finalize commits.
          running.delete(run.threadId);
          const ended = await store.finalizeIfNotCancelled(run.runId, "success");
          expect(ended).toEqual({ finalized: true, cancelAction: null });
        }
      }
      const claims = await Promise.all(range(8).map((i) => worker(replica(i), `worker-${i}`)));
      expect(violations).toEqual([]);
      expect(claims.reduce((x, y) => x + y, 0)).toBe(threads.length * 6);
      expect(claimedInOrder).toEqual(created);
      expect(await slotHolders()).toEqual([]);
    });

    it("racing claimForTakeover on an expired run: exactly one true; on a live one, none", async () => {
      const runs = await admitExpired(6, "dead-worker");
      await a.createThreadOperation("live", {
        threadId: "thread-live",
        ownerWorkerId: "live-worker",
        lease: { durationMs: 60_000 },
      });
      const claims = await Promise.all(
        [...runs, "live"].flatMap((runId) =>
          range(10).map(async (i) => ({
            runId,
            won: await replica(i).claimForTakeover(runId, { error: "orphaned", stopReason: "x" }),
          })),
        ),
      );
      for (const runId of runs) {
        expect(claims.filter((c) => c.runId === runId && c.won)).toHaveLength(1);
        expect(await a.get(runId)).toMatchObject({
          status: "error",
          error: "orphaned",
          stopReason: "x",
        });
      }
      expect(claims.filter((c) => c.runId === "live" && c.won)).toEqual([]);
      expect((await a.get("live"))?.status).toBe("pending");
      expect(await slotHolders()).toEqual([{ thread: "thread-live", run: "live" }]);
    });

    it("an owner renewing through one replica and reclaimers through the other: exactly one of them wins", async () => {
      const runs = await admitExpired(12, "owner");
      for (const runId of runs) {
        const [renewal, ...takeovers] = await Promise.all([
          a.renewLease(runId, "owner", { durationMs: 60_000 }),
          ...range(4).map(() => b.claimForTakeover(runId, { error: "orphaned" })),
        ]);
        const winners = [renewal?.renewed, ...takeovers].filter((won) => won === true);
        expect(winners, runId).toHaveLength(1);
        expect((await a.get(runId))?.status).toBe(renewal?.renewed ? "pending" : "error");
      }
    });

    it("cancel through one replica racing completion through the other: exactly one outcome per run", async () => {
      const runs = range(16).map((i) => `run-${i}`);
      for (const [i, runId] of runs.entries()) {
        await a.createThreadOperation(runId, { threadId: `thread-${i}`, ownerWorkerId: "owner" });
        expect(await a.startRun(runId)).toBe(true);
      }
      const outcomes = await Promise.all(
        runs.map(async (runId) => {
          const [cancel, finalization] = await Promise.all([
            a.requestCancel(runId, "rollback"),
            b.finalizeIfNotCancelled(runId, "success"),
          ]);
          return { runId, cancel, finalization };
        }),
      );
      for (const { runId, cancel, finalization } of outcomes) {
        const row = await a.get(runId);
        if (finalization.finalized) {
          expect(cancel, runId).toBeNull();
          expect(row).toMatchObject({ status: "success", cancelAction: null });
        } else {
          expect(cancel, runId).toBe("rollback");
          expect(finalization, runId).toEqual({ finalized: false, cancelAction: "rollback" });
          expect(row).toMatchObject({ status: "running", cancelAction: "rollback" });
          // The owner sees the request on its next renewal, through either replica.
          expect(await b.renewLease(runId, "owner", { durationMs: 1000 })).toEqual({
            renewed: true,
            cancelAction: "rollback",
          });
        }
      }
    });

    it("an admission cut off mid-transaction is rolled back whole: the row it took over is untouched", async () => {
      await a.createThreadOperation("old", {
        threadId: "t1",
        ownerWorkerId: "w-old",
        lease: { expiresAt: "2020-01-01T00:00:00Z" },
      });
      // Another session's uncommitted row holds the key: the admission's INSERT
      // waits on it, after its takeover UPDATE of "old" has run.
      const blocker = await createConnection({ uri: db.url });
      await blocker.query("BEGIN");
      await blocker.query(
        "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, " +
          "updated_at, idempotency_key) VALUES ('blocker', 't9', 'success', 'reject', '{}', '{}', " +
          "'2026-01-01', '2026-01-01', 'k')",
      );
      const controller = new AbortController();
      try {
        const call = a.withCallSignal(controller.signal).createThreadOperation("new", {
          threadId: "t1",
          ownerWorkerId: "w-new",
          multitaskStrategy: "interrupt",
          idempotencyKey: "k",
        });
        const inserting = () =>
          runningStatements(db, "INSERT INTO runs (run_id, thread_id, assistant_id");
        await expect.poll(inserting, { timeout: 10_000, interval: 20 }).toBe(1);
        controller.abort();
        expect((await failureOf(call)).code).toBe(Code.Canceled);
        await expect.poll(inserting, { timeout: 10_000, interval: 20 }).toBe(0);
      } finally {
        await blocker.query("ROLLBACK");
        await blocker.end();
      }
      // A write to "old" waits for the cut-off transaction to end: it was rolled back.
      expect(await b.updateStatus("old", "running")).toBe(true);
      expect(await b.get("old")).toMatchObject({
        status: "running",
        ownerWorkerId: "w-old",
        error: null,
      });
      expect(await b.get("new")).toBeNull();
      expect(await slotHolders()).toEqual([{ thread: "t1", run: "old" }]);
    });

    it("claim_next_run's now and list_inflight_with_expired_lease's default before are the database clock's", async () => {
      // A replica whose database sessions say it is 2020 while this process
      // says it is now: a run created in 2025 is in the future for it.
      const pool = createMysqlPool({ url: db.url });
      pool.on("connection", (connection) => {
        connection.query("SET timestamp = 1577836800"); // 2020-01-01T00:00:00Z
      });
      const lagging = new MysqlRunStore(pool.promise());
      try {
        const lease = { expiresAt: "2999-01-01T00:00:00Z" };
        const queued = { ownerWorkerId: "w1", multitaskStrategy: "enqueue" } as const;
        await a.createThreadOperation("old", {
          ...queued,
          threadId: "t1",
          createdAt: "2019-12-31T23:00:00Z",
        });
        await a.createThreadOperation("recent", {
          ...queued,
          threadId: "t2",
          createdAt: "2025-01-01T00:00:00Z",
        });
        expect(await lagging.claimNextRun("w2", lease, { threadId: "t2" })).toBeNull();
        expect(await lagging.claimNextRun("w2", lease)).toMatchObject({ runId: "old" });
        expect(await lagging.claimNextRun("w2", lease)).toBeNull();
        // Orphans (no lease) created before 2020 and in 2025.
        const orphans = {
          "orphan-old": "2019-06-01T00:00:00Z",
          "orphan-recent": "2025-01-01T00:00:00Z",
        };
        for (const [runId, createdAt] of Object.entries(orphans)) {
          await a.put(runId, { threadId: `thread-${runId}`, status: "running", createdAt });
        }
        const ids = (runs: RunRecord[]) => runs.map((run) => run.runId);
        expect(ids(await lagging.listInflightWithExpiredLease())).toEqual(["orphan-old"]);
        // A `before` the caller gives is used as given.
        const before = "2026-01-01T00:00:00Z";
        expect(ids(await lagging.listInflightWithExpiredLease({ before }))).toEqual([
          "orphan-old",
          "orphan-recent",
        ]);
        expect(ids(await a.listInflightWithExpiredLease())).toEqual([
          "orphan-old",
          "orphan-recent",
        ]);
        expect(await a.claimNextRun("w3", lease)).toMatchObject({ runId: "recent" });
      } finally {
        await lagging.close();
      }
    });

    it("a relative lease is an instant on the database clock: its UTC now plus the duration", async () => {
      const connection = await createConnection({ uri: db.url, dateStrings: true });
      try {
        await connection.query("SET time_zone = '+05:00'");
        const [[before]] = (await connection.query(
          "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ') AS now",
        )) as unknown as [[{ now: string }]];
        const { run } = await a.createThreadOperation("r1", {
          threadId: "t1",
          ownerWorkerId: "w1",
          lease: { durationMs: 3_600_000 },
        });
        const [[after]] = (await connection.query(
          "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ') AS now",
        )) as unknown as [[{ now: string }]];
        const hour = 3_600_000;
        const lease = Date.parse(run.leaseExpiresAt as string);
        expect(lease).toBeGreaterThanOrEqual(Date.parse(before.now) + hour - 1);
        expect(lease).toBeLessThanOrEqual(Date.parse(after.now) + hour + 1);
      } finally {
        await connection.end();
      }
    });
  });
}
