import { Code } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase } from "../support/mysql.js";
import { openRemote } from "../support/remote.js";

// Issue 14: the response budget (MAX_RESPONSE_BYTES) acted only once the
// store had loaded every row of a list. It now reaches the MySQL read: a
// list whose large columns alone are over the budget is refused before any
// of its rows is loaded into the server.

const db = await createTestDatabase("budget");

const BUDGET = 1024 * 1024;
const RUNS = 50;
const RUN_BYTES = 100 * 1024;
const MESSAGE = `the answer (${RUNS} runs) is over the server's response budget of ${BUDGET} bytes (MAX_RESPONSE_BYTES): ask for fewer runs`;

describe("the response budget at the MySQL read", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  const store = MysqlRunStore.open({ url: db.url, poolSize: 2 });
  const remote = openRemote(store, "grpc", { limits: { maxResponseBytes: BUDGET } });
  afterAll(async () => {
    await (await remote).close();
    await store.close();
    await db.drop();
  });

  /** Puts RUNS runs of RUN_BYTES each in `threadId`, named prefix-00 onwards; their ids. */
  async function fill(threadId: string, prefix: string, fields: object): Promise<string[]> {
    const ids = Array.from({ length: RUNS }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
    for (const [i, runId] of ids.entries()) {
      await store.put(runId, {
        threadId,
        metadata: {
          replay_kind: "edit",
          regenerate_from_run_id: "source",
          note: `${i}`.padEnd(RUN_BYTES, "x"),
        },
        createdAt: new Date(Date.UTC(2025, 0, 1) + i * 1000),
        ...fields,
      });
    }
    return ids;
  }

  /** Each call is RESOURCE_EXHAUSTED with the service's message, and no row of it was loaded. */
  async function refusedUnloaded(calls: [string, () => Promise<unknown>][]): Promise<void> {
    const rssBefore = process.memoryUsage().rss;
    const loadedBefore = store.listedRows;
    for (const [name, call] of calls) {
      const error = await failureOf(call());
      expect([name, error.code, error.rawMessage]).toEqual([name, Code.ResourceExhausted, MESSAGE]);
    }
    expect(store.listedRows - loadedBefore).toBe(0);
    const rssAfter = process.memoryUsage().rss;
    console.log(
      `REPORT response-budget: ${RUNS} runs x ${RUN_BYTES} B, budget ${BUDGET} B, refused ${calls.map(([name]) => name).join(", ")}; rows loaded ${store.listedRows - loadedBefore}; RSS before ${(rssBefore / 2 ** 20).toFixed(1)} MiB, after ${(rssAfter / 2 ** 20).toFixed(1)} MiB`,
    );
  }

  // The unpaged lists are called on the store view the service gives a call
  // (withResponseBudget): the SDKs' drop-in lists now walk pages, and a page
  // refused for the budget is asked again at half the size, so through them
  // these lists answer in full.
  const budgeted = store.withResponseBudget(BUDGET);

  it("lists of 50 runs of 100 KB under a 1 MiB budget are RESOURCE_EXHAUSTED without loading their rows", async () => {
    const { store: client } = await remote;
    const ids = await fill("t-big", "big", {});
    await refusedUnloaded([
      ["list_by_thread", () => budgeted.listByThread("t-big", { limit: 1000 })],
      ["list_pending", () => budgeted.listPending()],
      ["list_inflight", () => budgeted.listInflight()],
      ["get_many_by_thread", () => client.getManyByThread("t-big", ids)],
      ["list_edit_regenerate_runs", () => client.listEditRegenerateRuns("t-big")],
    ]);
    // Through the SDK, the same list walks MySQL pages small enough to fit.
    expect((await client.listPending()).map((run) => run.runId)).toEqual(ids);
  });

  it("a list under the budget still answers in full, its rows loaded once", async () => {
    const { store: client } = await remote;
    const loadedBefore = store.listedRows;
    const runs = await client.listByThread("t-big", { limit: 5 });
    expect(runs.map((run) => run.runId)).toEqual([
      "big-49",
      "big-48",
      "big-47",
      "big-46",
      "big-45",
    ]);
    expect(store.listedRows - loadedBefore).toBe(5);
  });
  it("list_inflight_with_expired_lease too", async () => {
    await fill("t-leased", "leased", {
      status: "running",
      ownerWorkerId: "w1",
      leaseExpiresAt: new Date(Date.UTC(2025, 0, 1)),
    });
    // The pending runs of t-big, without a lease, would be listed too.
    for (let i = 0; i < RUNS; i++) await store.delete(`big-${String(i).padStart(2, "0")}`);
    await refusedUnloaded([
      ["list_inflight_with_expired_lease", () => budgeted.listInflightWithExpiredLease()],
    ]);
  });
});
