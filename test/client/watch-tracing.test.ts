import type { Interceptor } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { Code, ConnectError, RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { TcpProxy } from "../support/tcp-proxy.js";

// RemoteRunStore.watchRuns under an application's OpenTelemetry tracing
// (its own file: the provider is registered process-wide): one client span
// for the whole watch, resumes included, a child of the caller's span,
// carried by every WatchRuns call, and never the active span of the
// consumer's loop.

const spans = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const tracer = trace.getTracer("watch-tracing-test");

/** The traceparent header of every WatchRuns call the server received. */
const traceparents: string[] = [];
const recorder: Interceptor = (next) => async (req) => {
  if (req.method.name === "WatchRuns") traceparents.push(req.header.get("traceparent") ?? "");
  return next(req);
};

let server: RunningServer;
const memory = new MemoryRunStore();

beforeAll(async () => {
  provider.register({ propagator: new W3CTraceContextPropagator() });
  server = await startServer({ store: memory, interceptors: [recorder] });
});

afterAll(async () => {
  await server.close(0);
  await provider.shutdown();
});

describe("watchRuns' span", () => {
  it("one span, child of the caller's, on every resume; the loop's spans are not its children", async () => {
    const proxy = new TcpProxy("127.0.0.1", server.port);
    await proxy.start();
    const store = new RemoteRunStore({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      retry: { maxAttempts: 200, initialBackoffMs: 5, maxBackoffMs: 50 },
    });
    await tracer.startActiveSpan("agent watch", async (app) => {
      let heartbeats = 0;
      for await (const event of store.watchRuns()) {
        tracer.startSpan("handle event").end();
        if (event.type !== "heartbeat") continue;
        heartbeats++;
        if (heartbeats === 2) break;
        proxy.cut(); // the next heartbeat is the resumed stream's first
        proxy.forward();
      }
      app.end();
    });
    store.close();
    await proxy.close();
    const finished = spans.getFinishedSpans();
    const app = finished.find((s) => s.name === "agent watch");
    const watch = finished.filter((s) => s.name === "runstore.v1.RunStoreService/WatchRuns");
    expect(watch).toHaveLength(1);
    const [span] = watch;
    expect(span?.parentSpanContext?.spanId).toBe(app?.spanContext().spanId);
    expect(span?.status.code).toBe(0);
    expect(traceparents).toHaveLength(2);
    const carried = `00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01`;
    expect(traceparents).toEqual([carried, carried]);
    const handled = finished.filter((s) => s.name === "handle event");
    expect(handled).toHaveLength(2);
    for (const h of handled) expect(h.parentSpanContext?.spanId).toBe(app?.spanContext().spanId);
  });

  it("a watch that fails marks its span with the code", async () => {
    spans.reset();
    const store = new RemoteRunStore({ baseUrl: server.url });
    const error = await store
      .watchRuns({ cursor: "not a cursor" })
      .next()
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    store.close();
    expect(error?.code).toBe(Code.InvalidArgument);
    const [span] = spans
      .getFinishedSpans()
      .filter((s) => s.name === "runstore.v1.RunStoreService/WatchRuns");
    expect(span?.status).toEqual({ code: 2, message: "InvalidArgument" });
  });
});
