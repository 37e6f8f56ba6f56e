import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ChangeLogGap, type ChangeRecord } from "../../src/stores/change-feed.js";
import { MemoryChangeFeed } from "../../src/stores/memory-change-feed.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// The memory store's change log (src/stores/memory-change-feed.ts): every
// write path appends exactly one change per row it changes, in the same
// step, with a copy of the row; writes that change nothing (refused, no-op)
// append none. Read through the ChangeFeed the watch hub reads.

/** Every change after `after`: [kind, run id, status, previous status]. */
async function changesAfter(store: MemoryRunStore, after: bigint) {
  const records = await store.changeFeed().read(after, 1000);
  return records.map((r) => [r.kind, r.run.runId, r.run.status, r.previousStatus]);
}

/** Runs `write` and answers the changes it appended. */
async function appended(store: MemoryRunStore, write: () => Promise<unknown>) {
  const head = await store.changeFeed().head();
  await write();
  return changesAfter(store, head);
}

const past = { expiresAt: "2000-01-01T00:00:00Z" };
const future = { durationMs: 60_000 };

describe("MemoryRunStore's change log", () => {
  it("every write path appends one change per row changed, with the row's previous status", async () => {
    const store = new MemoryRunStore();
    const expectWrite = async (write: () => Promise<unknown>, changes: unknown[][]) =>
      expect(await appended(store, write)).toEqual(changes);
    await expectWrite(() => store.put("a", { threadId: "t" }), [["created", "a", "pending", null]]);
    await expectWrite(
      () => store.put("a", { threadId: "t", status: "running" }),
      [["updated", "a", "running", "pending"]],
    );
    await expectWrite(
      () => store.updateRunProgress("a", { totalTokens: 3 }),
      [["updated", "a", "running", "running"]],
    );
    await expectWrite(
      () => store.updateModelName("a", "m"),
      [["updated", "a", "running", "running"]],
    );
    await expectWrite(
      () => store.updateRunCompletion("a", { status: "success" }),
      [["updated", "a", "success", "running"]],
    );
    await expectWrite(
      () => store.updateStatus("a", "error"),
      [["updated", "a", "error", "success"]],
    );
    // Admission with a takeover: the row taken over, then the new one.
    await expectWrite(
      () => store.createThreadOperation("b", { threadId: "t2", ownerWorkerId: "w", lease: past }),
      [["created", "b", "pending", null]],
    );
    await expectWrite(() => store.startRun("b"), [["updated", "b", "running", "pending"]]);
    await expectWrite(
      () => store.renewLease("b", "w", past),
      [["updated", "b", "running", "running"]],
    );
    await expectWrite(
      () =>
        store.createThreadOperation("c", {
          threadId: "t2",
          ownerWorkerId: "w",
          multitaskStrategy: "interrupt",
          lease: future,
        }),
      [
        ["updated", "b", "interrupted", "running"],
        ["created", "c", "pending", null],
      ],
    );
    await expectWrite(
      () => store.requestCancel("c", "interrupt"),
      [["updated", "c", "pending", "pending"]],
    );
    await expectWrite(() => store.finalizeIfNotCancelled("c", "success"), []);
    await expectWrite(
      () => store.updateStatus("c", "interrupted"),
      [["updated", "c", "interrupted", "pending"]],
    );
    await expectWrite(
      () =>
        store.createThreadOperation("q", {
          threadId: "t3",
          ownerWorkerId: "w",
          multitaskStrategy: "enqueue",
        }),
      [["created", "q", "pending", null]],
    );
    await expectWrite(
      () => store.claimNextRun("w2", past),
      [["updated", "q", "running", "pending"]],
    );
    await expectWrite(
      () => store.claimForTakeover("q", { error: "gone", graceSeconds: 0 }),
      [["updated", "q", "error", "running"]],
    );
    await expectWrite(() => store.finalizeIfNotCancelled("q", "success"), []);
    await expectWrite(() => store.delete("a"), [["deleted", "a", "error", "error"]]);
    await expectWrite(() => store.delete("a"), []);
    await expectWrite(() => store.updateStatus("missing", "error"), []);
    await expectWrite(
      () => store.deleteThread("t2", { force: true }),
      [
        ["deleted", "b", "interrupted", "interrupted"],
        ["deleted", "c", "interrupted", "interrupted"],
      ],
    );
    await expectWrite(
      () => store.sweepTerminal("9999-01-01T00:00:00Z", 10),
      [["deleted", "q", "error", "error"]],
    );
    const all = await store.changeFeed().read(0n, 1000);
    expect(all.map((r) => r.sequence)).toEqual(all.map((_, i) => BigInt(i + 1)));
  });

  it("eviction (MEMORY_MAX_RUNS) is a deletion before the insert; a refused write appends nothing", async () => {
    const store = new MemoryRunStore({ maxRuns: 2 });
    await store.put("a", { threadId: "t", status: "success" });
    await store.put("b", { threadId: "t" });
    expect(await appended(store, () => store.put("c", { threadId: "t" }))).toEqual([
      ["deleted", "a", "success", "success"],
      ["created", "c", "pending", null],
    ]);
    const refused = await appended(store, () =>
      store.put("d", { threadId: "t" }).catch((error: unknown) => {
        expect(ConnectError.from(error).code).toBe(Code.ResourceExhausted);
      }),
    );
    expect(refused).toEqual([]);
    const conflict = await appended(store, () =>
      store.createThreadOperation("e", { threadId: "t", ownerWorkerId: "w" }).catch(() => null),
    );
    expect(conflict).toEqual([]);
  });

  it("a record keeps the row as it was: later writes do not change it", async () => {
    const store = new MemoryRunStore();
    await store.changeFeed().head();
    await store.put("a", { threadId: "t", metadata: { v: 1 } });
    await store.put("a", { threadId: "t", metadata: { v: 2 }, status: "running" });
    await store.updateRunCompletion("a", { status: "success", totalTokens: 9 });
    const [first, second, third] = await store.changeFeed().read(0n, 10);
    expect(first?.run).toMatchObject({ status: "pending", metadata: { v: 1 }, totalTokens: 0 });
    expect(second?.run).toMatchObject({ status: "running", metadata: { v: 2 }, totalTokens: 0 });
    expect(third?.run).toEqual(await store.get("a"));
    expect(first?.run).toHaveProperty("holdsSlot", undefined);
  });
});

describe("MemoryChangeFeed", () => {
  const run = (runId: string) => ({ runId, status: "pending" }) as unknown as ChangeRecord["run"];

  it("keeps the newest `max`; older positions are a pruned gap, newer ones an ahead gap", async () => {
    const feed = new MemoryChangeFeed(3);
    for (const id of ["a", "b", "c", "d", "e"]) feed.append("created", run(id), null);
    expect(await feed.head()).toBe(5n);
    expect((await feed.read(2n, 10)).map((r) => [r.sequence, r.run.runId])).toEqual([
      [3n, "c"],
      [4n, "d"],
      [5n, "e"],
    ]);
    expect((await feed.read(3n, 1)).map((r) => r.sequence)).toEqual([4n]);
    expect(await feed.read(5n, 10)).toEqual([]);
    await expect(feed.read(1n, 10)).rejects.toMatchObject({ reason: "pruned" });
    await expect(feed.read(6n, 10)).rejects.toBeInstanceOf(ChangeLogGap);
    await expect(feed.read(6n, 10)).rejects.toMatchObject({ reason: "ahead" });
  });

  it("keeps nothing until read, and stops keeping keepAfterReadMs after the last read", async () => {
    const store = new MemoryRunStore();
    const feed = store.changeFeed();
    await store.put("a", { threadId: "t" });
    await store.put("b", { threadId: "t" });
    // Nobody read the log: two sequences used, no record kept.
    expect(await feed.head()).toBe(2n);
    await expect(feed.read(0n, 10)).rejects.toMatchObject({ reason: "pruned" });
    await store.put("c", { threadId: "t" });
    expect((await feed.read(2n, 10)).map((r) => [r.sequence, r.run.runId])).toEqual([[3n, "c"]]);

    // keepAfterReadMs 0: kept only while a reader waits.
    const brief = new MemoryChangeFeed(10, 0);
    expect(brief.keeping()).toBe(false);
    brief.skip();
    const abort = new AbortController();
    const waiting = brief.waitForChange(1n, 60_000, abort.signal);
    expect(brief.keeping()).toBe(true);
    brief.append("created", run("x"), null);
    await waiting;
    expect(brief.keeping()).toBe(false);
    brief.skip();
    expect(await brief.head()).toBe(3n);
    await expect(brief.read(1n, 10)).rejects.toMatchObject({ reason: "pruned" });
    expect(await brief.read(3n, 10)).toEqual([]);
  });

  it("waitForChange resolves on an append, at once when one is there, and on abort", async () => {
    const feed = new MemoryChangeFeed();
    const never = new AbortController();
    const waiting = feed.waitForChange(0n, 60_000, never.signal);
    feed.append("created", run("a"), null);
    await waiting;
    await feed.waitForChange(0n, 60_000, never.signal);
    const abort = new AbortController();
    const aborted = feed.waitForChange(1n, 60_000, abort.signal);
    abort.abort();
    await aborted;
    expect(await feed.identity()).toMatch(/^[0-9a-f-]{36}$/);
    expect(await new MemoryChangeFeed().identity()).not.toBe(await feed.identity());
  });
});
