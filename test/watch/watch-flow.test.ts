import { Code, createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it, vi } from "vitest";
import * as pbHealth from "../../src/gen/grpc/health/v1/health_pb.js";
import { createMetrics } from "../../src/metrics.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import {
  metric,
  PROTOCOLS,
  positionOf,
  sequences,
  served,
  WatchReader,
  watchClient,
  watchServer,
} from "./watch-support.js";

// WatchRuns' flow (docs/contract.md, "Live changes"): a reader that stops
// reading is ended with ABORTED instead of being buffered for, and resumes
// without loss; heartbeats while nothing matches; the stream limits; the
// tail runs only while someone watches.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe.each(PROTOCOLS)("WatchRuns flow over %s", (protocol) => {
  it("a reader that stops reading past WATCH_WINDOW changes ends with ABORTED, and resumes with none missed", async () => {
    const store = new MemoryRunStore();
    const metrics = createMetrics();
    const { open } = await served(store, protocol, cleanup, {
      watch: { window: 50 },
      watchObserver: metrics.watch,
    });
    const slow = open();
    await slow.next();
    // ~600 bytes a message, 4000 changes: far more than HTTP/2 flow control
    // lets through unread, and than the window of 50.
    const total = 4000;
    const padding = "x".repeat(400);
    for (let i = 0; i < total; i++) {
      await store.put(`r${i}`, { threadId: "t", metadata: { padding } });
    }
    const { changes, error } = await slow.untilFailure();
    expect(error.code).toBe(Code.Aborted);
    expect(error.rawMessage).toBe(
      "this stream fell more than 50 changes behind; resume from the last cursor received",
    );
    expect(changes.length).toBeLessThan(total);
    expect(changes.map((c) => c.sequence)).toEqual(sequences(1, changes.length));
    expect(
      await metric(metrics.registry, "runstore_watch_aborted_total", { reason: "behind" }),
    ).toBe(1);
    const resumed = open({ cursor: slow.lastCursor });
    expect(positionOf((await resumed.next()).cursor)).toBe(changes.length);
    const rest = await resumed.changes(total - changes.length);
    expect(rest.map((c) => c.sequence)).toEqual(sequences(changes.length + 1, total));
  });

  it("sends heartbeats after WATCH_HEARTBEAT_MS, their cursor past the changes that did not match", async () => {
    const store = new MemoryRunStore();
    const { open } = await served(store, protocol, cleanup, { watch: { heartbeatMs: 100 } });
    const reader = open({ userId: "nobody" });
    expect(positionOf((await reader.next()).cursor)).toBe(0);
    const quiet = await reader.next();
    expect(quiet.change).toBeUndefined();
    expect(positionOf(quiet.cursor)).toBe(0);
    for (let i = 0; i < 5; i++) await store.put(`r${i}`, { threadId: "t", userId: "u" });
    // Heartbeats only, until one carries the cursor past all five.
    for (;;) {
      const message = await reader.next();
      expect(message.change).toBeUndefined();
      if (positionOf(message.cursor) === 5) break;
      expect(positionOf(message.cursor)).toBeLessThan(5);
    }
  });

  it("MAX_RUN_WATCHERS: one stream more is RESOURCE_EXHAUSTED naming it; a place frees when one ends", async () => {
    const server = await watchServer(new MemoryRunStore(), { limits: { maxRunWatchers: 2 } });
    cleanup.push(() => server.close(0));
    const one = watchClient(server.url, protocol);
    const two = watchClient(server.url, protocol);
    cleanup.push(one.close, two.close);
    const open = [new WatchReader(one.client), new WatchReader(two.client)];
    for (const reader of open) await reader.next();
    const refused = await new WatchReader(two.client).failure();
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.rawMessage).toBe(
      "too many WatchRuns streams open in this server (MAX_RUN_WATCHERS=2); try later",
    );
    open[0]?.cancel();
    // The cancelled stream's place frees once the server has seen the cancel.
    const admitted = await vi.waitFor(
      async () => {
        const reader = new WatchReader(one.client);
        await reader.next();
        return reader;
      },
      { timeout: 15_000, interval: 10 },
    );
    admitted.cancel();
    open[1]?.cancel();
  });

  it("MAX_WATCH_STREAMS_PER_CONNECTION: counted per connection, apart from health Watch", async () => {
    const server = await watchServer(new MemoryRunStore(), {
      limits: { maxWatchStreamsPerConnection: 2 },
    });
    cleanup.push(() => server.close(0));
    const one = watchClient(server.url, protocol);
    const two = watchClient(server.url, protocol);
    cleanup.push(one.close, two.close);
    // Two health Watch streams on the same connection take none of its WatchRuns places.
    const health = createClient(pbHealth.Health, one.transport);
    const healthStop = new AbortController();
    cleanup.push(() => healthStop.abort());
    for (let i = 0; i < 2; i++) {
      const updates = health.watch({ service: "" }, { signal: healthStop.signal });
      await updates[Symbol.asyncIterator]().next();
    }
    const readers = [new WatchReader(one.client), new WatchReader(one.client)];
    for (const reader of readers) await reader.next();
    const refused = await new WatchReader(one.client).failure();
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.rawMessage).toBe(
      "too many WatchRuns streams open on this connection (MAX_WATCH_STREAMS_PER_CONNECTION=2); end one or open another connection",
    );
    const other = new WatchReader(two.client);
    expect((await other.next()).change).toBeUndefined();
    for (const reader of [...readers, other]) reader.cancel();
  });
});

describe("the hub's tail", () => {
  it("reads the change log only while a stream is open", async () => {
    const store = new MemoryRunStore();
    const metrics = createMetrics();
    const { open } = await served(store, "grpc", cleanup, { watchObserver: metrics.watch });
    const reads = () => metric(metrics.registry, "runstore_watch_feed_reads_total", { by: "tail" });
    for (let i = 0; i < 100; i++) await store.put(`a${i}`, { threadId: "t" });
    expect(await reads()).toBe(0);
    const reader = open();
    await reader.next();
    await store.put("b", { threadId: "t" });
    await reader.changes(1);
    expect(await reads()).toBeGreaterThan(0);
    expect(await metric(metrics.registry, "runstore_watch_streams")).toBe(1);
    reader.cancel();
    await vi.waitFor(
      async () => expect(await metric(metrics.registry, "runstore_watch_streams")).toBe(0),
      { timeout: 15_000, interval: 10 },
    );
    const before = await reads();
    for (let i = 0; i < 100; i++) await store.put(`c${i}`, { threadId: "t" });
    expect(await reads()).toBe(before);
    expect(
      await metric(metrics.registry, "runstore_watch_messages_total", { type: "change" }),
    ).toBe(1);
    expect(
      await metric(metrics.registry, "runstore_watch_messages_total", { type: "heartbeat" }),
    ).toBe(1);
  });
});
