import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { RemoteRunStore, type RetryOptions } from "@runstore/client";
import { RETRY_PUSHBACK_HEADER, retryDelayOf } from "@runstore/client/internal";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { Overload, type OverloadLimits } from "../../src/overload.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { createTestDatabase, lockRowForTest, runningStatements } from "../support/mysql.js";
import { until } from "../support/until.js";

// Graceful overload (docs/operations.md, "Overload"): a row lock held by a
// session of the test keeps store calls running on MySQL for as long as the
// test needs, so the server's places fill deterministically; one call more
// than they hold is refused at once with UNAVAILABLE, the setting named, a
// RetryInfo detail and the grpc-retry-pushback-ms trailer, and changes nothing.

const db = await createTestDatabase("overload");

/** What the server saw of one attempt: the RPC, when it arrived and ended, its code and hint. */
interface Attempt {
  method: string;
  arrived: number;
  ended: number;
  code: string;
  hint: number | null;
}

/**
 * A server on its own store (pool 4) with these bounds, its metrics, and a
 * log of every attempt; `extra` interceptors run inside the log.
 */
async function serve(limits: OverloadLimits, callerShare = 100, extra: Interceptor[] = []) {
  const store = (db as NonNullable<typeof db>).openStore();
  const overload = new Overload(limits);
  const metrics = createMetrics({ overload });
  const attempts: Attempt[] = [];
  const server = await startServer({
    store,
    overload,
    callerShare,
    interceptors: [metrics.interceptor, attemptLog(attempts), ...extra],
  });
  onTestFinished(() => server.close(0));
  return { server, overload, metrics, attempts };
}

function attemptLog(attempts: Attempt[]): Interceptor {
  return (next) => async (req) => {
    const arrived = performance.now();
    const log = (code: string, hint: number | null) =>
      attempts.push({ method: req.method.name, arrived, ended: performance.now(), code, hint });
    try {
      const res = await next(req);
      log("OK", null);
      return res;
    } catch (error) {
      const e = ConnectError.from(error);
      log(Code[e.code], retryDelayOf(e));
      throw error;
    }
  };
}

/** A gRPC client of `server` (default: without retries), closed when the test ends. */
function client(server: RunningServer, retry: RetryOptions | false = false) {
  const remote = new RemoteRunStore({ baseUrl: server.url, retry });
  onTestFinished(() => remote.close());
  return remote;
}

/** lockRow, released when the test ends at the latest. */
const lock = (runId: string) => lockRowForTest((db as NonNullable<typeof db>).url, runId);

/** The calls held on the locked row, running on MySQL now. */
const heldUpdates = () => runningStatements(db as NonNullable<typeof db>, "UPDATE runs");

async function refusedCount(metrics: Metrics, reason: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric("runstore_calls_refused_total")?.get();
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** The error a call failed with (the test fails when it succeeds). */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe.skipIf(db === null)("graceful overload", () => {
  afterAll(() => db?.drop());

  it("the fifth concurrent call is refused at once, the setting named, with a retry hint, and changes nothing", async () => {
    const { server, overload, metrics } = await serve({
      maxInflightCalls: 2,
      maxQueuedCalls: 2,
      queueTimeoutMs: 600_000,
    });
    const remote = client(server);
    await remote.put("o1-locked", { threadId: "o1-t1" });
    await remote.put("o1-free", { threadId: "o1-t2", modelName: "before" });
    const release = await lock("o1-locked");

    const held = ["a", "b", "c", "d"].map((name) => remote.updateModelName("o1-locked", name));
    for (const call of held) call.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(2);
    await until(() => overload.queued === 2, "two calls waiting");
    expect(overload.inflight).toBe(2);

    const refused = await failure(remote.updateModelName("o1-free", "after"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toMatch(
      /^server overloaded: MAX_QUEUED_CALLS \(2\) calls already waiting; retry after \d+ ms$/,
    );
    const hint = retryDelayOf(refused);
    expect(hint).not.toBeNull();
    expect(refused.rawMessage).toContain(`retry after ${hint} ms`);
    expect(refused.metadata.get(RETRY_PUSHBACK_HEADER)).toBe(String(hint));
    expect(await refusedCount(metrics, "MAX_QUEUED_CALLS")).toBe(1);
    // The four are where they were: nothing moved for the refusal.
    expect(overload.queued).toBe(2);
    expect(await heldUpdates()).toBe(2);

    await release();
    await Promise.all(held);
    expect(overload.inflight).toBe(0);
    expect(overload.queued).toBe(0);
    expect((await remote.get("o1-free"))?.modelName).toBe("before");
  });

  it("a call waiting past QUEUE_TIMEOUT_MS is refused, naming it", async () => {
    const { server, overload, metrics } = await serve({
      maxInflightCalls: 1,
      maxQueuedCalls: 10,
      queueTimeoutMs: 300,
    });
    const remote = client(server);
    await remote.put("o2-locked", { threadId: "o2-t1" });
    await remote.put("o2-free", { threadId: "o2-t2" });
    const release = await lock("o2-locked");
    const blocked = remote.updateModelName("o2-locked", "held");
    blocked.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(1);

    const refused = await failure(remote.updateModelName("o2-free", "late"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toMatch(
      /^server overloaded: waited QUEUE_TIMEOUT_MS \(300 ms\) for a place; retry after \d+ ms$/,
    );
    expect(retryDelayOf(refused)).not.toBeNull();
    expect(overload.queued).toBe(0);
    expect(await refusedCount(metrics, "QUEUE_TIMEOUT_MS")).toBe(1);

    await release();
    await blocked;
    expect((await remote.get("o2-free"))?.modelName).toBeNull();
  });

  it("calls waiting for their caller's share count toward MAX_QUEUED_CALLS", async () => {
    const { server, overload } = await serve(
      { maxInflightCalls: 10, maxQueuedCalls: 1, queueTimeoutMs: 600_000 },
      1,
    );
    const remote = client(server);
    await remote.put("o3-locked", { threadId: "o3-t1" });
    const release = await lock("o3-locked");
    const first = remote.updateModelName("o3-locked", "a");
    const second = remote.updateModelName("o3-locked", "b");
    for (const call of [first, second]) call.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(1);
    await until(() => overload.queued === 1, "the second call waiting for the caller's share");
    expect(overload.inflight).toBe(1);

    const refused = await failure(remote.get("o3-locked"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toMatch(
      /^server overloaded: MAX_QUEUED_CALLS \(1\) calls already waiting/,
    );

    await release();
    await Promise.all([first, second]);
    expect((await remote.get("o3-locked"))?.modelName).toBe("b");
  });

  it("with MAX_QUEUED_CALLS 0 a call finding every place taken is refused naming MAX_INFLIGHT_CALLS", async () => {
    const { server } = await serve({ maxInflightCalls: 1, maxQueuedCalls: 0, queueTimeoutMs: 200 });
    const remote = client(server);
    await remote.put("o4-locked", { threadId: "o4-t1" });
    const release = await lock("o4-locked");
    const blocked = remote.updateModelName("o4-locked", "held");
    blocked.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(1);
    const refused = await failure(remote.get("o4-locked"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toMatch(
      /^server overloaded: MAX_INFLIGHT_CALLS \(1\) calls already running; retry after \d+ ms$/,
    );
    await release();
    await blocked;
  });

  it("the pool's queue is bounded too: past DB_POOL_QUEUE_LIMIT a request fails at once with UNAVAILABLE", async () => {
    const url = (db as NonNullable<typeof db>).url;
    const store = MysqlRunStore.open({ url, poolSize: 1, poolQueueLimit: 1 });
    onTestFinished(() => store.close());
    await store.put("o5-locked", { threadId: "o5-t1" });
    await store.put("o5-free", { threadId: "o5-t2" });
    const release = await lock("o5-locked");
    const holding = store.updateModelName("o5-locked", "held");
    const waiting = store.get("o5-free");
    for (const call of [holding, waiting]) call.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(1);
    expect(store.poolStats().queued).toBe(1);

    const refused = await failure(store.updateModelName("o5-free", "refused"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toBe(
      "database overloaded: DB_POOL_QUEUE_LIMIT (1) requests already waiting for a connection",
    );
    await release();
    await holding;
    expect((await waiting)?.modelName).toBeNull();
    expect((await store.get("o5-free"))?.modelName).toBeNull();
  });

  it("RemoteRunStore repeats a refused startRun, after the hint, and it applies once capacity frees", async () => {
    const { server, attempts } = await serve({
      maxInflightCalls: 1,
      maxQueuedCalls: 0,
      queueTimeoutMs: 200,
    });
    const plain = client(server);
    await plain.put("o6-locked", { threadId: "o6-t1" });
    await plain.put("o6-run", { threadId: "o6-t2", status: "pending" });
    const release = await lock("o6-locked");
    const blocked = plain.updateModelName("o6-locked", "held");
    blocked.catch(() => {});
    await expect.poll(heldUpdates, { timeout: 10_000 }).toBe(1);

    // Many quick attempts: only the hint paces them.
    const retrying = client(server, { maxAttempts: 1000, initialBackoffMs: 1, maxBackoffMs: 1 });
    const started = retrying.startRun("o6-run");
    started.catch(() => {});
    const refusals = () =>
      attempts.filter((a) => a.method === "StartRun" && a.code === "Unavailable");
    await until(() => refusals().length >= 2, "two refused StartRun attempts");
    const releasedAt = performance.now();
    await release();
    await blocked;

    expect(await started).toBe(true);
    const tries = attempts.filter((a) => a.method === "StartRun");
    const ok = tries.filter((a) => a.code === "OK");
    expect(ok).toHaveLength(1);
    expect(tries.at(-1)?.code).toBe("OK");
    // Every refused attempt came before the release; the one that applied after it.
    expect(tries.slice(0, -1).every((a) => a.code === "Unavailable" && a.hint !== null)).toBe(true);
    expect(ok[0]?.arrived).toBeGreaterThan(releasedAt);
    // Each repeat waited at least the hint of the refusal before it (the client's sleep).
    for (let i = 1; i < tries.length; i++) {
      const before = tries[i - 1] as Attempt;
      expect((tries[i] as Attempt).arrived - before.ended).toBeGreaterThanOrEqual(
        (before.hint ?? 0) - 1,
      );
    }
    expect((await plain.get("o6-run"))?.status).toBe("running");
  });

  it("after a plain UNAVAILABLE (no hint) startRun is made once, get is repeated", async () => {
    // The database's UNAVAILABLE, as the server answers a lost connection: it may have applied.
    const down: Interceptor = (next) => async (req) => {
      if (req.method.name === "StartRun" || req.method.name === "Get") {
        throw new ConnectError("database unavailable", Code.Unavailable);
      }
      return next(req);
    };
    const { server, attempts } = await serve(
      { maxInflightCalls: 1, maxQueuedCalls: 0, queueTimeoutMs: 200 },
      100,
      [down],
    );
    const retrying = client(server, { maxAttempts: 5, initialBackoffMs: 1, maxBackoffMs: 1 });
    await retrying.put("o7-run", { threadId: "o7-t1", status: "pending" });
    const refused = await failure(retrying.startRun("o7-run"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(retryDelayOf(refused)).toBeNull();
    expect(attempts.filter((a) => a.method === "StartRun")).toHaveLength(1);
    expect((await failure(retrying.get("o7-run"))).code).toBe(Code.Unavailable);
    expect(attempts.filter((a) => a.method === "Get")).toHaveLength(5);
  });
});
