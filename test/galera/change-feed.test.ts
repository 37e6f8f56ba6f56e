import type { PutFields } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangeRecord } from "../../src/stores/change-feed.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import {
  type ClusterDatabase,
  countingStore,
  createClusterDatabase,
  type ErrnoCounts,
} from "./cluster-db.js";

// The change log on a Galera cluster (docs/mysql.md "Change log"): the
// triggers fire on the node that takes the write only (the other nodes
// apply its change rows as rows), and sequencers on several nodes at once
// collide on the counter row at certification (1213, retried whole), so
// every change is numbered exactly once and every node reads one order.

const ER_LOCK_DEADLOCK = 1213;

let db: ClusterDatabase;
let stores: MysqlRunStore[];
const counts: ErrnoCounts = new Map();

beforeAll(async () => {
  db = await createClusterDatabase("changes");
  stores = db.urls.map((url) => countingStore(url, counts, 6));
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await db.drop();
});

const node = (i: number) => stores[i] as MysqlRunStore;

const fields = (threadId: string): PutFields => ({ threadId, status: "pending" });

/** [sequence, run id, kind, status] of each change: what two nodes must agree on. */
const summary = (changes: ChangeRecord[]) =>
  changes.map((c) => [String(c.sequence), c.run.runId, c.kind, c.run.status]);

/** Rows of runstore_changes on node `i` for the given runs, as [run id, kind]. */
async function changeRows(i: number, runIds: string[]): Promise<[string, string][]> {
  const [rows] = await db
    .pool(i)
    .query(
      "SELECT CAST(run_id AS CHAR) AS id, change_kind AS kind FROM runstore_changes " +
        "WHERE run_id IN (?) ORDER BY run_id, change_id",
      [runIds],
    );
  return (rows as { id: string; kind: string }[]).map((r) => [r.id, r.kind]);
}

describe("the change log on Galera", () => {
  it("a write through node 1 and one through node 2 record one change each, on every node", async () => {
    const start = await node(0).changeFeed().head();
    await node(0).put("via-1", fields("t1"));
    await node(1).put("via-2", fields("t2"));
    await node(1).updateStatus("via-1", "running");
    for (const i of [0, 1, 2]) {
      expect(await changeRows(i, ["via-1", "via-2"])).toEqual([
        ["via-1", "created"],
        ["via-1", "updated"],
        ["via-2", "created"],
      ]);
    }
    const head = await node(2).changeFeed().head();
    expect(head).toBe(start + 3n);
    const read = await Promise.all([0, 1, 2].map((i) => node(i).changeFeed().read(start, 10)));
    expect(summary(read[1] ?? [])).toEqual(summary(read[0] ?? []));
    expect(summary(read[2] ?? [])).toEqual(summary(read[0] ?? []));
    // via-1's two changes in the order written, whichever node numbered them.
    const ofVia1 = (read[0] ?? []).filter((c) => c.run.runId === "via-1");
    expect(ofVia1.map((c) => [c.kind, c.previousStatus, c.run.status])).toEqual([
      ["created", null, "pending"],
      ["updated", "pending", "running"],
    ]);
  });

  it("sequencers on two nodes at once, writes on all three: every change numbered once, one order on every node", async () => {
    const start = await node(0).changeFeed().head();
    counts.clear();
    const RUNS = 60;
    let writing = true;
    const sequencers = [0, 1].map(async (i) => {
      const feed = node(i).changeFeed();
      let ticks = 0;
      while (writing || ticks < 3) {
        await feed.head();
        ticks++;
      }
      return ticks;
    });
    const writers = [0, 1, 2].map(async (i) => {
      for (let r = 0; r < RUNS; r++) {
        await node(i).put(`n${i}-${r}`, fields(`thread-${i}`));
        await node(i).updateStatus(`n${i}-${r}`, "running");
      }
    });
    await Promise.all(writers);
    writing = false;
    const ticks = await Promise.all(sequencers);
    const total = BigInt(3 * RUNS * 2);
    expect(await node(0).changeFeed().head()).toBe(start + total);
    const reads = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const feed = node(i).changeFeed();
        expect(await feed.head()).toBe(start + total);
        return feed.read(start, 1000);
      }),
    );
    const first = reads[0] ?? [];
    expect(first.map((c) => c.sequence)).toEqual(
      Array.from({ length: Number(total) }, (_, i) => start + BigInt(i + 1)),
    );
    expect(summary(reads[1] ?? [])).toEqual(summary(first));
    expect(summary(reads[2] ?? [])).toEqual(summary(first));
    // Each run: created, then updated, as its node wrote them.
    const byRun = new Map<string, string[]>();
    for (const c of first) byRun.set(c.run.runId, [...(byRun.get(c.run.runId) ?? []), c.kind]);
    expect(byRun.size).toBe(3 * RUNS);
    expect([...byRun.values()].every((k) => k.join() === "created,updated")).toBe(true);
    for (const i of [0, 1, 2]) {
      const [rows] = await db
        .pool(i)
        .query(
          "SELECT COUNT(*) AS n, COUNT(change_seq) AS numbered, COUNT(DISTINCT change_seq) AS distinct_seq " +
            "FROM runstore_changes WHERE change_seq > ? OR change_seq IS NULL",
          [String(start)],
        );
      expect(rows).toEqual([
        { n: Number(total), numbered: Number(total), distinct_seq: Number(total) },
      ]);
    }
    console.log(
      `REPORT galera change log: ${total} changes through 3 nodes, sequencers on 2 nodes ` +
        `(${ticks.join(" + ")} runs), certification conflicts ${counts.get(ER_LOCK_DEADLOCK) ?? 0}`,
    );
  });
});
