import { Code, ConnectError, OPERATION_KINDS, type PutFields } from "@runstore/client";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RetentionSweeper, sweepsTerminalRuns } from "../../src/retention.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { capturingLogger, deletedTotal, settings, sweepLines } from "../support/retention.js";

// RETENTION_DAYS on the memory store (docs/operations.md "Retention"). The
// store's clock is faked (Date and performance; timers stay real), and only
// ever moves forward: each test starts ten days after the previous one, its
// old runs are written then, and "now" is ten days later, so a one-day
// cutoff falls between the two.

const DAY = 86_400_000;
let now = Date.UTC(2040, 0, 1);

/** Moves the store's clock `ms` forward. */
function advance(ms: number): void {
  now += ms;
  vi.setSystemTime(now);
}

beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date", "performance"] });
  advance(0);
});

afterAll(() => {
  vi.useRealTimers();
});

function fields(status: PutFields["status"], extra: Partial<PutFields> = {}): PutFields {
  return { threadId: "t", status, ...extra };
}

/** The stored run ids of every kind, sorted. */
async function stored(store: MemoryRunStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const run of store.searchRuns({ operationKinds: OPERATION_KINDS }, 1000)) {
    ids.push(run.runId);
  }
  return ids.sort();
}

/** `count` terminal runs named `${prefix}${i}`, written now. */
async function putTerminal(store: MemoryRunStore, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await store.put(`${prefix}${i}`, fields("success", { threadId: `t${i % 7}` }));
  }
}

describe("MemoryRunStore retention (RETENTION_DAYS)", () => {
  it("is a store the sweeper can drive", () => {
    expect(sweepsTerminalRuns(new MemoryRunStore())).toBe(true);
  });

  it("deletes only terminal runs of any kind updated before the cutoff, never an active one", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    for (const [runId, status] of [
      ["old-success", "success"],
      ["old-error", "error"],
      ["old-timeout", "timeout"],
      ["old-interrupted", "interrupted"],
      ["old-pending", "pending"],
      ["old-running", "running"],
      ["old-touched", "success"],
    ] as const) {
      advance(1);
      await store.put(runId, fields(status));
    }
    await store.put("old-checkpoint", fields("success", { operationKind: "checkpoint_write" }));
    advance(10 * DAY);
    await store.updateStatus("old-touched", "error"); // updated now: kept
    await store.put("new-success", fields("success"));
    const { logger, lines } = capturingLogger();
    const report = await new RetentionSweeper(store, settings(), logger).sweepOnce();
    expect(report).toEqual({
      swept: true,
      ended: "done",
      deleted: 5,
      batches: 1,
      cutoff: new Date(now - DAY).toISOString().replace("Z", "000Z"),
    });
    expect(await stored(store)).toEqual([
      "new-success",
      "old-pending",
      "old-running",
      "old-touched",
    ]);
    expect(sweepLines(lines)).toHaveLength(1);
  });

  it("deletes the oldest first (updated_at, then run_id), at most `limit` a call", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    await store.put("c", fields("success"));
    await store.put("b", fields("success"));
    expect((await store.get("b"))?.updatedAt).toBe((await store.get("c"))?.updatedAt);
    advance(1000); // past the 2 ms nowTimestamp re-anchors its high-resolution clock at
    await store.put("a", fields("success"));
    advance(1000);
    const cutoff = new Date(now).toISOString();
    expect(await store.sweepTerminal(cutoff, 1)).toBe(1);
    expect(await stored(store)).toEqual(["a", "c"]);
    expect(await store.sweepTerminal(cutoff, 1)).toBe(1);
    expect(await stored(store)).toEqual(["a"]);
    expect(await store.sweepTerminal(cutoff, 5)).toBe(1);
    expect(await store.sweepTerminal(cutoff, 5)).toBe(0);
  });

  it("deletes 1,200 old runs in batches of 500: 3 batches, counted, one log line", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    await putTerminal(store, "old-", 1200);
    await store.put("old-active", fields("running"));
    advance(10 * DAY);
    await putTerminal(store, "new-", 3);
    const registry = new Registry();
    const { logger, lines } = capturingLogger();
    const sweeper = new RetentionSweeper(store, settings({ batchSize: 500 }), logger, registry);
    expect(await deletedTotal(registry)).toBe(0);
    const report = await sweeper.sweepOnce();
    expect(report).toMatchObject({ swept: true, ended: "done", deleted: 1200, batches: 3 });
    expect(await stored(store)).toEqual(["new-0", "new-1", "new-2", "old-active"]);
    expect(await deletedTotal(registry)).toBe(1200);
    expect(sweepLines(lines)).toEqual([
      expect.objectContaining({ level: 30, deleted: 1200, batches: 3, swept: true, ended: "done" }),
    ]);
    // Nothing left: one short (empty) batch, still one line per sweep.
    expect(await sweeper.sweepOnce()).toMatchObject({ deleted: 0, batches: 1, ended: "done" });
    expect(await deletedTotal(registry)).toBe(1200);
    expect(sweepLines(lines)).toHaveLength(2);
  });

  it("sweeps a store without a run bound (MEMORY_MAX_RUNS=0) the same way", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore({ maxRuns: 0 });
    await putTerminal(store, "old-", 3);
    await store.put("old-active", fields("pending"));
    advance(10 * DAY);
    await putTerminal(store, "new-", 1);
    const sweeper = new RetentionSweeper(store, settings(), capturingLogger().logger);
    expect(await sweeper.sweepOnce()).toMatchObject({ deleted: 3, batches: 1 });
    expect(await stored(store)).toEqual(["new-0", "old-active"]);
  });

  it("a full last batch takes one more, empty, batch to end the sweep", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    await putTerminal(store, "old-", 1000);
    advance(10 * DAY);
    const sweeper = new RetentionSweeper(store, settings(), capturingLogger().logger);
    expect(await sweeper.sweepOnce()).toMatchObject({ deleted: 1000, batches: 3 });
    expect(await stored(store)).toEqual([]);
  });

  it("sweeps on start, and close() cuts the pause short, ending the sweep after its batch", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    await putTerminal(store, "old-", 5);
    advance(10 * DAY);
    const registry = new Registry();
    const { logger, lines } = capturingLogger();
    const sweeper = new RetentionSweeper(
      store,
      settings({ batchSize: 2, pauseMs: 600_000 }),
      logger,
      registry,
    );
    sweeper.start();
    // Polls the counter until the first batch is in: the sweep is then in its pause.
    await vi.waitFor(async () => expect(await deletedTotal(registry)).toBe(2), {
      timeout: 15_000,
      interval: 10,
    });
    await sweeper.close();
    expect(sweepLines(lines)).toEqual([
      expect.objectContaining({ deleted: 2, batches: 1, ended: "closed" }),
    ]);
    expect(await stored(store)).toEqual(["old-2", "old-3", "old-4"]);
  });

  it("refuses bad arguments naming the field, deleting nothing", async () => {
    advance(10 * DAY);
    const store = new MemoryRunStore();
    await putTerminal(store, "old-", 2);
    advance(10 * DAY);
    const cutoff = new Date(now).toISOString();
    const refusals = await Promise.all(
      [
        store.sweepTerminal("yesterday", 10),
        store.sweepTerminal(cutoff, 0),
        store.sweepTerminal(cutoff, 10_001),
        store.sweepTerminal(cutoff, 1.5),
        store.claimSweep("", 1000),
        store.claimSweep("me", 0),
      ].map((call) =>
        call.then(
          () => null,
          (error: unknown) => error,
        ),
      ),
    );
    expect(refusals.map((e) => e instanceof ConnectError && e.code)).toEqual(
      Array(6).fill(Code.InvalidArgument),
    );
    expect(refusals.map((e) => (e as ConnectError).rawMessage)).toEqual([
      'cutoff must be an ISO 8601 timestamp, got "yesterday"',
      "limit must be an integer from 1 to 10000",
      "limit must be an integer from 1 to 10000",
      "limit must be an integer from 1 to 10000",
      "holder must be a string of 1 to 255 characters",
      "lease_ms must be an integer from 1 to 172800000",
    ]);
    expect(await stored(store)).toEqual(["old-0", "old-1"]);
    expect(await store.claimSweep("me", 1000)).toBe(true);
  });
});
