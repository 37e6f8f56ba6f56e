import { Code, ConnectError } from "@runstore/client";
import { Registry } from "prom-client";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import {
  RetentionSweeper,
  type SweepReport,
  type SweepsTerminalRuns,
  sweepLeaseMs,
  sweepsTerminalRuns,
} from "../../src/retention.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import {
  deleteTerminalStatement,
  RETENTION_STATEMENTS,
  SWEEP_LEASE,
} from "../../src/stores/mysql-retention.js";
import { logLines, spawnServer } from "../support/child-server.js";
import { createTestDatabase, observedStore } from "../support/mysql.js";
import { capturingLogger, deletedTotal, settings, sweepLines } from "../support/retention.js";

// RETENTION_DAYS on MySQL (docs/operations.md "Retention"), on a real
// database: rows with an old updated_at are inserted by SQL; sweeps are
// driven with sweepOnce(). Two stores on their own pools, each with its
// own RetentionSweeper, are two replicas of one database.

const db = await createTestDatabase("retention");

const OLD = "2020-01-01 00:00:00.000000";

if (db === null) {
  describe("retention on MySQL", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const pool = createMysqlPool({ url: db.url }, { connectionLimit: 2 }).promise();
  const store = db.openStore();
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });
  beforeEach(async () => {
    await db.truncate();
    await pool.query("DELETE FROM runstore_leases");
  });

  /** Inserts runs `[runId, status, updated_at (SQL; null: now), kind?]` directly. */
  async function insert(rows: [string, string, string | null, string?][]): Promise<void> {
    for (let start = 0; start < rows.length; start += 1000) {
      const values = rows
        .slice(start, start + 1000)
        .map(([runId, status, updatedAt, kind]) => [
          runId,
          `thread-${runId.length % 5}`,
          status,
          "reject",
          "{}",
          "{}",
          OLD,
          updatedAt ?? new Date().toISOString().replace("T", " ").replace("Z", ""),
          kind ?? "run",
        ]);
      await pool.query(
        "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, " +
          "created_at, updated_at, operation_kind) VALUES ?",
        [values],
      );
    }
  }

  /** `count` old successful runs named `${prefix}${i}`, one microsecond apart. */
  function oldRuns(prefix: string, count: number): [string, string, string][] {
    return Array.from({ length: count }, (_, i) => [
      `${prefix}${String(i).padStart(5, "0")}`,
      ["success", "error", "timeout", "interrupted"][i % 4] as string,
      `2020-01-01 00:00:00.${String(i).padStart(6, "0")}`,
    ]);
  }

  async function storedIds(): Promise<string[]> {
    const [rows] = await pool.query("SELECT CAST(run_id AS CHAR) AS id FROM runs ORDER BY run_id");
    return (rows as { id: string }[]).map((row) => row.id);
  }

  async function count(): Promise<number> {
    const [rows] = await pool.query("SELECT COUNT(*) AS n FROM runs");
    return Number((rows as { n: number }[])[0]?.n);
  }

  /** Makes the sweep lease expired, as if its holder had died a while ago. */
  async function expireLease(): Promise<void> {
    await pool.query(
      "UPDATE runstore_leases SET expires_at = NOW(6) - INTERVAL 1 SECOND WHERE name = ?",
      [SWEEP_LEASE],
    );
  }

  describe("retention on MySQL", () => {
    it("is a store the sweeper can drive", () => {
      expect(sweepsTerminalRuns(store)).toBe(true);
    });

    it("deletes only terminal runs of any kind updated before the cutoff, never an active one", async () => {
      await insert([
        ["old-success", "success", OLD],
        ["old-error", "error", OLD],
        ["old-timeout", "timeout", OLD],
        ["old-interrupted", "interrupted", OLD],
        ["old-checkpoint", "success", OLD, "checkpoint_write"],
        ["old-pending", "pending", OLD],
        ["old-running", "running", OLD],
        ["new-success", "success", null],
        ["edge-success", "success", "2020-01-02 00:00:00.000000"],
      ]);
      const report = await store.sweepTerminal("2020-01-02T00:00:00Z", 100);
      expect(report).toBe(5);
      expect(await storedIds()).toEqual([
        "edge-success", // updated exactly at the cutoff: not before it
        "new-success",
        "old-pending",
        "old-running",
      ]);
      const { logger, lines } = capturingLogger();
      expect(await new RetentionSweeper(store, settings(), logger).sweepOnce()).toMatchObject({
        swept: true,
        ended: "done",
        deleted: 1,
        batches: 1,
      });
      expect(await storedIds()).toEqual(["new-success", "old-pending", "old-running"]);
      expect(sweepLines(lines)).toHaveLength(1);
    });

    it("deletes a batch's ids only if they are still terminal and old when the DELETE runs", async () => {
      await insert([
        ["now-running", "running", OLD],
        ["now-new", "success", null],
        ["still-old", "error", OLD],
      ]);
      const [result] = await pool.execute(deleteTerminalStatement(4), [
        "now-running",
        "now-new",
        "still-old",
        "still-old",
        "2020-06-01 00:00:00.000000",
      ]);
      expect((result as { affectedRows: number }).affectedRows).toBe(1);
      expect(await storedIds()).toEqual(["now-new", "now-running"]);
    });

    it("deletes 1,200 old runs in 3 batches of at most 500 (counted DELETE by DELETE), one log line, the metric", async () => {
      await insert([
        ...oldRuns("old-", 1200),
        ["old-active", "pending", OLD],
        ["new", "error", null],
      ]);
      const deletes: number[] = [];
      const observed = observedStore(db.url, (sql, result) => {
        if (sql.startsWith("DELETE")) deletes.push(result.affectedRows ?? -1);
      });
      try {
        const registry = new Registry();
        const { logger, lines } = capturingLogger();
        const sweeper = new RetentionSweeper(
          observed,
          settings({ batchSize: 500 }),
          logger,
          registry,
        );
        expect(await deletedTotal(registry)).toBe(0);
        expect(await sweeper.sweepOnce()).toMatchObject({
          swept: true,
          ended: "done",
          deleted: 1200,
          batches: 3,
        });
        expect(deletes).toEqual([500, 500, 200]);
        expect(await storedIds()).toEqual(["new", "old-active"]);
        expect(await deletedTotal(registry)).toBe(1200);
        expect(sweepLines(lines)).toEqual([
          expect.objectContaining({ level: 30, swept: true, deleted: 1200, batches: 3 }),
        ]);
      } finally {
        await observed.close();
      }
    });

    it("reads a batch through runs_status_updated, in index order (no sort), and deletes by primary key", async () => {
      await insert([...oldRuns("old-", 3000), ["active", "running", OLD]]);
      await pool.query("ANALYZE TABLE runs");
      const [select] = await pool.query(`EXPLAIN ${RETENTION_STATEMENTS.oldTerminal}`, [
        "2021-01-01 00:00:00",
        500,
      ]);
      const [row] = select as { key: string; type: string; Extra: string }[];
      expect(row?.key).toBe("runs_status_updated");
      expect(row?.type).toBe("range");
      expect(row?.Extra).not.toMatch(/filesort/);
      const [remove] = await pool.query(`EXPLAIN ${deleteTerminalStatement(2)}`, [
        "old-00001",
        "old-00002",
        "2021-01-01 00:00:00",
      ]);
      const [plan] = remove as { key: string; type: string }[];
      expect(plan?.key).toBe("PRIMARY");
      expect(plan?.type).toBe("range");
    });

    it("a lease: taken when free, renewed by its holder, refused to others until it expires", async () => {
      const other = db.openStore();
      expect(await store.claimSweep("replica-a", 60_000)).toBe(true);
      expect(await other.claimSweep("replica-b", 60_000)).toBe(false);
      const [[before]] = (await pool.query(
        "SELECT holder, expires_at FROM runstore_leases WHERE name = ?",
        [SWEEP_LEASE],
      )) as unknown as [{ holder: string; expires_at: Date }[]];
      expect(await store.claimSweep("replica-a", 120_000)).toBe(true);
      const [[after]] = (await pool.query(
        "SELECT holder, expires_at FROM runstore_leases WHERE name = ?",
        [SWEEP_LEASE],
      )) as unknown as [{ holder: string; expires_at: Date }[]];
      expect(after?.holder).toBe("replica-a");
      expect(String(after?.expires_at) > String(before?.expires_at)).toBe(true);
      expect(await other.claimSweep("replica-b", 60_000)).toBe(false);
      await expireLease();
      expect(await other.claimSweep("replica-b", 60_000)).toBe(true);
      expect(await store.claimSweep("replica-a", 60_000)).toBe(false);
    });

    for (const lease of ["absent", "expired"] as const) {
      it(`two replicas sweeping at once (lease ${lease}): one sweeps, no run is deleted twice`, async () => {
        await insert([...oldRuns("old-", 1200), ["old-active", "running", OLD]]);
        if (lease === "expired") {
          await pool.query(
            "INSERT INTO runstore_leases VALUES (?, 'gone', NOW(6) - INTERVAL 1 SECOND)",
            [SWEEP_LEASE],
          );
        }
        const replicas = [db.openStore(), db.openStore()].map((replica) => {
          const registry = new Registry();
          const { logger, lines } = capturingLogger();
          const sweeper = new RetentionSweeper(
            replica,
            settings({ batchSize: 500 }),
            logger,
            registry,
          );
          return { sweeper, registry, lines };
        });
        const reports = await Promise.all(replicas.map((r) => r.sweeper.sweepOnce()));
        expect(reports.map((r) => r.swept).sort()).toEqual([false, true]);
        const loser = reports.find((r) => !r.swept) as SweepReport;
        expect(loser).toMatchObject({ ended: "held elsewhere", deleted: 0, batches: 0 });
        expect(reports.reduce((sum, r) => sum + r.deleted, 0)).toBe(1200);
        const counted = await Promise.all(replicas.map((r) => deletedTotal(r.registry)));
        expect(counted.sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([0, 1200]);
        expect(replicas.map((r) => sweepLines(r.lines).length).sort()).toEqual([0, 1]);
        expect(await storedIds()).toEqual(["old-active"]);
      });
    }

    it("the sweeping replica keeps the lease between batches: another one does not start on the same rows", async () => {
      await insert(oldRuns("old-", 300));
      const replicaB = new RetentionSweeper(db.openStore(), settings(), capturingLogger().logger);
      const during: SweepReport[] = [];
      // Replica A's real store; after each of A's batches, B tries to sweep.
      const storeA = db.openStore();
      const hooked: SweepsTerminalRuns = {
        claimSweep: (holder, leaseMs) => storeA.claimSweep(holder, leaseMs),
        async sweepTerminal(cutoff, limit) {
          const deleted = await storeA.sweepTerminal(cutoff, limit);
          during.push(await replicaB.sweepOnce());
          return deleted;
        },
      };
      const replicaA = new RetentionSweeper(
        hooked,
        settings({ batchSize: 100 }),
        capturingLogger().logger,
      );
      expect(await replicaA.sweepOnce()).toMatchObject({
        swept: true,
        ended: "done",
        deleted: 300,
        batches: 4,
      });
      expect(during.map((r) => r.swept)).toEqual([false, false, false, false]);
      expect(await count()).toBe(0);
    });

    it("a sweep whose lease expired midway stops when another replica has taken it; together they delete each run once", async () => {
      await insert(oldRuns("old-", 300));
      const replicaB = new RetentionSweeper(
        db.openStore(),
        settings({ batchSize: 100 }),
        capturingLogger().logger,
      );
      let taken: SweepReport | null = null;
      const storeA = db.openStore();
      const hooked: SweepsTerminalRuns = {
        claimSweep: (holder, leaseMs) => storeA.claimSweep(holder, leaseMs),
        async sweepTerminal(cutoff, limit) {
          const deleted = await storeA.sweepTerminal(cutoff, limit);
          if (taken === null) {
            await expireLease(); // A's first batch outlasted its lease
            taken = await replicaB.sweepOnce();
          }
          return deleted;
        },
      };
      const { logger, lines } = capturingLogger();
      const replicaA = new RetentionSweeper(hooked, settings({ batchSize: 100 }), logger);
      const report = await replicaA.sweepOnce();
      expect(report).toMatchObject({ swept: true, ended: "lease lost", deleted: 100, batches: 1 });
      expect(taken).toMatchObject({ swept: true, ended: "done", deleted: 200, batches: 3 });
      expect(await count()).toBe(0);
      expect(sweepLines(lines)).toEqual([expect.objectContaining({ ended: "lease lost" })]);
    });

    it("REPORT: how fast a sweep deletes (batches of 500, no pause)", async () => {
      const runs = 20_000;
      await insert(oldRuns("old-", runs));
      await pool.query("UPDATE runs SET metadata = JSON_OBJECT('note', REPEAT('x', 400))");
      const sweeper = new RetentionSweeper(
        store,
        settings({ batchSize: 500 }),
        capturingLogger().logger,
      );
      const began = performance.now();
      const report = await sweeper.sweepOnce();
      const ms = performance.now() - began;
      expect(report).toMatchObject({ deleted: runs, batches: runs / 500 + 1 });
      console.log(
        `REPORT retention: ${runs} terminal runs (~0.5 KB each) deleted in ${report.batches} batches of 500 in ${Math.round(ms)} ms: ` +
          `${(ms / report.batches).toFixed(1)} ms a batch, ${Math.round((runs / ms) * 1000)} runs/s before RETENTION_PAUSE_MS`,
      );
    });

    it("a server started with RETENTION_DAYS=1 deletes an old terminal run and counts it on /metrics", async () => {
      await insert([
        ["old-done", "success", OLD],
        ["old-active", "running", OLD],
        ["recent-done", "success", null],
      ]);
      const server = await spawnServer({
        DATABASE_URL: db.url,
        RETENTION_DAYS: "1",
        METRICS_PORT: "0",
      });
      try {
        const line = logLines(server.stderr()).find((l) => l.msg === "serving Prometheus metrics");
        const metrics = line?.url as string; // http://host:port/metrics
        // Polls the scrape until the sweep at start-up has counted its run.
        await expect
          .poll(
            async () =>
              /^runstore_runs_deleted_total\{reason="retention"\} (\d+)$/m.exec(
                await (await fetch(metrics)).text(),
              )?.[1],
            {
              timeout: 30_000,
              interval: 50,
            },
          )
          .toBe("1");
        expect(await storedIds()).toEqual(["old-active", "recent-done"]);
        const sweeps = logLines(server.stderr()).filter((l) => l.msg === "retention sweep");
        expect(sweeps).toEqual([
          expect.objectContaining({
            level: 30,
            deleted: 1,
            batches: 1,
            ended: "done",
            swept: true,
          }),
        ]);
        expect(await server.stop()).toBe(0);
      } finally {
        server.child.kill("SIGKILL");
      }
    }, 90_000);

    it("the lease outlives one interval and one pause", () => {
      expect(sweepLeaseMs({ intervalMs: 600_000, pauseMs: 100 })).toBe(630_100);
    });

    it("refuses bad arguments naming the field, deleting nothing", async () => {
      await insert([["old", "success", OLD]]);
      const refusal = await store.sweepTerminal("2020-06-01T00:00:00Z", 0).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(ConnectError);
      expect((refusal as ConnectError).code).toBe(Code.InvalidArgument);
      expect((refusal as ConnectError).rawMessage).toBe("limit must be an integer from 1 to 10000");
      const holder = await store.claimSweep("x".repeat(256), 1000).catch((e: unknown) => e);
      expect((holder as ConnectError).rawMessage).toBe(
        "holder must be a string of 1 to 255 characters",
      );
      expect(await storedIds()).toEqual(["old"]);
    });
  });
}
