import { RemoteRunStore } from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type ChildServer, spawnServer } from "../support/child-server.js";
import { type WorkerEvent, WorkerProcess } from "./worker-process.js";

// Several workers, one store (docs/workers.md): server replicas on one
// database and four worker processes (worker.ts), each a small runtime loop
// on RemoteRunStore. workers.test.ts runs it with two replicas on one
// MariaDB, test/galera/workers.test.ts with three, each on its own node of
// a Galera cluster.

/** The victim's lease, short so the takeover comes soon. */
const VICTIM_LEASE_MS = 3000;
/**
 * Everyone else's: long enough that a live run is never taken over on a
 * loaded machine (it would take a renewal stall of over 16 s).
 */
const LIVE_LEASE_MS = 15_000;
const GRACE_SECONDS = 1;
/** A fixed-width timestamp's milliseconds since the epoch. */
const millis = (timestamp: string | null | undefined) =>
  Date.parse(`${String(timestamp).slice(0, 23)}Z`);

/** The databases a run of the suite uses: one per replica, and where the audits read. */
export interface WorkersDatabase {
  /** Each replica's DATABASE_URL (worker i talks to replica i % n; at least two). */
  replicaUrls: string[];
  /** Where the audits read the runs table, each URL in turn. */
  auditUrls: string[];
  drop(): Promise<void>;
}

/**
 * The multi-worker test: a replica per URL of `db` (null: MySQL opted out,
 * a todo) and four worker processes. The assertions are the invariants;
 * the counts are printed as one report line named `label`.
 */
export function describeWorkers(name: string, label: string, db: WorkersDatabase | null): void {
  const counts = {
    admissions: 0,
    conflicts: 0,
    audits: 0,
    queueAudits: 0,
    takeovers: 0,
    cancels: 0,
    claims: 0,
  };

  describe(name, () => {
    if (db === null) {
      it.todo("not run: MySQL opted out (RUNSTORE_SKIP=mysql)");
      return;
    }
    let replicas: ChildServer[] = [];
    let workers: WorkerProcess[] = [];
    /** A client of each replica; viaA and viaB are the first two. */
    let via: RemoteRunStore[] = [];
    let viaA: RemoteRunStore;
    let viaB: RemoteRunStore;
    /** The replica worker `i` (id `w${i}`) talks to. */
    const replicaOf = (i: number) => i % (db?.replicaUrls.length ?? 1);

    beforeAll(async () => {
      replicas = await Promise.all(
        // A start-up bound for a loaded machine: several tsx processes start at once.
        db.replicaUrls.map((url) => spawnServer({ DATABASE_URL: url }, 60_000)),
      );
      const urls = replicas.map((r) => r.url);
      workers = [0, 1, 2, 3].map(
        (i) =>
          new WorkerProcess(
            `w${i}`,
            urls[replicaOf(i)] ?? "",
            i === 0 ? VICTIM_LEASE_MS : LIVE_LEASE_MS,
          ),
      );
      await Promise.all(workers.map((w) => w.next((e) => e.event === "ready")));
      via = urls.map((baseUrl) => new RemoteRunStore({ baseUrl }));
      [viaA, viaB] = via as [RemoteRunStore, RemoteRunStore];
    }, 120_000);

    afterAll(async () => {
      console.log(`REPORT ${label} ${JSON.stringify(counts)}`);
      for (const client of via) client.close();
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(replicas.map((r) => r.stop()));
      expect(workers.flatMap((w) => w.all("error"))).toEqual([]);
      await db.drop();
    });

    let audits = 0;
    /** The next of the audit URLs, in turn. */
    const nextAuditUrl = () => db?.auditUrls[audits++ % db.auditUrls.length] ?? "";

    /** Active rows per thread, straight from the database. */
    async function threadsWithTwoActive(): Promise<string[]> {
      const connection = await createConnection({ uri: nextAuditUrl() });
      try {
        const [rows] = await connection.query(
          "SELECT thread_id FROM runs WHERE status IN ('pending','running') GROUP BY thread_id HAVING COUNT(*) > 1",
        );
        return (rows as { thread_id: string }[]).map((r) => r.thread_id);
      } finally {
        await connection.end();
      }
    }

    /** What breaks queue order or one-at-a-time on a queued thread right now. */
    async function queueViolations(threadId: string): Promise<string[]> {
      const connection = await createConnection({ uri: nextAuditUrl() });
      try {
        const [rows] = await connection.query(
          "SELECT run_id, status, queued FROM runs WHERE thread_id = ? ORDER BY created_at, run_id",
          [threadId],
        );
        const found: string[] = [];
        let queuedSeen = false;
        for (const row of rows as { run_id: string; status: string; queued: number }[]) {
          if (row.queued) queuedSeen = true;
          else if (queuedSeen) found.push(`${row.run_id} started before an older queued run`);
        }
        const running = (rows as { status: string }[]).filter((r) => r.status === "running");
        if (running.length > 1) found.push(`${threadId} has ${running.length} running`);
        return found;
      } finally {
        await connection.end();
      }
    }

    /** Every worker's events of one kind. */
    const all = (event: string): WorkerEvent[] => workers.flatMap((w) => w.all(event));

    /** Finishes the runs each worker holds and waits for their outcome. */
    async function finishAll(runIds: string[]): Promise<void> {
      for (const runId of runIds) {
        const owner = workers.find((w) => w.all("started").some((e) => e.runId === runId));
        owner?.send({ cmd: "finish", runId });
      }
      await vi.waitFor(
        () => {
          const ended = new Set([...all("finalized"), ...all("cancelled")].map((e) => e.runId));
          expect(runIds.filter((id) => !ended.has(id))).toEqual([]);
        },
        { timeout: 20_000, interval: 50 },
      );
    }

    it("admission storm: every worker races reject on every thread; never two active runs on a thread", async () => {
      const threads = Array.from({ length: 24 }, (_, i) => `storm-${i}`);
      for (const threadId of threads) {
        for (const worker of workers) {
          worker.send({
            cmd: "admit",
            runId: `${threadId}-${worker.id}`,
            threadId,
            strategy: "reject",
          });
        }
      }
      const outcomes = () => all("admitted").length + all("conflict").length;
      const violations: string[] = [];
      while (outcomes() < threads.length * workers.length) {
        violations.push(...(await threadsWithTwoActive()));
        counts.audits++;
        expect(all("failed")).toEqual([]);
      }
      violations.push(...(await threadsWithTwoActive()));
      expect(violations).toEqual([]);
      const admitted = all("admitted");
      const perThread = new Map(threads.map((t) => [t, 0]));
      for (const e of admitted)
        perThread.set(e.threadId ?? "", (perThread.get(e.threadId ?? "") ?? 0) + 1);
      expect([...perThread.values()]).toEqual(threads.map(() => 1));
      expect(all("conflict")).toHaveLength(threads.length * (workers.length - 1));
      counts.admissions += admitted.length;
      counts.conflicts += all("conflict").length;
      await vi.waitFor(() => expect(all("started")).toHaveLength(threads.length), {
        timeout: 20_000,
      });
      await finishAll(admitted.map((e) => e.runId ?? ""));
      const finals = await Promise.all(admitted.map((e) => viaA.get(e.runId ?? "")));
      expect(finals.map((r) => r?.status)).toEqual(admitted.map(() => "success"));
    }, 120_000);

    it("SIGKILL a worker mid-run: each of its runs is taken over once, after lease + grace; no live run is", async () => {
      const [victim, ...survivors] = workers;
      if (victim === undefined) throw new Error("no workers");
      const victimRuns = [0, 1, 2, 3].map((i) => `orphan-${i}`);
      const liveRuns = survivors.flatMap((w) => [0, 1].map((i) => `live-${w.id}-${i}`));
      for (const runId of victimRuns)
        victim.send({ cmd: "admit", runId, threadId: `t-${runId}`, strategy: "reject" });
      for (const w of survivors) {
        for (const runId of liveRuns.filter((id) => id.startsWith(`live-${w.id}-`))) {
          w.send({ cmd: "admit", runId, threadId: `t-${runId}`, strategy: "reject" });
        }
      }
      const started = () => new Set(all("started").map((e) => e.runId));
      await vi.waitFor(
        () => expect([...victimRuns, ...liveRuns].every((id) => started().has(id))).toBe(true),
        {
          timeout: 20_000,
        },
      );
      await victim.kill();
      const lastLease = new Map<string, string>();
      for (const runId of victimRuns)
        lastLease.set(runId, (await viaA.get(runId))?.leaseExpiresAt ?? "");

      // Survivors sweep for orphans until every victim run is taken over.
      const tookOver = () => survivors.flatMap((w) => w.all("took-over"));
      await vi.waitFor(
        async () => {
          const reaped = survivors.map((w) => w.next((e) => e.event === "reaped", w.events.length));
          for (const w of survivors) w.send({ cmd: "reap", graceSeconds: GRACE_SECONDS });
          await Promise.all(reaped);
          expect(new Set(tookOver().map((e) => e.runId))).toEqual(new Set(victimRuns));
        },
        { timeout: 30_000, interval: 200 },
      );
      expect(
        tookOver()
          .map((e) => e.runId)
          .sort(),
      ).toEqual([...victimRuns].sort());
      counts.takeovers += tookOver().length;
      for (const runId of victimRuns) {
        const run = await viaB.get(runId);
        expect(run).toMatchObject({
          status: "error",
          stopReason: "orphan_recovered",
          ownerWorkerId: "w0",
        });
        // Taken over only once the lease, as last renewed, was past its grace.
        const expiry = millis(lastLease.get(runId));
        expect(millis(run?.updatedAt)).toBeGreaterThanOrEqual(expiry + GRACE_SECONDS * 1000);
      }
      const live = await Promise.all(liveRuns.map((id) => viaA.get(id)));
      expect(live.map((r) => r?.status)).toEqual(liveRuns.map(() => "running"));
      await finishAll(liveRuns);
      workers = survivors;
    }, 120_000);

    it("a cancel through one replica reaches the owner renewing through the other; cancel vs completion has one outcome", async () => {
      const [owner] = workers;
      if (owner === undefined) throw new Error("no workers");
      owner.send({ cmd: "admit", runId: "cancel-0", threadId: "t-cancel-0", strategy: "reject" });
      await owner.next((e) => e.event === "started" && e.runId === "cancel-0");
      // The owner talks to one replica; the cancel goes through another one.
      const ownerReplica = replicaOf(Number(owner.id.slice(1)));
      const through = via[(ownerReplica + 1) % via.length] as RemoteRunStore;
      expect(await through.requestCancel("cancel-0", "interrupt")).toBe("interrupt");
      await owner.next((e) => e.event === "cancelled" && e.runId === "cancel-0");
      expect(await viaA.get("cancel-0")).toMatchObject({
        status: "interrupted",
        cancelAction: "interrupt",
      });
      counts.cancels++;

      const racing = workers.flatMap((w) =>
        [0, 1, 2].map((i) => ({ w, runId: `race-${w.id}-${i}` })),
      );
      for (const { w, runId } of racing)
        w.send({ cmd: "admit", runId, threadId: `t-${runId}`, strategy: "reject" });
      await vi.waitFor(
        () =>
          expect(racing.every(({ runId }) => all("started").some((e) => e.runId === runId))).toBe(
            true,
          ),
        {
          timeout: 20_000,
        },
      );
      const answers = await Promise.all(
        racing.map(({ w, runId }) => {
          w.send({ cmd: "finish", runId });
          return viaA.requestCancel(runId, "rollback");
        }),
      );
      await finishAll(racing.map((r) => r.runId));
      for (const [i, { runId }] of racing.entries()) {
        const finalized = all("finalized").find((e) => e.runId === runId);
        const run = await viaB.get(runId);
        if (finalized?.finalized === true) {
          expect([answers[i], run?.status, run?.cancelAction]).toEqual([null, "success", null]);
        } else {
          expect([answers[i], run?.status, run?.cancelAction]).toEqual([
            "rollback",
            "interrupted",
            "rollback",
          ]);
          counts.cancels++;
        }
      }
    }, 120_000);

    it("enqueue: runs of one thread start in creation order, one at a time, each exactly once", async () => {
      const queues = { "queue-a": 8, "queue-b": 4 };
      const created: string[] = [];
      for (const [threadId, n] of Object.entries(queues)) {
        for (let i = 0; i < n; i++) {
          const runId = `${threadId}-${i}`;
          // created_at chosen by the test, so the creation order is known exactly.
          const createdAt = `2026-01-01T00:00:0${i}.000000Z`;
          await viaA.createThreadOperation(runId, {
            threadId,
            ownerWorkerId: "admitter",
            multitaskStrategy: "enqueue",
            createdAt,
          });
          created.push(runId);
        }
      }
      let done = false;
      const drained = Promise.all(
        workers.map((w) => w.next((e) => e.event === "drained", w.events.length)),
      ).then(() => {
        done = true;
      });
      for (const w of workers) w.send({ cmd: "claim" });
      // Audited throughout the drain, straight from the database: on each
      // queue, the claimed runs are always a prefix of creation order (none
      // started before an older one) and at most one of them is running.
      const violations: string[] = [];
      while (!done) {
        for (const threadId of Object.keys(queues))
          violations.push(...(await queueViolations(threadId)));
        counts.queueAudits++;
      }
      await drained;
      expect(violations).toEqual([]);
      const claims = all("claimed");
      expect(claims.map((e) => e.runId).sort()).toEqual([...created].sort());
      counts.claims += claims.length;
      const finals = await Promise.all(created.map((id) => viaB.get(id)));
      expect(finals.map((r) => r?.status)).toEqual(created.map(() => "success"));
    }, 120_000);
  });
}
