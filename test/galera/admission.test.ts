import { Code, ConnectError } from "@connectrpc/connect";
import type { Admission, RunStore } from "@runstore/client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import {
  type ClusterDatabase,
  countingStore,
  createClusterDatabase,
  type ErrnoCounts,
} from "./cluster-db.js";

// The one active operation per thread and the idempotency key hold across
// the cluster: two admissions racing on two nodes both pass their reads,
// and the UNIQUE indexes are checked by certification at COMMIT, which
// fails the later one with a deadlock error (1213); the store retries that
// transaction whole, and the retry meets the winner's row as an ordinary
// thread conflict or idempotency conflict. Concurrent writes of one run
// from every node are retried the same way and all succeed.

const ROUNDS = 4;
const CALLS = 30;
const ER_DUP_ENTRY = 1062;
const ER_LOCK_DEADLOCK = 1213;

let db: ClusterDatabase;
let stores: MysqlRunStore[];
const counts: ErrnoCounts = new Map();

beforeAll(async () => {
  db = await createClusterDatabase("admission");
  stores = db.urls.map((url) => countingStore(url, counts, 10));
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await db.drop();
});

beforeEach(() => counts.clear());

/** `CALLS` calls at once, call i through node i % 3; each call's outcome. */
function spread<T>(
  call: (store: RunStore, i: number) => Promise<T>,
): Promise<PromiseSettledResult<T>[]> {
  return Promise.allSettled(
    Array.from({ length: CALLS }, (_, i) => call(stores[i % stores.length] as RunStore, i)),
  );
}

/** The errors of the rejected outcomes, as ConnectErrors. */
function failures(outcomes: PromiseSettledResult<unknown>[]): ConnectError[] {
  return outcomes
    .filter((o): o is PromiseRejectedResult => o.status === "rejected")
    .map((o) => ConnectError.from(o.reason));
}

/**
 * Checks that exactly one admission of `outcomes` succeeded; its run id,
 * and the [code, message] of every refusal.
 */
function oneAdmitted(outcomes: PromiseSettledResult<Admission>[]): {
  winner: string;
  refused: [Code, string][];
} {
  const admitted = outcomes.filter(
    (o): o is PromiseFulfilledResult<Admission> => o.status === "fulfilled",
  );
  expect(admitted).toHaveLength(1);
  const refused = failures(outcomes).map((e): [Code, string] => [e.code, e.rawMessage]);
  return { winner: admitted[0]?.value.run.runId ?? "", refused };
}

/** How many rows of `column = value` each node sees. */
async function rowsOnEachNode(column: string, value: string): Promise<number[]> {
  return Promise.all(
    db.urls.map(async (_, i) => {
      const [rows] = await db
        .pool(i)
        .query(`SELECT COUNT(*) AS n FROM runs WHERE ${column} = ?`, [value]);
      return Number((rows as { n: number }[])[0]?.n);
    }),
  );
}

const retried = () =>
  `${counts.get(ER_LOCK_DEADLOCK) ?? 0} certification conflicts (1213) retried, ` +
  `${counts.get(ER_DUP_ENTRY) ?? 0} duplicate keys (1062)`;

describe("admission across the three nodes of a Galera cluster", () => {
  it(`${CALLS} reject admissions on one thread, spread over the nodes: one admitted, the rest ABORTED thread conflicts naming it`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const thread = `t-${round}`;
      const started = performance.now();
      const outcomes = await spread((store, i) =>
        store.createThreadOperation(`r-${round}-${i}`, {
          threadId: thread,
          ownerWorkerId: `w${i}`,
          multitaskStrategy: "reject",
          lease: { durationMs: 60_000 },
        }),
      );
      const ms = performance.now() - started;
      const { winner, refused } = oneAdmitted(outcomes);
      expect(refused).toEqual(
        Array(CALLS - 1).fill([
          Code.Aborted,
          `thread_id ${thread} is busy: run ${winner} is active`,
        ]),
      );
      expect(await rowsOnEachNode("thread_id", thread)).toEqual([1, 1, 1]);
      console.log(
        `REPORT galera admission race round ${round}: ${CALLS} calls over 3 nodes, 1 admitted, ` +
          `${refused.length} thread conflicts, ${retried()}; ${ms.toFixed(0)} ms`,
      );
      counts.clear();
    }
  });

  it(`${CALLS} admissions with one idempotency key on ${CALLS} threads, spread over the nodes: one admitted, the rest ALREADY_EXISTS naming it`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const key = `key-${round}`;
      const started = performance.now();
      const outcomes = await spread((store, i) =>
        store.createThreadOperation(`k-${round}-${i}`, {
          threadId: `tk-${round}-${i}`,
          ownerWorkerId: `w${i}`,
          idempotencyKey: key,
        }),
      );
      const ms = performance.now() - started;
      const { winner, refused } = oneAdmitted(outcomes);
      expect(refused).toEqual(
        Array(CALLS - 1).fill([Code.AlreadyExists, `idempotency_key is held by run ${winner}`]),
      );
      expect(await rowsOnEachNode("idempotency_key", key)).toEqual([1, 1, 1]);
      console.log(
        `REPORT galera idempotency race round ${round}: ${CALLS} calls over 3 nodes, 1 admitted, ` +
          `${refused.length} idempotency conflicts, ${retried()}; ${ms.toFixed(0)} ms`,
      );
      counts.clear();
    }
  });

  it(`${CALLS} progress writes to one run at once from every node all succeed, each applied whole, and every node reads the same row`, async () => {
    const first = stores[0] as RunStore;
    await first.put("busy", { threadId: "tb", status: "running" });
    // The same race through node 0 alone first (row locks, no certification), for comparison.
    const race = async (through: (i: number) => RunStore) => {
      counts.clear();
      const started = performance.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: CALLS }, (_, i) =>
          through(i).updateRunProgress("busy", { llmCallCount: i + 1, messageCount: i + 1 }),
        ),
      );
      expect(failures(outcomes)).toEqual([]);
      return `${(performance.now() - started).toFixed(0)} ms, ${retried()}`;
    };
    const oneNode = await race(() => first);
    const spreadOver = await race((i) => stores[i % stores.length] as RunStore);
    // Every write applied whole (both counters from one call), whichever was last.
    const rows = await Promise.all(stores.map((store) => store.get("busy")));
    const seen = rows.map((run) => [run?.llmCallCount, run?.messageCount]);
    expect(new Set(seen.map((pair) => pair[0] === pair[1]))).toEqual(new Set([true]));
    expect(new Set(seen.map((pair) => pair[0])).size).toBe(1);
    console.log(
      `REPORT galera one-row write race: ${CALLS} progress writes, all applied; ` +
        `through node 0 alone ${oneNode}; over 3 nodes ${spreadOver}`,
    );
  });
});
