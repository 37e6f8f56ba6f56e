import { Code } from "@connectrpc/connect";
import {
  type RemoteProtocol,
  RemoteRunStore,
  type RetryOptions,
  type RunStore,
} from "@runstore/client";
import { RETRY_PUSHBACK_HEADER, retryDelayOf } from "@runstore/client/internal";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { Overload, type OverloadLimits } from "../../src/overload.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, lockRowForTest, runningStatements } from "../support/mysql.js";
import { until } from "../support/until.js";

// Overload before the handler (docs/operations.md, "Overload";
// src/request-admission.ts): past MAX_INFLIGHT_REQUESTS requests in progress,
// or while the event loop runs OVERLOAD_LAG_MS late, a request is refused as
// it arrives, unread, with UNAVAILABLE, a RetryInfo detail and the
// grpc-retry-pushback-ms trailer, in every protocol, and changes nothing.
// A row lock held by the test keeps one request in progress; a synchronous
// busy section of the test itself, between loop turns, makes the loop late.

const db = await createTestDatabase("request_overload");

/** The bounds for a server; the store-call bounds wide open. */
function limits(more: Partial<OverloadLimits>): OverloadLimits {
  return { maxInflightCalls: 1000, maxQueuedCalls: 1000, queueTimeoutMs: 600_000, ...more };
}

/** A server with these bounds over `store` (default: its own MySQL store), and its metrics. */
async function serve(bounds: Partial<OverloadLimits>, store: RunStore = mysqlStore()) {
  const overload = new Overload(limits(bounds));
  const metrics = createMetrics({ overload });
  const server = await startServer({ store, overload, interceptors: [metrics.interceptor] });
  onTestFinished(() => server.close(0));
  return { server, overload, metrics };
}

function mysqlStore() {
  const store = (db as NonNullable<typeof db>).openStore();
  onTestFinished(() => store.close());
  return store;
}

/**
 * A client of `server` (default gRPC, no retries), closed when the test
 * ends. Set-up calls retry (the default): on a busy machine the test's own
 * loop may run late, and the server refuses for that too.
 */
function client(
  server: RunningServer,
  protocol: RemoteProtocol = "grpc",
  retry: RetryOptions | false | undefined = false,
) {
  const remote = new RemoteRunStore({
    baseUrl: server.url,
    protocol,
    ...(retry === undefined ? {} : { retry }),
  });
  onTestFinished(() => remote.close());
  return remote;
}

async function metric(metrics: Metrics, name: string, reason?: string): Promise<number> {
  const values = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => reason === undefined || v.labels.reason === reason)?.value ?? 0;
}

/**
 * Keeps the event loop late until `done()`: each turn of the loop spends
 * `spinMs` in a synchronous busy section of this test, so the server's lag
 * timer always finds itself at least that late; `begin` runs after the first.
 */
function busyUntil(done: () => boolean, begin: () => void, spinMs = 120): Promise<void> {
  let begun = false;
  return new Promise((resolve) => {
    const turn = () => {
      const end = performance.now() + spinMs;
      while (performance.now() < end) {
        // busy: the loop is late
      }
      if (!begun) {
        begun = true;
        begin();
      }
      if (done()) resolve();
      else setImmediate(turn);
    };
    setImmediate(turn);
  });
}

/**
 * A memory store whose `get` of HELD_RUN waits until the test lets it go:
 * a request in progress, which the lag timer needs to be sampling.
 */
const HELD_RUN = "held-run";
class HoldingStore extends MemoryRunStore {
  private release: (() => void) | undefined;
  private readonly gate = new Promise<void>((done) => {
    this.release = done;
  });
  override async get(...args: Parameters<MemoryRunStore["get"]>) {
    if (args[0] === HELD_RUN) await this.gate;
    return super.get(...args);
  }
  letGo(): void {
    this.release?.();
  }
}

/** One request held in progress on `server` until the test ends. */
async function holdOne(server: RunningServer, store: HoldingStore, overload: Overload) {
  const holder = client(server, "grpc", undefined);
  const held = holder.get(HELD_RUN);
  held.catch(() => {});
  onTestFinished(async () => {
    store.letGo();
    await held;
  });
  await until(() => overload.requests.inflight === 1, "one request in progress");
}

/** Whether `promise` has settled, read synchronously. */
function settled(promise: Promise<unknown>): () => boolean {
  let is = false;
  promise.then(
    () => {
      is = true;
    },
    () => {
      is = true;
    },
  );
  return () => is;
}

describe("request-level overload settings", () => {
  it("MAX_INFLIGHT_REQUESTS and OVERLOAD_LAG_MS default to 1024 and 50, 0 turns them off, bad values are named", () => {
    const base = { ALLOW_INSECURE: "true" };
    expect(readConfig(base).overload).toMatchObject({
      maxInflightRequests: 1024,
      overloadLagMs: 50,
    });
    expect(
      readConfig({ ...base, MAX_INFLIGHT_REQUESTS: "0", OVERLOAD_LAG_MS: "0" }).overload,
    ).toMatchObject({ maxInflightRequests: 0, overloadLagMs: 0 });
    for (const [name, value] of [
      ["MAX_INFLIGHT_REQUESTS", "-1"],
      ["MAX_INFLIGHT_REQUESTS", "2000000"],
      ["MAX_INFLIGHT_REQUESTS", "many"],
      ["OVERLOAD_LAG_MS", "60001"],
      ["OVERLOAD_LAG_MS", "1.5"],
    ] as const) {
      expect(() => readConfig({ ...base, [name]: value })).toThrow(ConfigError);
      expect(() => readConfig({ ...base, [name]: value })).toThrow(new RegExp(name));
    }
  });
});

describe.skipIf(db === null)("request-level overload", () => {
  afterAll(() => db?.drop());

  it.each(["grpc", "connect", "grpc-web"] as const)(
    "past MAX_INFLIGHT_REQUESTS one request is refused at once over %s, with the hint, and changes nothing",
    async (protocol) => {
      const { server, overload, metrics } = await serve({ maxInflightRequests: 1 });
      const remote = client(server, protocol);
      const locked = `r1-${protocol}-locked`;
      const free = `r1-${protocol}-free`;
      await remote.put(locked, { threadId: "t1" });
      await remote.put(free, { threadId: "t2", modelName: "before" });
      const release = await lockRowForTest((db as NonNullable<typeof db>).url, locked);
      const held = remote.updateModelName(locked, "held");
      held.catch(() => {});
      await expect
        .poll(() => runningStatements(db as NonNullable<typeof db>, "UPDATE runs"), {
          timeout: 10_000,
        })
        .toBe(1);
      expect(overload.requests.inflight).toBe(1);
      expect(await metric(metrics, "runstore_requests_inflight")).toBe(1);

      const refused = await failureOf(remote.updateModelName(free, "after"));
      expect(refused.code).toBe(Code.Unavailable);
      expect(refused.rawMessage).toBe(
        "server overloaded: MAX_INFLIGHT_REQUESTS (1) requests already in progress; retry after 50 ms",
      );
      expect(retryDelayOf(refused)).toBe(50);
      expect(refused.metadata.get(RETRY_PUSHBACK_HEADER)).toBe("50");
      expect(await metric(metrics, "runstore_calls_refused_total", "MAX_INFLIGHT_REQUESTS")).toBe(
        1,
      );
      // The refused request never reached a store call.
      expect(overload.inflight).toBe(1);
      expect(overload.requests.inflight).toBe(1);

      await release();
      await held;
      await until(() => overload.requests.inflight === 0, "the held request answered");
      expect((await remote.get(free))?.modelName).toBe("before");
      await remote.updateModelName(free, "after");
      expect((await remote.get(free))?.modelName).toBe("after");
      expect(await metric(metrics, "runstore_calls_refused_total", "MAX_INFLIGHT_REQUESTS")).toBe(
        1,
      );
    },
  );

  it("an idle server samples no lag; a request wakes the timer and the last one answered stops it", async () => {
    const store = new HoldingStore();
    const { server, overload } = await serve({ overloadLagMs: 50 }, store);
    expect(overload.requests.lag.sampling).toBe(false);
    await holdOne(server, store, overload);
    expect(overload.requests.lag.sampling).toBe(true);
    store.letGo();
    await until(() => !overload.requests.lag.sampling, "the timer stopped once idle");
    expect(overload.requests.inflight).toBe(0);
    expect(overload.requests.lag.lagMs()).toBe(0);
  });

  it("a request arriving while requests are in progress and the event loop runs OVERLOAD_LAG_MS late is refused; once the lag falls, served", async () => {
    const store = new HoldingStore();
    const { server, overload, metrics } = await serve({ overloadLagMs: 50 }, store);
    const remote = client(server);
    const setUp = client(server, "grpc", undefined);
    await setUp.put("r2-run", { threadId: "t1", modelName: "before" });
    await holdOne(server, store, overload);

    let call: Promise<unknown> = Promise.resolve();
    let done = () => false;
    await busyUntil(
      () => done(),
      () => {
        call = remote.updateModelName("r2-run", "after");
        call.catch(() => {});
        done = settled(call);
      },
    );
    const refused = await failureOf(call);
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toBe(
      "server overloaded: the event loop runs OVERLOAD_LAG_MS (50 ms) or more late; retry after 50 ms",
    );
    expect(retryDelayOf(refused)).toBe(50);
    expect(refused.metadata.get(RETRY_PUSHBACK_HEADER)).toBe("50");
    expect(await metric(metrics, "runstore_calls_refused_total", "OVERLOAD_LAG_MS")).toBe(1);

    await expect
      .poll(() => metric(metrics, "runstore_event_loop_lag_seconds"), { timeout: 10_000 })
      .toBeLessThan(0.05);
    expect((await setUp.get("r2-run"))?.modelName).toBe("before");
    await remote.updateModelName("r2-run", "after");
    expect((await setUp.get("r2-run"))?.modelName).toBe("after");
  });

  it("RemoteRunStore repeats a startRun refused for lag, and it applies once", async () => {
    const store = new HoldingStore();
    const { server, overload, metrics } = await serve({ overloadLagMs: 50 }, store);
    const plain = client(server, "grpc", undefined);
    await plain.put("r3-run", { threadId: "t1", status: "pending" });
    await holdOne(server, store, overload);
    const retrying = client(server, "grpc", {
      maxAttempts: 1000,
      initialBackoffMs: 1,
      maxBackoffMs: 1,
    });
    let started: Promise<boolean> = Promise.resolve(false);
    await busyUntil(
      () => (overload.refused().get("OVERLOAD_LAG_MS") ?? 0) >= 1,
      () => {
        started = retrying.startRun("r3-run");
        started.catch(() => {});
      },
    );
    expect(await started).toBe(true);
    expect(
      await metric(metrics, "runstore_calls_refused_total", "OVERLOAD_LAG_MS"),
    ).toBeGreaterThan(0);
    expect((await plain.get("r3-run"))?.status).toBe("running");
  });
});
