import { Code, RemoteRunStore } from "@runstore/client";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

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
  client = new RemoteRunStore({
    baseUrl: server.url,
    retry: false,
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
    client = new RemoteRunStore({ baseUrl: server.url, retry: false, maxConcurrentCalls: 1 });
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
