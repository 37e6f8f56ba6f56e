import { Code, ConnectError, type PutFields } from "@runstore/client";
import { describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

const BUDGET = 20_000;

function fields(i: number, note = "x".repeat(1000)): PutFields {
  return { threadId: "t1", userId: "u1", status: "pending", metadata: { i, note } };
}

/** Every run of the thread, as the store answers them: what "unchanged" is compared on. */
async function contents(store: MemoryRunStore) {
  return store.listByThread("t1", { limit: 1000 });
}

async function refusal(write: Promise<unknown>): Promise<ConnectError> {
  const error = await write.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

describe("MemoryRunStore budget (MEMORY_MAX_BYTES)", () => {
  it("takes writes up to the budget, refuses the next one changing nothing, and a delete frees room", async () => {
    const store = new MemoryRunStore({ maxBytes: BUDGET });
    let stored = 0;
    let refused: ConnectError | null = null;
    while (refused === null && stored < 100) {
      try {
        await store.put(`r${stored}`, fields(stored));
        stored++;
      } catch (error) {
        refused = error as ConnectError;
      }
    }
    // About 2.5 kB a row: several fit, and the budget ends it well before 100.
    expect(stored).toBeGreaterThanOrEqual(5);
    expect(stored).toBeLessThan(100);
    expect(refused).toBeInstanceOf(ConnectError);
    expect(refused?.code).toBe(Code.ResourceExhausted);
    expect(refused?.rawMessage).toMatch(
      /^memory store is full \(\d+ bytes of 20000\); delete runs or use MySQL$/,
    );

    const before = await contents(store);
    expect(before).toHaveLength(stored);
    expect(await store.get(`r${stored}`)).toBeNull();

    // A write that grows an existing row past the budget is refused too, changing nothing.
    const grow = await refusal(store.put("r0", fields(0, "y".repeat(BUDGET))));
    expect(grow.code).toBe(Code.ResourceExhausted);
    expect(grow.rawMessage).toMatch(/ bytes of 20000\); delete runs or use MySQL$/);
    expect(await contents(store)).toEqual(before);

    // The same refusal through admission.
    const admit = await refusal(
      store.createThreadOperation(`r${stored}`, {
        threadId: "t2",
        ownerWorkerId: "w1",
        metadata: { note: "z".repeat(BUDGET) },
      }),
    );
    expect(admit.code).toBe(Code.ResourceExhausted);
    expect(await store.get(`r${stored}`)).toBeNull();
    expect(await contents(store)).toEqual(before);

    // A delete gives its row's bytes back: the refused write now fits.
    await store.delete("r1");
    await store.put(`r${stored}`, fields(stored));
    expect((await store.get(`r${stored}`))?.metadata).toEqual({
      i: stored,
      note: "x".repeat(1000),
    });
  });

  it("an admission taking over active rows that has no room for its new row changes none of them", async () => {
    const store = new MemoryRunStore({ maxBytes: BUDGET });
    for (const runId of ["a1", "a2"]) {
      await store.put(runId, {
        threadId: "t1",
        userId: "u1",
        status: "running",
        ownerWorkerId: "w1",
        leaseExpiresAt: "2001-01-01T00:00:00Z",
      });
    }
    const before = await contents(store);
    expect(before.map((run) => [run.runId, run.status])).toEqual([
      ["a2", "running"],
      ["a1", "running"],
    ]);

    const refused = await refusal(
      store.createThreadOperation("new", {
        threadId: "t1",
        ownerWorkerId: "w2",
        multitaskStrategy: "interrupt",
        metadata: { note: "z".repeat(BUDGET / 2) },
      }),
    );
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.rawMessage).toMatch(/ bytes of 20000\); delete runs or use MySQL$/);
    expect(await store.get("new")).toBeNull();
    expect(await contents(store)).toEqual(before);

    // The same admission with a row that fits takes both over.
    const admitted = await store.createThreadOperation("new", {
      threadId: "t1",
      ownerWorkerId: "w2",
      multitaskStrategy: "interrupt",
    });
    expect(admitted.takenOver.map((run) => [run.runId, run.status])).toEqual([
      ["a1", "interrupted"],
      ["a2", "interrupted"],
    ]);
  });

  it("is 1 GiB by default, far above a small store", async () => {
    const store = new MemoryRunStore();
    await store.put("big", fields(0, "x".repeat(1_000_000)));
    expect((await store.get("big"))?.runId).toBe("big");
  });
});
