import type { Interceptor } from "@connectrpc/connect";
import { Code, type RemoteProtocol, RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { spawnServer } from "../support/child-server.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, type TestDatabase } from "../support/mysql.js";
import { Replica, refusingUrl } from "../support/replicas.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { until } from "../support/until.js";

// RemoteRunStore with a list of base URLs (issue 16 item 3): three replicas
// on one MariaDB database, so a run written through one is read through any
// other. Each replica counts the calls that reach it (an interceptor), and
// can refuse some with UNAVAILABLE, hold one, be stopped and started again.

const db = await createTestDatabase("endpoints");
/** Without MySQL (RUNSTORE_SKIP=mysql) the in-process replicas share one memory store. */
const shared = db === null ? new MemoryRunStore() : undefined;
const replicas: Replica[] = [];
/** Quick to leave out and take back, so a revived replica is seen soon. */
const FAST = { downMs: 20, maxDownMs: 200 };

beforeAll(async () => {
  for (let i = 0; i < 3; i++)
    replicas.push(new Replica(shared ?? (db as TestDatabase).openStore()));
  for (const replica of replicas) await replica.start();
});

afterAll(async () => {
  for (const replica of replicas) await replica.stop();
  await db?.drop();
});

beforeEach(async () => {
  for (const replica of replicas) {
    replica.reset();
    // A test that stopped a replica may have failed before starting it again.
    await replica.start().catch(() => {});
  }
  await db?.truncate();
});

const stores: RemoteRunStore[] = [];
beforeEach(() => {
  for (const store of stores.splice(0)) store.close();
});

/** A client of the three replicas, the first call going to replicas[0]. */
function client(options: Partial<ConstructorParameters<typeof RemoteRunStore>[0]> = {}) {
  const store = new RemoteRunStore({
    baseUrl: replicas.map((r) => r.url),
    failover: FAST,
    timeoutMs: 10_000,
    ...options,
  });
  stores.push(store);
  return store;
}

const counts = (method?: string) => replicas.map((r) => r.count(method));

describe("round robin", () => {
  it("each call goes to the next replica; a run written through one is read through the others", async () => {
    const store = client();
    await store.put("rr-1", { threadId: "t-rr", status: "running" });
    const seen: (string | undefined)[] = [];
    for (let i = 0; i < 30; i++) seen.push((await store.get("rr-1"))?.threadId);
    expect(seen).toEqual(Array(30).fill("t-rr"));
    expect(counts("Put")).toEqual([1, 0, 0]);
    expect(counts("Get")).toEqual([10, 10, 10]);
  });

  it("each store keeps its own rotation: a new one starts at the first URL", async () => {
    await client().get("x");
    await client().get("x");
    expect(counts("Get")).toEqual([2, 0, 0]);
  });
});

describe("a replica stopped", () => {
  it("every call succeeds through the other two, and the replica is used again once back", async () => {
    const store = client();
    await replicas[1]?.stop();
    let errors = 0;
    for (let i = 0; i < 10; i++) {
      await store.put(`down-${i}`, { threadId: "t-down" }).catch(() => errors++);
      expect((await store.get(`down-${i}`).catch(() => errors++)) as unknown).toMatchObject({
        runId: `down-${i}`,
      });
      await store.updateStatus(`down-${i}`, "running").catch(() => errors++);
    }
    expect(errors).toBe(0);
    expect(replicas[1]?.count()).toBe(0);
    expect((replicas[0]?.count() ?? 0) + (replicas[2]?.count() ?? 0)).toBe(30);
    expect((await store.listByThread("t-down")).length).toBe(10);

    await replicas[1]?.start();
    await vi.waitFor(
      async () => {
        await store.get("down-0");
        expect(replicas[1]?.count("Get")).toBeGreaterThan(0);
      },
      { timeout: 15_000, interval: 10 },
    );
    // Healthy again: an equal share of the next calls.
    for (const r of replicas) r.calls.clear();
    for (let i = 0; i < 30; i++) await store.get("down-0");
    expect(counts("Get")).toEqual([10, 10, 10]);
  });

  for (const protocol of ["grpc", "connect"] as RemoteProtocol[]) {
    it(`${protocol}: 4 workers keep going while a replica stops and starts again: no call fails`, async () => {
      const store = client({ protocol });
      const load = startLoad(store, 4);
      await until(() => load.done() >= 40, "40 calls before the stop");
      await replicas[2]?.stop();
      const stoppedAt = load.done();
      await until(() => load.done() >= stoppedAt + 60, "60 calls with one replica stopped");
      const before = replicas[2]?.count() ?? 0;
      expect(before).toBeGreaterThan(0);
      await replicas[2]?.start();
      await until(() => (replicas[2]?.count() ?? 0) > before, "the replica used again");
      const { done, errors } = await load.stop();
      expect(errors).toEqual([]);
      console.log(
        `REPORT endpoints (${protocol}): ${done} calls by 4 workers across a graceful stop and start of one of 3 replicas, ${errors.length} failed; calls per replica ${counts().join("/")}`,
      );
    });
  }
});

describe("a replica process killed (SIGKILL) under load", () => {
  // A server process shares the others' data only through MySQL.
  it.skipIf(db === null)(
    "idempotent calls fail over, none fails, and every acknowledged write is there",
    async () => {
      const child = await spawnServer({ DATABASE_URL: db?.url ?? "" });
      const store = client({
        baseUrl: [replicas[0]?.url ?? "", replicas[1]?.url ?? "", child.url],
      });
      const load = startLoad(store, 4);
      try {
        await until(() => load.done() >= 60, "60 calls before the kill");
        const slowestBefore = load.slowest();
        const began = performance.now();
        await child.stop("SIGKILL");
        const killedAt = load.done();
        await until(() => load.done() >= killedAt + 60, "60 calls after the kill");
        const ms = performance.now() - began;
        const { done, errors, written } = await load.stop();
        expect(errors).toEqual([]);
        const missing: string[] = [];
        for (const id of written) if ((await store.get(id)) === null) missing.push(id);
        expect(missing).toEqual([]);
        console.log(
          `REPORT endpoints (SIGKILL): ${done} calls by 4 workers, one of 3 replicas killed after ${killedAt}; ${errors.length} failed, ${written.length} acknowledged puts, ${missing.length} missing; ${Math.round(ms)} ms from the kill to 60 more calls; slowest 3-call step ${Math.round(slowestBefore)} ms before the kill, ${Math.round(load.slowest())} ms in all`,
        );
      } finally {
        await load.stop();
        await child.stop("SIGKILL");
      }
    },
  );
});

describe("an endpoint that refuses connections", () => {
  it("is skipped within the attempt: no retry needed, even for a single-attempt RPC", async () => {
    await client().put("skip-1", { threadId: "t-skip" });
    for (const r of replicas) r.calls.clear();
    const refused = await refusingUrl();
    const store = client({ baseUrl: [refused, replicas[0]?.url ?? "", replicas[1]?.url ?? ""] });
    const store2 = client({ baseUrl: [refused, replicas[0]?.url ?? "", replicas[1]?.url ?? ""] });
    // retry: false would make no difference: one attempt, moved before anything was sent.
    const began = performance.now();
    expect(await store.startRun("skip-1")).toBe(true);
    const ms = performance.now() - began;
    expect(counts("StartRun")).toEqual([1, 0, 0]);
    expect(await store2.get("skip-1")).toMatchObject({ runId: "skip-1", status: "running" });
    for (let i = 0; i < 10; i++) expect((await store.get("skip-1"))?.status).toBe("running");
    // Every call answered by the two that listen; the refusing one is tried
    // again each time its time out ends, and skipped again.
    const [first, second, third] = counts("Get");
    expect([(first ?? 0) + (second ?? 0), third]).toEqual([11, 0]);
    console.log(
      `REPORT endpoints: startRun past a refusing endpoint answered in ${ms.toFixed(1)} ms`,
    );
  });

  it("with retries off too", async () => {
    const refused = await refusingUrl();
    const store = client({ baseUrl: [refused, replicas[0]?.url ?? ""], retry: false });
    expect(await store.get("none")).toBeNull();
    expect(counts("Get")).toEqual([1, 0, 0]);
  });

  it("when every endpoint refuses, the call fails with UNAVAILABLE", async () => {
    const store = client({ baseUrl: [await refusingUrl(), await refusingUrl()], retry: false });
    const error = await failureOf(store.get("none"));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toMatch(/ECONNREFUSED/);
  });
});

describe("an attempt that reached a replica", () => {
  const SINGLE: [string, (s: RemoteRunStore) => Promise<unknown>][] = [
    ["StartRun", (s) => s.startRun("r")],
    ["ClaimNextRun", (s) => s.claimNextRun("w", { durationMs: 60_000 })],
    ["FinalizeIfNotCancelled", (s) => s.finalizeIfNotCancelled("r", "success")],
    ["ClaimForTakeover", (s) => s.claimForTakeover("r", { error: "lost" })],
  ];

  for (const [rpc, call] of SINGLE) {
    it(`${rpc} answered UNAVAILABLE is not retried on another replica`, async () => {
      for (const r of replicas) r.refuse.add(rpc);
      const error = await failureOf(call(client()));
      expect([error.code, error.rawMessage]).toEqual([Code.Unavailable, "replica draining"]);
      expect(counts(rpc)).toEqual([1, 0, 0]);
    });
  }

  it("an idempotent call answered UNAVAILABLE is retried on the next replica", async () => {
    replicas[0]?.refuse.add("Get");
    expect(await client().get("none")).toBeNull();
    expect(counts("Get")).toEqual([1, 1, 0]);
  });

  it("every replica answering UNAVAILABLE: 4 attempts, each retry on the next replica", async () => {
    for (const r of replicas) r.refuse.add("Get");
    const error = await failureOf(client({ failover: undefined }).get("none"));
    expect([error.code, error.rawMessage]).toEqual([Code.Unavailable, "replica draining"]);
    // The fourth goes to the replica due back first: the first one.
    expect(counts("Get")).toEqual([2, 1, 1]);
  });
});

describe("a connection lost under a call", () => {
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = new TcpProxy("127.0.0.1", replicas[0]?.port ?? 0);
    await proxy.start();
    return () => proxy.close();
  });
  const throughProxy = (protocol: RemoteProtocol = "grpc") =>
    client({
      baseUrl: [`http://127.0.0.1:${proxy.port}`, replicas[1]?.url ?? "", replicas[2]?.url ?? ""],
      protocol,
    });

  for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
    it(`${protocol}: an idempotent call is retried on the next replica`, async () => {
      await client().put("lost-1", { threadId: "t-lost" });
      const gate = replicas[0]?.hold("Get");
      const call = throughProxy(protocol).get("lost-1");
      await gate?.entered.promise;
      proxy.cut();
      expect(await call).toMatchObject({ runId: "lost-1", threadId: "t-lost" });
      expect(counts("Get")).toEqual([1, 1, 0]);
      gate?.release.resolve();
    });
  }

  it("with one URL, the call fails with UNAVAILABLE, connection lost (was CANCELED)", async () => {
    const gate = replicas[0]?.hold("Get");
    const store = client({ baseUrl: `http://127.0.0.1:${proxy.port}`, retry: false });
    const call = failureOf(store.get("lost-3"));
    await gate?.entered.promise;
    proxy.cut();
    const error = await call;
    expect([error.code, error.rawMessage]).toEqual([
      Code.Unavailable,
      "connection lost before the answer (http/2 stream closed with error code CANCEL (0x8))",
    ]);
    gate?.release.resolve();
  });

  it("a single-attempt call fails with UNAVAILABLE and is not made again", async () => {
    await client().put("lost-2", { threadId: "t-lost" });
    const gate = replicas[0]?.hold("StartRun");
    const call = failureOf(throughProxy().startRun("lost-2"));
    await gate?.entered.promise;
    proxy.cut();
    const error = await call;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toMatch(/^connection lost before the answer/);
    expect(counts("StartRun")).toEqual([1, 0, 0]);
    gate?.release.resolve();
  });
});

describe("mutual TLS over several endpoints", () => {
  let certs: TestCerts;
  const servers: RunningServer[] = [];
  beforeAll(async () => {
    certs = makeTestCerts();
    for (let i = 0; i < 2; i++) {
      const tls = { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca };
      servers.push(await startServer({ store: new MemoryRunStore(), tls }));
    }
  });
  afterAll(async () => {
    for (const server of servers) await server.close(0);
    certs.remove();
  });

  /** A store of both servers presenting `certificate`, counting its attempts. */
  function tlsClient(
    protocol: RemoteProtocol,
    httpVersion: "2" | "1.1",
    certificate: { cert: Buffer; key: Buffer } | undefined,
  ) {
    const seen = { attempts: 0 };
    const counting: Interceptor = (next) => (req) => {
      seen.attempts++;
      return next(req);
    };
    const store = client({
      baseUrl: servers.map((s) => s.url),
      protocol,
      httpVersion,
      tls: { ca: certs.ca, ...certificate },
      interceptors: [counting],
    });
    return { store, seen };
  }

  const UNTRUSTED =
    "the server requires a client certificate (mutual TLS) and refused this one: the server closed the connection right after the TLS handshake without a word, as it does with a certificate it does not trust (another CA, expired, revoked)";

  for (const [protocol, httpVersion] of [
    ["grpc", "2"],
    ["connect", "2"],
    ["connect", "1.1"],
  ] as const) {
    it(`${protocol} over HTTP/${httpVersion}: a trusted certificate reaches both, an untrusted one is UNAUTHENTICATED after one attempt`, async () => {
      const trusted = tlsClient(protocol, httpVersion, {
        cert: certs.clientCert,
        key: certs.clientKey,
      });
      await trusted.store.put("m1", { threadId: "t" });
      expect(await trusted.store.get("m1")).toBeNull(); // the other server's memory
      expect((await trusted.store.get("m1"))?.runId).toBe("m1");
      const stranger = tlsClient(protocol, httpVersion, {
        cert: certs.strangerCert,
        key: certs.strangerKey,
      });
      const error = await failureOf(stranger.store.get("m1"));
      expect([error.code, error.rawMessage]).toEqual([Code.Unauthenticated, UNTRUSTED]);
      expect(stranger.seen.attempts).toBe(1);
    });
  }
});

describe("bad options", () => {
  it.each([
    [[], "baseUrl is an empty array: give at least one URL"],
    [["http://127.0.0.1:1", "127.0.0.1:2"], 'baseUrl[1] is not a URL: "127.0.0.1:2"'],
    [
      ["http://127.0.0.1:1", "https://127.0.0.1:2"],
      "baseUrl[1] is https:// but baseUrl[0] is http://: every endpoint takes the same scheme (they share the TLS options)",
    ],
    [
      ["http://127.0.0.1:1", "http://127.0.0.1:1"],
      "baseUrl[1] repeats baseUrl[0] (http://127.0.0.1:1)",
    ],
  ])("refuses baseUrl %j", (baseUrl, message) => {
    expect(() => new RemoteRunStore({ baseUrl })).toThrow(new TypeError(message));
  });

  it("refuses a bad failover option and TLS options for http:// endpoints", () => {
    const baseUrl = ["http://127.0.0.1:1", "http://127.0.0.1:2"];
    expect(() => new RemoteRunStore({ baseUrl, failover: { downMs: -5 } })).toThrow(
      new TypeError("failover.downMs must be a finite number >= 0, got -5"),
    );
    expect(() => new RemoteRunStore({ baseUrl, tls: { ca: "x" } })).toThrow(
      new TypeError("tls options need an https:// baseUrl, got http://127.0.0.1:1"),
    );
  });
});

/**
 * `workers` loops of put, get and updateStatus on runs of their own until
 * stop(): what each acknowledged is checked by the next call, and every
 * failure is kept (its code and message).
 */
function startLoad(store: RemoteRunStore, workers: number) {
  let stopped = false;
  let done = 0;
  const errors: string[] = [];
  const written: string[] = [];
  const step = async (id: string) => {
    await store.put(id, { threadId: "t-load" });
    written.push(id);
    const run = await store.get(id);
    if (run?.runId !== id) throw new Error(`get ${id} answered ${run?.runId}`);
    if ((await store.updateStatus(id, "running")) !== true) throw new Error(`updateStatus ${id}`);
  };
  let slowest = 0;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const began = performance.now();
      await step(`load-${w}-${i}`).catch((e: Error) => errors.push(e.message));
      slowest = Math.max(slowest, performance.now() - began);
      done += 3;
    }
  });
  return {
    done: () => done,
    /** The longest put-get-updateStatus step so far, in ms. */
    slowest: () => slowest,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { done, errors, written };
    },
  };
}
