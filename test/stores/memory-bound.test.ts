import { Code, OPERATION_KINDS, type PutFields, type RunRecord } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// MEMORY_MAX_RUNS (issue 15 item 7, docs/operations.md "Limits"). Decisions:
// - Rows of every operation kind count, and any row that is not pending or
//   running (success, error, timeout, interrupted) may be evicted.
// - Eviction happens only when a new row is inserted (put of a new run id,
//   createThreadOperation); a put overwriting a stored run never evicts.
// - Order: oldest updated_at first, ties by run_id (code points), as in SQL.
// - When every stored row is active, the new row is RESOURCE_EXHAUSTED naming
//   MEMORY_MAX_RUNS, checked before an admission takes any row over: nothing
//   changes. An evicted run's idempotency key is free again.
// - MEMORY_MAX_RUNS=0 turns the bound off (MEMORY_MAX_BYTES still refuses).
// The store's clock is faked (Date and performance), so updated_at is chosen
// by the test: each tick() is a later whole second, never earlier than a
// previous test's.

let second = 0;

/** Moves the store's clock to the next whole second. */
function tick(): void {
  vi.setSystemTime(Date.UTC(2040, 0, 1) + ++second * 1000);
}

beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date", "performance"] });
  tick();
});

afterAll(() => {
  vi.useRealTimers();
});

/** The stored run ids of every kind, sorted. */
async function stored(store: MemoryRunStore): Promise<string[]> {
  const page = await store.searchRunsPage({ operationKinds: OPERATION_KINDS }, { pageSize: 1000 });
  return page.items.map((run) => run.runId).sort();
}

/** Every stored row, for "nothing changed" comparisons. */
async function contents(store: MemoryRunStore): Promise<RunRecord[]> {
  const page = await store.searchRunsPage({ operationKinds: OPERATION_KINDS }, { pageSize: 1000 });
  return page.items;
}

function fields(status: PutFields["status"], extra: Partial<PutFields> = {}): PutFields {
  return { threadId: "t", status, ...extra };
}

const FULL =
  /^memory store holds MEMORY_MAX_RUNS \(3\) runs and every one is active \(pending or running\), so none can be evicted; end or delete runs, raise MEMORY_MAX_RUNS or use MySQL$/;

describe("MemoryRunStore run bound (MEMORY_MAX_RUNS)", () => {
  it("evicts the oldest terminal row by updated_at first, never an active one", async () => {
    const store = new MemoryRunStore({ maxRuns: 4 });
    for (const [runId, status] of [
      ["a", "success"],
      ["b", "pending"],
      ["c", "error"],
      ["d", "interrupted"],
    ] as const) {
      tick();
      await store.put(runId, fields(status));
    }
    tick();
    await store.updateStatus("a", "timeout"); // a is now the most recent terminal row
    tick();
    await store.put("e", fields("success", { operationKind: "checkpoint_write" }));
    expect(await stored(store)).toEqual(["a", "b", "d", "e"]);
    tick();
    await store.put("f", fields("running"));
    expect(await stored(store)).toEqual(["a", "b", "e", "f"]);
    tick();
    await store.put("g", fields("success"));
    expect(await stored(store)).toEqual(["b", "e", "f", "g"]);
    // A run that ends becomes evictable from then on, by its new updated_at.
    tick();
    await store.updateStatus("b", "success");
    tick();
    await store.put("h", fields("success"));
    tick();
    await store.put("i", fields("success"));
    expect(await stored(store)).toEqual(["b", "f", "h", "i"]);
  });

  it("breaks updated_at ties by run_id", async () => {
    const store = new MemoryRunStore({ maxRuns: 3 });
    tick();
    for (const runId of ["z", "x", "y"]) await store.put(runId, fields("success"));
    const times = new Set((await contents(store)).map((run) => run.updatedAt));
    expect(times.size).toBe(1);
    tick();
    await store.put("n1", fields("pending"));
    expect(await stored(store)).toEqual(["n1", "y", "z"]);
    await store.put("n2", fields("pending"));
    expect(await stored(store)).toEqual(["n1", "n2", "z"]);
  });

  it("refuses a new row when every row is active, naming the setting and changing nothing", async () => {
    const store = new MemoryRunStore({ maxRuns: 3 });
    tick();
    await store.put("p1", fields("pending", { threadId: "x", ownerWorkerId: "w" }));
    await store.put("p2", fields("running", { threadId: "y" }));
    await store.put("p3", fields("pending", { threadId: "z", operationKind: "artifact_write" }));
    const before = await contents(store);

    // The interrupt admission could take p1 over: it is refused before it does.
    for (const call of [
      () => store.put("new", fields("success")),
      () =>
        store.createThreadOperation("new", {
          threadId: "x",
          ownerWorkerId: "w",
          multitaskStrategy: "interrupt",
        }),
      () =>
        store.createThreadOperation("new", {
          threadId: "x",
          ownerWorkerId: "w",
          multitaskStrategy: "enqueue",
        }),
    ]) {
      const refused = await failureOf(call());
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.rawMessage).toMatch(FULL);
    }
    expect(await contents(store)).toEqual(before);

    // Writes to stored rows go on; once one ends, a new row evicts it.
    tick();
    await store.put("p2", fields("success", { threadId: "y" }));
    tick();
    await store.put("new", fields("pending"));
    expect(await stored(store)).toEqual(["new", "p1", "p3"]);
  });

  it("an admission at the bound evicts the oldest terminal row, not the rows it takes over", async () => {
    const store = new MemoryRunStore({ maxRuns: 3 });
    tick();
    await store.put("old", fields("success"));
    tick();
    await store.put("a1", fields("running", { threadId: "x", ownerWorkerId: "w" }));
    await store.put("p2", fields("pending", { threadId: "y" }));
    tick();
    const admission = await store.createThreadOperation("n", {
      threadId: "x",
      ownerWorkerId: "w",
      multitaskStrategy: "interrupt",
    });
    expect(admission.takenOver.map((run) => [run.runId, run.status])).toEqual([
      ["a1", "interrupted"],
    ]);
    expect(await stored(store)).toEqual(["a1", "n", "p2"]);
  });

  it("a put overwriting a stored run never evicts; an evicted run's idempotency key is free again", async () => {
    const store = new MemoryRunStore({ maxRuns: 2 });
    tick();
    await store.put("k", fields("success", { idempotencyKey: "key-1" }));
    await store.put("m", fields("pending"));
    tick();
    await store.put("k", fields("error", { idempotencyKey: "key-1" }));
    await store.put("m", fields("success"));
    expect(await stored(store)).toEqual(["k", "m"]);
    tick();
    await store.put("n", fields("success"));
    expect(await stored(store)).toEqual(["m", "n"]);
    await store.put("o", fields("success", { idempotencyKey: "key-1" }));
    expect(await stored(store)).toEqual(["n", "o"]);
    expect((await store.get("o"))?.idempotencyKey).toBe("key-1");
  });

  it("0 turns the bound off", async () => {
    const store = new MemoryRunStore({ maxRuns: 0 });
    tick();
    for (let i = 0; i < 300; i++) await store.put(`r${i}`, fields("success"));
    expect((await store.getRunStats()).totalRuns).toBe(300);
  });

  it("holds the newest runs under a long write load", async () => {
    const store = new MemoryRunStore({ maxRuns: 2000 });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 12_000; i++) {
      if (i % 1000 === 0) tick();
      await store.put(`w${String(i).padStart(5, "0")}`, fields("success", { metadata: { i } }));
    }
    const stats = await store.getRunStats();
    expect(stats.totalRuns).toBe(2000);
    const newest = await store.searchRunsPage({}, { pageSize: 1 });
    expect(newest.items[0]?.runId).toBe("w11999");
    expect(await store.get("w09999")).toBeNull();
    expect((await store.get("w10000"))?.metadata).toEqual({ i: 10000 });
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    console.log(
      `REPORT memory-bound: 12000 puts into MEMORY_MAX_RUNS=2000, heap +${heapMiB.toFixed(1)} MiB (no forced GC)`,
    );
  });
});

describe("MEMORY_MAX_RUNS setting", () => {
  it("defaults to 100000, takes 0 to 100000000, refuses anything else naming the setting", () => {
    expect(readConfig({}).memoryMaxRuns).toBe(100_000);
    expect(readConfig({ MEMORY_MAX_RUNS: "0" }).memoryMaxRuns).toBe(0);
    expect(readConfig({ MEMORY_MAX_RUNS: "100000000" }).memoryMaxRuns).toBe(100_000_000);
    for (const value of ["-1", "100000001", "1.5", "many"]) {
      expect(() => readConfig({ MEMORY_MAX_RUNS: value })).toThrow(ConfigError);
      expect(() => readConfig({ MEMORY_MAX_RUNS: value })).toThrow(/MEMORY_MAX_RUNS/);
    }
  });
});
