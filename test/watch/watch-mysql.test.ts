import { Code } from "@connectrpc/connect";
import { type pb, runFromProto, timestampFromProto } from "@runstore/client/internal";
import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createMetrics } from "../../src/metrics.js";
import type { RunningServer, ServerOptions } from "../../src/server.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { decodeCursor, encodeCursor } from "../../src/watch/watch-cursor.js";
import { createTestDatabase, MYSQL_SERVER_ADDRESS, type TestDatabase } from "../support/mysql.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { CASES, script } from "./filter-cases.js";
import {
  c,
  metric,
  positionOf,
  type Seen,
  sequences,
  WatchReader,
  watchClient,
  watchServer,
} from "./watch-support.js";

// WatchRuns on MySQL (docs/contract.md, "Live changes"; the change log:
// docs/mysql.md): the same changes and filters as on memory, numbered by
// the database; resume across two servers on one database and across a
// restart; a cursor of another database; a slow reader; shutdown; and no
// reads (no numbering) while nobody watches. Each test has a database of
// its own, so sequences start at 1.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const probe = await createTestDatabase("watch_probe");
if (probe !== null) cleanup.push(() => probe.drop());

/** A fresh database, and servers on stores of it (the watch polled every 10 ms). */
async function fresh(label: string) {
  const db = (await createTestDatabase(label)) as TestDatabase;
  cleanup.push(() => db.drop());
  const serve = async (options: Partial<ServerOptions> = {}) => {
    const store = db.openStore();
    const server = await watchServer(store, {
      ...options,
      watch: { pollMs: 10, heartbeatMs: 50, ...options.watch },
    });
    cleanup.push(() => server.close(0));
    return { store, server };
  };
  return { db, serve };
}

/** A reader on `server` over gRPC. */
function open(server: RunningServer, request: ConstructorParameters<typeof WatchReader>[1] = {}) {
  const { client, close } = watchClient(server.url, "grpc");
  cleanup.push(close);
  const reader = new WatchReader(client, request);
  cleanup.push(() => reader.cancel());
  return reader;
}

async function writes(store: MysqlRunStore, prefix: string, count: number, padding = "") {
  for (let i = 0; i < count; i++) {
    await store.put(`${prefix}${i}`, { threadId: "t", metadata: { padding } });
  }
}

/** Changes of the database not numbered yet (written while no server watched). */
async function unnumbered(db: TestDatabase): Promise<number> {
  const connection = await createConnection({ uri: db.url });
  try {
    const [rows] = await connection.query(
      "SELECT COUNT(*) AS n FROM runstore_changes WHERE change_seq IS NULL",
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await connection.end();
  }
}

if (probe === null) {
  describe("WatchRuns on MySQL", () => {
    it.todo("not run: opted out by RUNSTORE_SKIP=mysql (see the warning above)");
  });
} else {
  describe("WatchRuns on MySQL", () => {
    it("first heartbeat at the head, then every change in commit order with its fields", async () => {
      const { serve } = await fresh("watch_changes");
      const { store, server } = await serve();
      await store.put("before", { threadId: "t" });
      const reader = open(server);
      const first = await reader.next();
      expect(first.change).toBeUndefined();
      const feed = store.changeFeed();
      expect(decodeCursor(first.cursor)).toEqual({ id: await feed.identity(), sequence: 1n });
      await store.put("r1", { threadId: "t1", userId: "u1" });
      await store.updateStatus("r1", "running");
      await store.updateRunProgress("r1", { totalTokens: 5 });
      await store.updateRunCompletion("r1", { status: "success", totalTokens: 9 });
      await store.delete("r1");
      const got: pb.WatchRunsResponse[] = [];
      while (got.length < 5) {
        const message = await reader.next();
        if (message.change !== undefined) got.push(message);
      }
      expect(
        got.map((m) => [Number(m.change?.sequence), m.change?.kind, positionOf(m.cursor)]),
      ).toEqual([
        [2, 1, 2],
        [3, 2, 3],
        [4, 2, 4],
        [5, 2, 5],
        [6, 3, 6],
      ]);
      const records = await feed.read(1n, 10);
      expect(got.map((m) => runFromProto(m.change?.run as pb.Run))).toEqual(
        records.map((r) => r.run),
      );
      expect(
        got.map((m) => timestampFromProto(m.change?.changedAt as never, "changed_at")),
      ).toEqual(records.map((r) => r.changedAt));
    });

    it("every filter gets exactly its changes, left_filter included", async () => {
      const { serve } = await fresh("watch_filters");
      const { store, server } = await serve();
      const readers = CASES.map(([, request]) => open(server, request));
      for (const reader of readers) await reader.next();
      await script(store);
      for (const [index, [name, , expected]] of CASES.entries()) {
        const got = await (readers[index] as WatchReader).changesThrough(9);
        expect({ name, got }).toEqual({ name, got: expected });
      }
    });

    it("resumes on another server of the same database, and after a restart, with none missed", async () => {
      const { serve } = await fresh("watch_replicas");
      const a = await serve();
      const b = await serve();
      const onA = open(a.server);
      await onA.next();
      await writes(a.store, "a", 3); // through A
      await writes(b.store, "b", 3); // through B: A's watcher sees them too
      const seen = await onA.changesThrough(6);
      expect(seen.map((x) => [x.sequence, x.runId])).toEqual([
        [1, "a0"],
        [2, "a1"],
        [3, "a2"],
        [4, "b0"],
        [5, "b1"],
        [6, "b2"],
      ]);
      const cursor = onA.lastCursor;
      onA.cancel();
      await a.server.close(0); // A stops
      await writes(b.store, "c", 2);
      const onB = open(b.server, { cursor });
      expect(positionOf((await onB.next()).cursor)).toBe(6);
      expect((await onB.changesThrough(8)).map((x) => x.sequence)).toEqual([7, 8]);
      const restarted = await serve(); // A again: a new process on the same database
      await writes(b.store, "d", 2);
      const again = open(restarted.server, { cursor });
      await again.next();
      expect((await again.changesThrough(10)).map((x) => [x.sequence, x.runId])).toEqual([
        [7, "c0"],
        [8, "c1"],
        [9, "d0"],
        [10, "d1"],
      ]);
    });

    it("a cursor of another database is OUT_OF_RANGE; one past the head INVALID_ARGUMENT", async () => {
      const { serve } = await fresh("watch_cursor");
      const { store, server } = await serve();
      const other = await fresh("watch_cursor_other");
      const otherStore = other.db.openStore();
      await otherStore.put("x", { threadId: "t" });
      const foreign = encodeCursor(await otherStore.changeFeed().identity(), 1n);
      const refused = await open(server, { cursor: foreign }).failure();
      expect(refused.code).toBe(Code.OutOfRange);
      expect(refused.rawMessage).toMatch(/^cursor is from another change log/);
      await store.put("y", { threadId: "t" });
      const ahead = encodeCursor(await store.changeFeed().identity(), 5n);
      const error = await open(server, { cursor: ahead }).failure();
      expect([error.code, error.rawMessage]).toEqual([
        Code.InvalidArgument,
        "cursor is past the newest change",
      ]);
    });

    it("a reader that stops past WATCH_WINDOW changes ends with ABORTED and resumes with none missed", async () => {
      const { serve } = await fresh("watch_slow");
      const { store, server } = await serve({ watch: { window: 50 } });
      const slow = open(server);
      await slow.next();
      const total = 1500;
      await writes(store, "r", total, "x".repeat(400));
      const { changes, error } = await slow.untilFailure();
      expect(error.code).toBe(Code.Aborted);
      expect(changes.length).toBeLessThan(total);
      expect(changes.map((x) => x.sequence)).toEqual(sequences(1, changes.length));
      const resumed = open(server, { cursor: slow.lastCursor });
      await resumed.next();
      const rest: Seen[] = await resumed.changes(total - changes.length);
      expect(rest.map((x) => x.sequence)).toEqual(sequences(changes.length + 1, total));
    });

    it("nobody watching: no reads of the log and nothing numbered; a watcher numbers and reads", async () => {
      const { db, serve } = await fresh("watch_idle");
      const metrics = createMetrics();
      const { store, server } = await serve({ watchObserver: metrics.watch });
      const reads = () =>
        metric(metrics.registry, "runstore_watch_feed_reads_total", { by: "tail" });
      await writes(store, "a", 20);
      expect(await reads()).toBe(0);
      expect(await unnumbered(db)).toBe(20);
      const reader = open(server);
      expect(positionOf((await reader.next()).cursor)).toBe(20);
      expect(await unnumbered(db)).toBe(0);
      await writes(store, "b", 1);
      expect(await reader.changes(1)).toEqual([c("created", 21, "b0", "pending")]);
      expect(await reads()).toBeGreaterThan(0);
      reader.cancel();
      await vi.waitFor(
        async () => expect(await metric(metrics.registry, "runstore_watch_streams")).toBe(0),
        { timeout: 15_000, interval: 10 },
      );
      const before = await reads();
      await writes(store, "c", 10);
      expect(await reads()).toBe(before);
    });

    it("the server losing its database: the stream waits with heartbeats, then delivers every change", async () => {
      const { db } = await fresh("watch_outage");
      const proxy = new TcpProxy(MYSQL_SERVER_ADDRESS.host, MYSQL_SERVER_ADDRESS.port);
      await proxy.start();
      cleanup.push(() => proxy.close());
      const url = new URL(db.url);
      url.port = String(proxy.port);
      const proxied = MysqlRunStore.open({
        url: url.toString(),
        poolSize: 4,
        connectTimeoutMs: 500,
        queryTimeoutMs: 500,
      });
      cleanup.push(() => proxied.close());
      const server = await watchServer(proxied, { watch: { pollMs: 10, heartbeatMs: 50 } });
      cleanup.push(() => server.close(0));
      const direct = db.openStore(); // the writers reach the database; only the server lost it
      const reader = open(server);
      await reader.next();
      await writes(direct, "a", 3);
      expect((await reader.changesThrough(3)).map((x) => x.sequence)).toEqual([1, 2, 3]);
      proxy.cut();
      await writes(direct, "b", 5);
      // Heartbeats go on at the position reached; nothing fails.
      const during = await reader.next();
      expect([during.change, positionOf(during.cursor)]).toEqual([undefined, 3]);
      proxy.forward();
      expect((await reader.changesThrough(8)).map((x) => [x.sequence, x.runId])).toEqual([
        [4, "b0"],
        [5, "b1"],
        [6, "b2"],
        [7, "b3"],
        [8, "b4"],
      ]);
    });

    it("shutdown ends open streams with UNAVAILABLE", { timeout: 60_000 }, async () => {
      const { serve } = await fresh("watch_shutdown");
      const { server } = await serve({ shutdownGraceMs: 120_000 });
      const reader = open(server);
      await reader.next();
      const closing = server.close();
      const error = await reader.failure();
      expect([error.code, error.rawMessage]).toEqual([
        Code.Unavailable,
        "server is shutting down; resume from the last cursor received",
      ]);
      await closing;
    });
  });
}
