import { getEventListeners } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { RemoteRunStore } from "@runstore/client";
import { afterEach, describe, expect, it } from "vitest";

// Calls in flight must not pile listeners onto one store-wide AbortSignal:
// Node's EventTarget walks its listener list on every add and remove, so
// each call would cost CPU in proportion to the calls in flight.

const IN_FLIGHT = 300;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A real HTTP/2 server that reads each request and never answers it. */
async function holdingServer(): Promise<{ url: string; held: () => number }> {
  const held: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer({ settings: { maxConcurrentStreams: 10_000 } });
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.resume();
    stream.on("end", () => held.push(stream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    for (const stream of held) stream.close();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, held: () => held.length };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** The store's private signals, read for the test only. */
function internals(store: RemoteRunStore): { closed: AbortController; calls: { size: number } } {
  return store as unknown as { closed: AbortController; calls: { size: number } };
}

describe("RemoteRunStore calls in flight", () => {
  it("add no listener to the store-wide signal, and close() still ends them all", async () => {
    const server = await holdingServer();
    // Every call on the wire at once (the store's default keeps 100 there: call-gate.ts).
    const store = new RemoteRunStore({
      baseUrl: server.url,
      timeoutMs: 60_000,
      maxConcurrentCalls: IN_FLIGHT,
    });
    cleanups.push(() => store.close());
    const outcomes = Array.from({ length: IN_FLIGHT }, (_, i) =>
      store.get(`run-${i}`).then(
        () => "answered",
        (error: unknown) => ConnectError.from(error).code,
      ),
    );
    await until(() => server.held() === IN_FLIGHT);

    expect(getEventListeners(internals(store).closed.signal, "abort").length).toBe(0);
    expect(internals(store).calls.size).toBe(IN_FLIGHT);

    store.close();
    const codes = await Promise.all(outcomes);
    expect(codes.filter((code) => code === Code.Canceled).length).toBe(IN_FLIGHT);
    expect(internals(store).calls.size).toBe(0);
  });

  it("end a call whose own signal aborts, and forget it", async () => {
    const server = await holdingServer();
    const store = new RemoteRunStore({ baseUrl: server.url, timeoutMs: 60_000 });
    cleanups.push(() => store.close());
    const controller = new AbortController();
    const outcome = store.get("run-1", undefined, { signal: controller.signal }).then(
      () => "answered",
      (error: unknown) => ConnectError.from(error).code,
    );
    await until(() => server.held() === 1);
    expect(getEventListeners(controller.signal, "abort").length).toBe(1);

    controller.abort();
    expect(await outcome).toBe(Code.Canceled);
    expect(getEventListeners(controller.signal, "abort").length).toBe(0);
    expect(internals(store).calls.size).toBe(0);
  });
});
