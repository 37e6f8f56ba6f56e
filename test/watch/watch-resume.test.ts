import { Code } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import type { ServerOptions } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { encodeCursor } from "../../src/watch/watch-cursor.js";
import { PROTOCOLS, positionOf, sequences, served } from "./watch-support.js";

// Resuming WatchRuns (docs/contract.md, "Live changes"): a cursor delivers
// exactly the changes after it, from the hub's window or (older than the
// window) from the change log; cursors the log cannot serve are refused
// before the first message.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function setUp(
  protocol: (typeof PROTOCOLS)[number],
  store = new MemoryRunStore(),
  options: Partial<ServerOptions> = {},
) {
  const watch = { heartbeatMs: 50, ...options.watch };
  return { store, ...(await served(store, protocol, cleanup, { ...options, watch })) };
}

/** `count` changes: puts of runs `${prefix}0`, `${prefix}1`, … */
async function writes(store: MemoryRunStore, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await store.put(`${prefix}${i}`, { threadId: "t" });
}

describe.each(PROTOCOLS)("WatchRuns resume over %s", (protocol) => {
  it("from a cursor mid-stream, within the window: exactly the rest", async () => {
    const { store, open } = await setUp(protocol);
    const keeper = open(); // keeps the hub's window filling while the first reader is gone
    await keeper.next();
    const first = open();
    await first.next();
    await writes(store, "a", 10);
    const firstFour = await first.changes(4);
    expect(firstFour.map((c) => c.sequence)).toEqual([1, 2, 3, 4]);
    const cursor = first.lastCursor;
    first.cancel();
    await writes(store, "b", 5);
    const resumed = open({ cursor });
    const heartbeat = await resumed.next();
    expect(heartbeat.change).toBeUndefined();
    expect(heartbeat.cursor).toBe(cursor);
    const rest = await resumed.changesThrough(15);
    expect(rest.map((c) => c.sequence)).toEqual(sequences(5, 15));
  });

  it("from a cursor older than the window: read from the log, then live, none missed", async () => {
    const { store, open } = await setUp(protocol, new MemoryRunStore(), { watch: { window: 10 } });
    const first = open();
    await first.next();
    await writes(store, "a", 3);
    await first.changesThrough(3);
    const cursor = first.lastCursor;
    first.cancel();
    await writes(store, "b", 1200); // 1203: far past a window of 10
    const keeper = open(); // the hub's window starts at 1203
    expect(positionOf((await keeper.next()).cursor)).toBe(1203);
    const resumed = open({ cursor });
    expect(positionOf((await resumed.next()).cursor)).toBe(3);
    const caughtUp = await resumed.changesThrough(1203);
    expect(caughtUp.map((c) => c.sequence)).toEqual(sequences(4, 1203));
    await writes(store, "c", 3);
    expect((await resumed.changesThrough(1206)).map((c) => c.sequence)).toEqual([1204, 1205, 1206]);
  });

  it("catching up while writes go on: the hand-over from the log to the window loses and repeats nothing", async () => {
    const { store, open } = await setUp(protocol);
    const first = open();
    await first.next();
    await writes(store, "a", 2);
    await first.changesThrough(2);
    const cursor = first.lastCursor;
    first.cancel();
    await writes(store, "b", 1500); // nobody watches: the next hub starts at 1502
    const resumed = open({ cursor });
    const writing = writes(store, "c", 1500); // while the stream reads the log
    await resumed.next();
    const got = await resumed.changesThrough(3002);
    await writing;
    expect(got.map((x) => x.sequence)).toEqual(sequences(3, 3002));
  });

  it("from the head with no watcher left: the hub starts again and delivers what follows", async () => {
    const { store, open } = await setUp(protocol);
    const first = open();
    await first.next();
    await writes(store, "a", 2);
    await first.changesThrough(2);
    const cursor = first.lastCursor;
    first.cancel();
    await writes(store, "b", 3); // nobody watches
    const resumed = open({ cursor });
    await resumed.next();
    expect((await resumed.changesThrough(5)).map((c) => c.sequence)).toEqual([3, 4, 5]);
  });

  it("a cursor of another store's log is OUT_OF_RANGE", async () => {
    const { open } = await setUp(protocol);
    const other = new MemoryRunStore();
    await other.put("x", { threadId: "t" });
    const cursor = encodeCursor(await other.changeFeed().identity(), 0n);
    const error = await open({ cursor }).failure();
    expect(error.code).toBe(Code.OutOfRange);
    expect(error.rawMessage).toBe(
      "cursor is from another change log (the server restarted on the memory store, or another database): list again and watch from now",
    );
  });

  it("a cursor older than the log kept (WATCH_LOG_MAX) is OUT_OF_RANGE naming cursor", async () => {
    const { store, open } = await setUp(protocol, new MemoryRunStore({ watchLogMax: 5 }));
    const id = await store.changeFeed().identity();
    await writes(store, "a", 8); // keeps 4..8: a cursor at 3 still resumes, 2 does not
    const kept = open({ cursor: encodeCursor(id, 3n) });
    await kept.next();
    expect((await kept.changesThrough(8)).map((c) => c.sequence)).toEqual([4, 5, 6, 7, 8]);
    const error = await open({ cursor: encodeCursor(id, 2n) }).failure();
    expect(error.code).toBe(Code.OutOfRange);
    expect(error.rawMessage).toBe(
      "cursor is older than the change log kept; list again and watch from now",
    );
  });

  it("a damaged cursor, or one past the newest change, is INVALID_ARGUMENT naming cursor", async () => {
    const { store, open } = await setUp(protocol);
    const id = await store.changeFeed().identity();
    await writes(store, "a", 2);
    const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const bad = [
      "not a cursor!",
      Buffer.from("{not json").toString("base64url"),
      json([1, 2]),
      json({ v: 2, id, s: "1" }),
      json({ v: 1, id, s: 1 }),
      json({ v: 1, id, s: "-1" }),
      json({ v: 1, id, s: "01" }),
      json({ v: 1, id: "", s: "1" }),
      json({ v: 1, id, s: "9223372036854775808" }),
      "A".repeat(600),
    ];
    for (const cursor of bad) {
      const error = await open({ cursor }).failure();
      expect({ cursor, code: error.code }).toEqual({ cursor, code: Code.InvalidArgument });
      expect(error.rawMessage).toMatch(/^cursor /);
    }
    const ahead = await open({ cursor: encodeCursor(id, 3n) }).failure();
    expect(ahead.code).toBe(Code.InvalidArgument);
    expect(ahead.rawMessage).toBe("cursor is past the newest change");
  });
});
