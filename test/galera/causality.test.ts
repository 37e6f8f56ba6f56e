import type { RunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../../src/config.js";
import { openStore } from "../../src/open-store.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { type ClusterDatabase, createClusterDatabase } from "./cluster-db.js";

// Read-your-writes across nodes: a call through one node sees what an
// earlier call committed through another, because every pooled session
// waits for causality (wsrep_sync_wait = 3, mysql-pool.ts). The cost of
// those waits is measured against sessions that turn them off, and the
// anomaly they prevent is counted there too (REPORT lines, no assertions
// on either).

/** Rounds of the read-your-writes walk (9 calls each). */
const ROUNDS = 100;
/** Put-then-Get pairs without causality checks. */
const PAIRS = 300;
/** Timed calls of each kind, alternating checked / unchecked. */
const TIMED = 300;

let db: ClusterDatabase;
let stores: MysqlRunStore[];
/** Stores like `stores` whose sessions turn the causality checks off again. */
let unchecked: MysqlRunStore[];

/** A store on `url` whose sessions set wsrep_sync_wait = 0 after the pool's own setup. */
function withoutCausality(url: string): MysqlRunStore {
  const pool = createMysqlPool({ url, poolSize: 4 });
  pool.on("connection", (connection) => connection.query("SET SESSION wsrep_sync_wait = 0"));
  return new MysqlRunStore(
    pool.promise(),
    {},
    createMysqlPool({ url }, { connectionLimit: 1 }).promise(),
  );
}

beforeAll(async () => {
  db = await createClusterDatabase("causality");
  stores = db.openStores();
  unchecked = db.urls.map(withoutCausality);
});

afterAll(async () => {
  await Promise.all(unchecked.map((store) => store.close()));
  await db.drop();
});

/** Node i's store and the next two nodes' (the same three, in turn). */
const via = (list: RunStore[], i: number) =>
  [0, 1, 2].map((k) => list[(i + k) % list.length] as RunStore) as [RunStore, RunStore, RunStore];

describe("read-your-writes across the nodes of a Galera cluster", () => {
  it("start-up on a node says it is a Galera node, and every pooled session waits for causality", async () => {
    const opened = await openStore(readConfig({ DATABASE_URL: db.urls[1] }));
    try {
      expect(opened.description).toBe(
        `using MySQL at ${db.urls[1]}; a Galera cluster node (wsrep_on): ` +
          "causality checks on every connection (wsrep_sync_wait = 3)",
      );
    } finally {
      await opened.close();
    }
    const pool = createMysqlPool({ url: db.urls[2] ?? "" }, { connectionLimit: 1 }).promise();
    try {
      const [rows] = await pool.query("SELECT @@SESSION.wsrep_sync_wait AS wait");
      expect(rows).toEqual([{ wait: 3 }]);
    } finally {
      await pool.end();
    }
  });

  it(`${ROUNDS} times: put through one node, then get, list, update, delete and get through the others: each sees the last write`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b, c] = via(stores, i);
      const runId = `r-${i}`;
      await a.put(runId, { threadId: `t-${i % 7}`, status: "pending", metadata: { i } });
      expect((await b.get(runId))?.metadata).toEqual({ i });
      expect((await c.listByThread(`t-${i % 7}`, { limit: 1 })).map((r) => r.runId)).toEqual([
        runId,
      ]);
      expect(await a.updateStatus(runId, "running")).toBe(true);
      expect((await b.get(runId))?.status).toBe("running");
      expect(await c.updateRunCompletion(runId, { status: "success", totalTokens: i })).toBe(true);
      expect((await a.get(runId))?.totalTokens).toBe(i);
      if (i % 2 === 0) {
        await b.delete(runId);
        expect(await c.get(runId)).toBeNull();
        expect(await a.updateStatus(runId, "error")).toBe(false);
      }
    }
  });

  it("REPORT: what the causality checks cost (Get and ListByThread through another node) and what they prevent", async () => {
    // Rows to read: one thread of 20 runs, put through node 0.
    for (let i = 0; i < 20; i++) {
      await (stores[0] as RunStore).put(`cost-${i}`, { threadId: "cost", status: "pending" });
    }
    const timings = {
      get: { checked: [] as number[], unchecked: [] as number[] },
      list: { checked: [] as number[], unchecked: [] as number[] },
    };
    const timed = async (into: number[], call: () => Promise<unknown>) => {
      const started = performance.now();
      await call();
      into.push(performance.now() - started);
    };
    // Each checked call is followed by the same unchecked one, so a busy
    // moment of the machine falls on both alike; medians, not means.
    const [checked, plain] = [stores[1] as RunStore, unchecked[1] as RunStore];
    for (let i = 0; i < TIMED; i++) {
      const runId = `cost-${i % 20}`;
      await timed(timings.get.checked, () => checked.get(runId));
      await timed(timings.get.unchecked, () => plain.get(runId));
      await timed(timings.list.checked, () => checked.listByThread("cost", { limit: 20 }));
      await timed(timings.list.unchecked, () => plain.listByThread("cost", { limit: 20 }));
    }
    const median = (values: number[]) => {
      const sorted = [...values].sort((x, y) => x - y);
      return `${((sorted[Math.floor(sorted.length / 2)] ?? 0) * 1000).toFixed(0)} µs`;
    };
    console.log(
      `REPORT galera causality cost (median of ${TIMED} calls each, through node 1): ` +
        `Get ${median(timings.get.checked)} with wsrep_sync_wait = 3, ${median(timings.get.unchecked)} without; ` +
        `ListByThread of 20 runs ${median(timings.list.checked)} with, ${median(timings.list.unchecked)} without`,
    );
    // Without the checks: a Get right after a Put through another node.
    let missed = 0;
    for (let i = 0; i < PAIRS; i++) {
      const [a, b] = via(unchecked, i);
      await a.put(`stale-${i}`, { threadId: "stale", status: "pending" });
      if ((await b.get(`stale-${i}`)) === null) missed += 1;
    }
    console.log(
      `REPORT galera without causality checks: a Get right after a Put through another node missed the run ${missed} times in ${PAIRS}`,
    );
  });
});
