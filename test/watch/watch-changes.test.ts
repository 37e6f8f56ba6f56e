import { pb, runFromProto, timestampFromProto } from "@runstore/client/internal";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { decodeCursor } from "../../src/watch/watch-cursor.js";
import { c, PROTOCOLS, positionOf, served } from "./watch-support.js";

// WatchRuns on the memory store (docs/contract.md, "Live changes"): the
// first message, then every write path's change in order with its fields.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function setUp(protocol: (typeof PROTOCOLS)[number], store = new MemoryRunStore()) {
  return { store, ...(await served(store, protocol, cleanup)) };
}

describe.each(PROTOCOLS)("WatchRuns over %s on the memory store", (protocol) => {
  it("starts with a heartbeat whose cursor is the log's head, of this store's log", async () => {
    const { store, open } = await setUp(protocol);
    await store.put("before-1", { threadId: "t" });
    await store.put("before-2", { threadId: "t" });
    const reader = open();
    const first = await reader.next();
    expect(first.change).toBeUndefined();
    const cursor = decodeCursor(first.cursor);
    expect(cursor).toEqual({
      id: await store.changeFeed().identity(),
      sequence: 2n,
    });
  });

  it("sends every write path's change in order: put, start, progress, complete, model name, delete", async () => {
    const { store, open } = await setUp(protocol);
    const reader = open();
    await reader.next();
    await store.put("r1", { threadId: "t1", userId: "u1", modelName: "m" });
    await store.updateStatus("r1", "running");
    await store.updateRunProgress("r1", { totalTokens: 5, lastAiMessage: "hi" });
    await store.updateRunCompletion("r1", { status: "success", totalTokens: 9 });
    await store.updateRunProgress("r1", { totalTokens: 11 }); // not running: no write, no change
    await store.updateModelName("r1", "m2");
    await store.delete("r1");
    await store.delete("r1"); // missing: no change
    expect(await reader.changes(6)).toEqual([
      c("created", 1, "r1", "pending"),
      c("updated", 2, "r1", "running"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success"),
      c("updated", 5, "r1", "success"),
      c("deleted", 6, "r1", "success"),
    ]);
    const head = await store.changeFeed().head();
    expect(head).toBe(6n);
  });

  it("carries the row after the change, its changed_at and a cursor at its sequence", async () => {
    const { store, open } = await setUp(protocol);
    const reader = open();
    await reader.next();
    await store.put("r1", { threadId: "t1", userId: "u1", metadata: { a: 1 } });
    await store.updateRunCompletion("r1", {
      status: "error",
      totalTokens: 7,
      lastAiMessage: "done",
      error: "boom",
    });
    const stored = await store.get("r1");
    const messages = [await reader.next(), await reader.next()];
    const [created, completed] = messages.map((m) => m.change as pb.RunChange);
    expect(created?.kind).toBe(pb.RunChangeKind.CREATED);
    expect(completed?.kind).toBe(pb.RunChangeKind.UPDATED);
    expect(runFromProto(completed?.run as pb.Run)).toEqual(stored);
    expect(runFromProto(created?.run as pb.Run)).toMatchObject({
      status: "pending",
      totalTokens: 0,
      lastAiMessage: null,
      error: null,
    });
    expect(messages.map((m) => positionOf(m.cursor))).toEqual([1, 2]);
    const records = await store.changeFeed().read(0n, 10);
    expect(
      [created, completed].map((c) => timestampFromProto(c?.changedAt as never, "changed_at")),
    ).toEqual(records.map((r) => r.changedAt));
  });

  it("coordination writes: admission, start, cancel, a finalize that loses, each one change", async () => {
    const { store, open } = await setUp(protocol);
    const reader = open();
    await reader.next();
    await store.createThreadOperation("c1", { threadId: "t", ownerWorkerId: "w" });
    await store.startRun("c1");
    await store.requestCancel("c1", "interrupt");
    // A cancel is recorded: the finalize does not write, so no change.
    expect((await store.finalizeIfNotCancelled("c1", "success")).finalized).toBe(false);
    await store.updateStatus("c1", "interrupted");
    expect(await reader.changes(4)).toEqual([
      c("created", 1, "c1", "pending"),
      c("updated", 2, "c1", "running"),
      c("updated", 3, "c1", "running"),
      c("updated", 4, "c1", "interrupted"),
    ]);
    expect(await store.changeFeed().head()).toBe(4n);
  });

  it("deleteThread and eviction (MEMORY_MAX_RUNS) send DELETED with the row as it was", async () => {
    const { store, open } = await setUp(protocol, new MemoryRunStore({ maxRuns: 2 }));
    const reader = open();
    await reader.next();
    await store.put("a", { threadId: "t1", status: "success" });
    await store.put("b", { threadId: "t2", status: "error" });
    await store.put("c", { threadId: "t2" }); // evicts a (the oldest terminal row)
    await store.deleteThread("t2", { force: true });
    const got = await reader.changes(6);
    expect(got.slice(0, 3)).toEqual([
      c("created", 1, "a", "success"),
      c("created", 2, "b", "error"),
      c("deleted", 3, "a", "success"),
    ]);
    expect(got[3]).toEqual(c("created", 4, "c", "pending"));
    expect(got.slice(4).sort((x, y) => x.runId.localeCompare(y.runId))).toEqual([
      c(
        "deleted",
        got.find((c) => c.runId === "b" && c.kind === "deleted")?.sequence ?? 0,
        "b",
        "error",
      ),
      c(
        "deleted",
        got.find((c) => c.runId === "c" && c.kind === "deleted")?.sequence ?? 0,
        "c",
        "pending",
      ),
    ]);
    expect(got.slice(4).map((c) => c.sequence)).toEqual([5, 6]);
  });
});
