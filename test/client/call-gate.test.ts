import { Code, ConnectError, RemoteRunStore } from "@runstore/client";
import { retryDelayOf } from "@runstore/client/internal";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { deferred } from "../support/deferred.js";
import { until } from "../support/until.js";

// A burst of calls at a fresh HTTP/2 connection: until the server's SETTINGS
// arrive the client assumes no stream limit, so past MAX_CONCURRENT_STREAMS
// the server refused streams, then reset them ENHANCE_YOUR_CALM (an
// INTERNAL error to the caller, not retried). RemoteRunStore keeps at most
// maxConcurrentCalls on the wire (client/src/call-gate.ts); retries are off
// here so that any refusal would show.

let server: RunningServer | undefined;
let client: RemoteRunStore | undefined;
afterEach(async () => {
  client?.close();
  await server?.close(0);
  server = client = undefined;
});

async function burst(streams: number, calls: number, maxConcurrentCalls?: number) {
  server = await startServer({
    store: new MemoryRunStore(),
    port: 0,
    limits: { maxConcurrentStreams: streams },
  });
  // Waiting as long as it takes: this is about the stream limit, not the queue's bounds.
  client = new RemoteRunStore({
    baseUrl: server.url,
    retry: false,
    maxQueuedCalls: Number.POSITIVE_INFINITY,
    ...(maxConcurrentCalls === undefined ? {} : { maxConcurrentCalls }),
  });
  const remote = client;
  const outcomes = await Promise.allSettled(
    Array.from({ length: calls }, (_, i) => remote.put(`r${i}`, { threadId: `t${i % 7}` })),
  );
  return { refused: outcomes.filter((o) => o.status === "rejected").length };
}

describe("RemoteRunStore keeps at most maxConcurrentCalls on the wire", () => {
  it("300 puts at once through a server allowing 10 streams: every one applied", async () => {
    const { refused } = await burst(10, 300, 10);
    expect(refused).toBe(0);
    expect(await client?.get("r299")).toMatchObject({ runId: "r299", threadId: "t5" });
    expect((await client?.listByThread("t0", { limit: 1000 }))?.length).toBe(43);
  });

  it("by default 100, the server's default MAX_CONCURRENT_STREAMS: 10,000 puts at once all applied", async () => {
    const { refused } = await burst(100, 10_000);
    expect(refused).toBe(0);
    expect((await client?.listByThread("t6", { limit: 2000 }))?.length).toBe(1428);
  });

  it("a call waiting for a place ends with its own deadline; the others go on", async () => {
    server = await startServer({ store: new MemoryRunStore(), port: 0 });
    client = new RemoteRunStore({
      baseUrl: server.url,
      retry: false,
      maxConcurrentCalls: 1,
    });
    const remote = client;
    const waiting = new AbortController();
    const first = remote.put("a", { threadId: "t" });
    const second = remote.put("b", { threadId: "t" }, { signal: waiting.signal });
    waiting.abort();
    await expect(second).rejects.toMatchObject({ code: Code.Canceled });
    await first;
    expect((await remote.listByThread("t")).map((run) => run.runId)).toEqual(["a"]);
  });

  it("refuses a maxConcurrentCalls that is not an integer >= 1", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(
        () => new RemoteRunStore({ baseUrl: "http://127.0.0.1:1", maxConcurrentCalls: bad }),
      ).toThrow(`maxConcurrentCalls must be an integer >= 1, got ${bad}`);
    }
  });
});

/** What the tests read of the store's private gate (client/src/call-gate.ts). */
interface CallGate {
  readonly refused: number;
  readonly queued: number;
  readonly queueTimeoutMs: number;
  readonly maxQueued: number;
}

/** Gets of "h1" and "h2" wait until `release`; every get and startRun is recorded as it reaches the store. */
class HoldingStore extends MemoryRunStore {
  readonly release = deferred();
  readonly reached: string[] = [];
  override async get(...args: Parameters<MemoryRunStore["get"]>) {
    this.reached.push(`get ${args[0]}`);
    if (args[0] === "h1" || args[0] === "h2") await this.release.promise;
    return super.get(...args);
  }
  override async startRun(...args: Parameters<MemoryRunStore["startRun"]>) {
    this.reached.push(`startRun ${args[0]}`);
    return super.startRun(...args);
  }
}

/** A store with two places on the wire, both taken by gets the server holds. */
async function twoHeld(options: Partial<ConstructorParameters<typeof RemoteRunStore>[0]>) {
  const store = new HoldingStore();
  server = await startServer({ store, port: 0 });
  client = new RemoteRunStore({ baseUrl: server.url, maxConcurrentCalls: 2, ...options });
  const remote = client;
  await remote.put("c", { threadId: "t" });
  const held = [remote.get("h1"), remote.get("h2")];
  await until(() => store.reached.length === 2, "both gets in the store");
  return { store, remote, held, gate: Reflect.get(remote, "gate") as CallGate };
}

describe("a call waits at most callQueueTimeoutMs for a place on the wire", () => {
  it("fails after it with UNAVAILABLE, never sent and without a retry hint", async () => {
    const { store, remote, held, gate } = await twoHeld({ retry: false, callQueueTimeoutMs: 50 });
    const error = await remote.startRun("c").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toBe(
      "no place on the wire within 50 ms: 2 calls open (maxConcurrentCalls) and 1 waiting; the server or the connection is saturated",
    );
    expect(retryDelayOf(error)).toBeNull();
    expect(store.reached).toEqual(["get h1", "get h2"]);
    expect([gate.refused, gate.queued]).toEqual([1, 0]);
    store.release.resolve();
    expect(await Promise.all(held)).toEqual([null, null]);
    expect(await remote.get("c")).toMatchObject({ runId: "c", status: "pending" });
  });

  it("is not repeated by the retry policy: the repeat would join the same queue", async () => {
    const { store, remote, held, gate } = await twoHeld({
      retry: { maxAttempts: 1000, initialBackoffMs: 1, maxBackoffMs: 1 },
      callQueueTimeoutMs: 20,
    });
    await expect(remote.updateStatus("c", "running")).rejects.toMatchObject({
      code: Code.Unavailable,
    });
    expect([gate.refused, gate.queued]).toEqual([1, 0]);
    store.release.resolve();
    await Promise.all(held);
    expect(store.reached).toEqual(["get h1", "get h2"]);
    expect((await remote.get("c"))?.status).toBe("pending");
  });

  it("by default a waiting call ends with its deadline, DEADLINE_EXCEEDED, never sent; the RPC gets what is left", async () => {
    const { store, remote, held, gate } = await twoHeld({ retry: false });
    await expect(remote.get("c", undefined, { timeoutMs: 100 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    expect([gate.refused, gate.queued]).toEqual([0, 0]);
    const started = remote.startRun("c", { timeoutMs: 60_000 });
    await until(() => gate.queued === 1, "the start waiting");
    store.release.resolve();
    expect(await started).toBe(true);
    await Promise.all(held);
    expect(store.reached).toEqual(["get h1", "get h2", "startRun c"]);
  });

  it("a place handed over before the bound is kept: the call goes out", async () => {
    const { store, remote, held, gate } = await twoHeld({
      retry: false,
      callQueueTimeoutMs: 60_000,
    });
    const started = remote.startRun("c");
    await until(() => gate.queued === 1, "the start waiting");
    store.release.resolve();
    expect(await started).toBe(true);
    await Promise.all(held);
    expect(store.reached).toEqual(["get h1", "get h2", "startRun c"]);
    expect(gate.refused).toBe(0);
  });

  it("by default no bound but the deadline; refuses a value that is not an integer from 0 to 2147483647", () => {
    const remote = new RemoteRunStore({ baseUrl: "http://127.0.0.1:1" });
    expect((Reflect.get(remote, "gate") as CallGate).queueTimeoutMs).toBe(0);
    remote.close();
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(
        () => new RemoteRunStore({ baseUrl: "http://127.0.0.1:1", callQueueTimeoutMs: bad }),
      ).toThrow(`callQueueTimeoutMs must be an integer from 0 to 2147483647, got ${bad}`);
    }
  });
});

describe("at most maxQueuedCalls wait for a place on the wire", () => {
  it("one more fails at once with UNAVAILABLE, never sent; the waiting one goes out once a place is free", async () => {
    const { store, remote, held, gate } = await twoHeld({ maxQueuedCalls: 1 });
    const waiting = remote.startRun("c");
    await until(() => gate.queued === 1, "the start waiting");
    const error = await remote.updateStatus("c", "error").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toBe(
      "no place on the wire: 2 calls open (maxConcurrentCalls) and 1 waiting (maxQueuedCalls); the server or the connection is saturated",
    );
    expect(retryDelayOf(error)).toBeNull();
    expect([gate.refused, gate.queued]).toEqual([1, 1]);
    store.release.resolve();
    expect(await waiting).toBe(true);
    await Promise.all(held);
    expect(store.reached).toEqual(["get h1", "get h2", "startRun c"]);
    expect((await remote.get("c"))?.status).toBe("running");
  });

  it("0: none wait, a call finding the wire full fails at once", async () => {
    const { store, remote, held, gate } = await twoHeld({ maxQueuedCalls: 0 });
    await expect(remote.get("c")).rejects.toMatchObject({ code: Code.Unavailable });
    expect([gate.refused, gate.queued]).toEqual([1, 0]);
    store.release.resolve();
    await Promise.all(held);
    expect(store.reached).toEqual(["get h1", "get h2"]);
  });

  it("by default 1000; refuses a value that is not an integer >= 0 or Infinity", () => {
    const remote = new RemoteRunStore({ baseUrl: "http://127.0.0.1:1" });
    expect((Reflect.get(remote, "gate") as CallGate).maxQueued).toBe(1000);
    remote.close();
    for (const bad of [-1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY]) {
      expect(
        () => new RemoteRunStore({ baseUrl: "http://127.0.0.1:1", maxQueuedCalls: bad }),
      ).toThrow(`maxQueuedCalls must be an integer >= 0 or Infinity, got ${bad}`);
    }
  });
});
