import { randomBytes } from "node:crypto";
import { RemoteRunStore } from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type GaleraCluster, startGaleraCluster } from "../../scripts/galera-cluster.mjs";
import { migrate } from "../../src/stores/mysql-migrations.js";
import { type ChildServer, spawnServer } from "../support/child-server.js";
import { until } from "../support/until.js";
import {
  type Failure,
  type RunRow,
  readRuns,
  recordFailedAttempts,
  WriteLoad,
} from "./write-load.js";

// Losing a machine under load: three server replica processes (src/main.ts),
// each on a different node of a Galera cluster of this file's own (it kills
// and restarts nodes, so it does not use the cluster the other files share),
// and one RemoteRunStore with the three URLs driving a mixed write load
// (write-load.ts: puts, admissions, starts, progress, completions). A node
// is SIGKILLed mid-load: every acknowledged write must be on the two
// survivors, and on the killed node once it rejoined; then a replica process
// is SIGKILLed mid-load: every acknowledged write must be on every node. The
// errors the caller saw, and for how long, are report lines, never asserted.

/** Concurrent loops of the load (each one run at a time). */
const LOOPS = 6;
/** Writes acknowledged before the kill, and after the cluster (or client) has moved on. */
const BEFORE = 60;
const AFTER = 120;
/** The node killed (its replica's calls fail over to the other two). */
const KILLED_NODE = 1;
/** The replica process killed in the second test. */
const KILLED_REPLICA = 2;

const DATABASE = `rs_galera_kill_${randomBytes(4).toString("hex")}`;
let cluster: GaleraCluster;
let replicas: ChildServer[] = [];
const stopNow = () => cluster?.stopNow();
/** Each node's URL of this file's database. */
const nodeUrl = (node: number) => `${cluster.urls[node]}/${DATABASE}`;

beforeAll(async () => {
  cluster = await startGaleraCluster();
  process.once("exit", stopNow);
  console.log(`REPORT galera node kill: own 3-node cluster Synced in ${cluster.startedInMs} ms`);
  const admin = await createConnection({ uri: cluster.urls[0] ?? "" });
  await admin.query(`CREATE DATABASE \`${DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  await migrate({ url: nodeUrl(0) });
  replicas = await Promise.all(
    [0, 1, 2].map((node) => spawnServer({ DATABASE_URL: nodeUrl(node) }, 60_000)),
  );
}, 300_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.stop("SIGKILL")));
  process.off("exit", stopNow);
  await cluster?.stop();
}, 60_000);

/** A client of the three replicas, recording its failed attempts into `attempts`. */
function client(attempts: Failure[]): RemoteRunStore {
  return new RemoteRunStore({
    baseUrl: replicas.map((replica) => replica.url),
    timeoutMs: 30_000,
    interceptors: [recordFailedAttempts(attempts)],
  });
}

/** wsrep_cluster_size as node `node` sees it. */
async function clusterSize(node: number): Promise<number> {
  const connection = await createConnection({ uri: cluster.urls[node] ?? "" });
  try {
    const [rows] = await connection.query("SHOW STATUS LIKE 'wsrep_cluster_size'");
    return Number((rows as { Value: string }[])[0]?.Value);
  } finally {
    await connection.end();
  }
}

/** Waits for `count` writes acknowledged since `since`; fails naming what it waited for. */
const acknowledged = (load: WriteLoad, since: number, count: number, what: string) =>
  until(() => load.ackedSince(since) >= count, what, 90_000);

/** The load's rows on `node`, checked against its ledger; the rows, for comparing nodes. */
async function checkedOn(load: WriteLoad, node: number): Promise<Map<string, RunRow>> {
  const rows = await readRuns(nodeUrl(node), load.tag);
  expect(load.check(rows), `node ${node + 1}`).toEqual([]);
  return rows;
}

/** "n <what> failed (method code × k, …) from a to b ms after the kill (window)", for a report line. */
function failuresAfter(failures: readonly Failure[], killedAt: number, what: string): string {
  if (failures.length === 0) return `0 ${what} failed`;
  const byCode = new Map<string, number>();
  for (const f of failures) {
    const key = `${f.method} ${f.code}`;
    byCode.set(key, (byCode.get(key) ?? 0) + 1);
  }
  const first = Math.min(...failures.map((f) => f.startedAt)) - killedAt;
  const last = Math.max(...failures.map((f) => f.endedAt)) - killedAt;
  return (
    `${failures.length} ${what} failed (${[...byCode].map(([k, n]) => `${k} × ${n}`).join(", ")}), ` +
    `from ${first.toFixed(0)} to ${last.toFixed(0)} ms after the kill (window ${(last - first).toFixed(0)} ms)`
  );
}

/** The longest call that started after `time`, in ms. */
const slowestSince = (load: WriteLoad, time: number) =>
  Math.max(0, ...load.calls.filter((c) => c.startedAt >= time).map((c) => c.ms)).toFixed(0);

const acknowledgedRuns = (load: WriteLoad) => load.runs.filter((run) => run.acked > 0).length;

describe("SIGKILL under a mixed write load through three replicas on three Galera nodes", () => {
  it("a Galera node: every acknowledged write is on the two survivors, and on the node once it rejoined; calls go on through the other replicas", async () => {
    const attempts: Failure[] = [];
    const store = client(attempts);
    const load = new WriteLoad(store, "nodekill", LOOPS);
    await acknowledged(load, 0, BEFORE, `${BEFORE} writes before the kill`);
    const killedAt = performance.now();
    await cluster.kill(KILLED_NODE);
    const survivors = [0, 1, 2].filter((node) => node !== KILLED_NODE);
    await vi.waitFor(async () => expect(await clusterSize(survivors[0] ?? 0)).toBe(2), {
      timeout: 60_000,
      interval: 100,
    });
    const reformedMs = performance.now() - killedAt;
    await acknowledged(load, performance.now(), AFTER, `${AFTER} writes after the view change`);
    await load.stop();
    store.close();

    const [first, second] = await Promise.all(survivors.map((node) => checkedOn(load, node)));
    expect(second).toEqual(first);
    const restartedAt = performance.now();
    await cluster.restart(KILLED_NODE);
    const rejoinMs = performance.now() - restartedAt;
    expect(await checkedOn(load, KILLED_NODE)).toEqual(first);

    console.log(
      `REPORT galera node kill: ${load.acks.length} writes acknowledged over ${acknowledgedRuns(load)} runs ` +
        `(${load.ackedSince(killedAt)} after the kill); every one found on node ${(survivors[0] ?? 0) + 1} ` +
        `and node ${(survivors[1] ?? 0) + 1} after the kill (${first.size} rows each) and on node ${KILLED_NODE + 1} ` +
        `after it rejoined (restart to Synced ${rejoinMs.toFixed(0)} ms); cluster of 2 seen ${reformedMs.toFixed(0)} ms ` +
        `after the kill; ${failuresAfter(load.failures, killedAt, "calls")}; slowest call from the kill on ` +
        `${slowestSince(load, killedAt)} ms; attempts the client moved on from: ${failuresAfter(attempts, killedAt, "attempts")}`,
    );
  }, 240_000);

  it("a replica process: clients fail over to the other two, nothing acknowledged is lost", async () => {
    const attempts: Failure[] = [];
    const store = client(attempts);
    const load = new WriteLoad(store, "replicakill", LOOPS);
    await acknowledged(load, 0, BEFORE, `${BEFORE} writes before the kill`);
    const killedAt = performance.now();
    await replicas[KILLED_REPLICA]?.stop("SIGKILL");
    await acknowledged(load, killedAt, AFTER, `${AFTER} writes after the kill`);
    await load.stop();
    store.close();

    const rows = await Promise.all([0, 1, 2].map((node) => checkedOn(load, node)));
    expect(rows[1]).toEqual(rows[0]);
    expect(rows[2]).toEqual(rows[0]);
    console.log(
      `REPORT galera replica kill: ${load.acks.length} writes acknowledged over ${acknowledgedRuns(load)} runs ` +
        `(${load.ackedSince(killedAt)} after the kill); every one found on all three nodes (${rows[0]?.size} rows); ` +
        `${failuresAfter(load.failures, killedAt, "calls")}; slowest call from the kill on ${slowestSince(load, killedAt)} ms; ` +
        `attempts the client moved on from: ${failuresAfter(attempts, killedAt, "attempts")}`,
    );
  }, 180_000);
});
