import { Writable } from "node:stream";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RemoteRunStore, type RunStore } from "@runstore/client";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pbHealth from "../../src/gen/grpc/health/v1/health_pb.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// Bearer-token authentication on every RunStoreService RPC; health stays open;
// refusals are logged without the token; users stay isolated.

const TOKEN_OLD = "old-token-0123456789abcdef";
const TOKEN_NEW = "new-token-fedcba9876543210";

let server: RunningServer;
let backend: MemoryRunStore;
const logged: Record<string, unknown>[] = [];
const stores: RemoteRunStore[] = [];

function remote(token?: string): RemoteRunStore {
  const store = new RemoteRunStore({ baseUrl: server.url, ...(token ? { token } : {}) });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  backend = new MemoryRunStore();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged.push(JSON.parse(String(chunk)));
      done();
    },
  });
  server = await startServer({
    store: backend,
    tokens: [TOKEN_OLD, TOKEN_NEW],
    logger: pino({ level: "debug" }, sink),
    // Every refusal its own line, past the default budget of 20 a minute.
    logBudget: { linesPerWindow: 1000, windowMs: 60_000 },
  });
});

afterAll(async () => {
  for (const store of stores) store.close();
  await server.close(0);
});

/** One call of every RPC of RunStoreService. */
const EVERY_RPC: [string, (store: RunStore) => Promise<unknown>][] = [
  ["Put", (s) => s.put("r1", { threadId: "t1" })],
  ["Get", (s) => s.get("r1")],
  ["ListByThread", (s) => s.listByThread("t1")],
  ["UpdateStatus", (s) => s.updateStatus("r1", "running")],
  ["Delete", (s) => s.delete("r1")],
  ["UpdateModelName", (s) => s.updateModelName("r1", "m")],
  ["UpdateRunCompletion", (s) => s.updateRunCompletion("r1", { status: "success" })],
  ["UpdateRunProgress", (s) => s.updateRunProgress("r1", { totalTokens: 1 })],
  ["ListPending", (s) => s.listPending()],
  ["ListInflight", (s) => s.listInflight()],
  ["AggregateTokensByThread", (s) => s.aggregateTokensByThread("t1")],
];

describe("bearer-token authentication", () => {
  it("every RPC refuses a missing token and a wrong one with UNAUTHENTICATED, changing nothing", async () => {
    for (const [name, call] of EVERY_RPC) {
      const missing = await failureOf(call(remote()));
      expect([name, missing.code, missing.rawMessage]).toEqual([
        name,
        Code.Unauthenticated,
        "missing bearer token",
      ]);
      const wrong = await failureOf(call(remote(`${TOKEN_NEW}x`)));
      expect([name, wrong.code, wrong.rawMessage]).toEqual([
        name,
        Code.Unauthenticated,
        "invalid bearer token",
      ]);
    }
    expect(await backend.get("r1")).toBeNull();
  });

  it("a malformed authorization header is UNAUTHENTICATED", async () => {
    const sessionManager = new Http2SessionManager(server.url);
    const raw = createClient(
      pbHealth.Health,
      createGrpcTransport({ baseUrl: server.url, sessionManager }),
    );
    const store = new RemoteRunStore({ baseUrl: server.url });
    stores.push(store);
    try {
      const error = await failureOf(
        store.client.get({ runId: "r1" }, { headers: { authorization: `Basic ${TOKEN_NEW}` } }),
      );
      expect(error.code).toBe(Code.Unauthenticated);
      // Health stays open: probes carry no credentials.
      const health = await raw.check({ service: "" });
      expect(health.status).toBe(pbHealth.HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      sessionManager.abort();
    }
  });

  it("accepts each configured token (rotation: old and new both valid)", async () => {
    for (const [, call] of EVERY_RPC) {
      await call(remote(TOKEN_OLD));
      await call(remote(TOKEN_NEW));
    }
    expect(await remote(TOKEN_OLD).get("nope")).toBeNull();
  });

  it("logs each refusal with procedure and reason, never the token", async () => {
    const refusals = logged.filter((line) => line.msg === "unauthenticated call refused");
    expect(refusals.length).toBeGreaterThanOrEqual(EVERY_RPC.length * 2 + 1);
    expect(refusals[0]).toMatchObject({
      level: 40,
      procedure: "runstore.v1.RunStoreService/Put",
      reason: "missing",
    });
    expect(refusals[1]).toMatchObject({
      procedure: "runstore.v1.RunStoreService/Put",
      reason: "wrong",
    });
    const all = JSON.stringify(logged);
    expect(all).not.toContain(TOKEN_NEW);
    expect(all).not.toContain(TOKEN_OLD);
    expect(all).not.toContain("old-token");
  });
});

describe("user isolation with authentication on", () => {
  it("a second user can neither see, list, nor delete the first user's runs", async () => {
    const alice = remote(TOKEN_NEW);
    await alice.put("a-run", {
      threadId: "shared-thread",
      userId: "alice",
      createdAt: "2026-01-01T00:00:00Z",
    });
    await alice.put("b-run", {
      threadId: "shared-thread",
      userId: "bob",
      createdAt: "2026-01-01T00:00:01Z",
    });
    const bob = remote(TOKEN_OLD);
    expect(await bob.get("a-run", { userId: "bob" })).toBeNull();
    expect(
      (await bob.listByThread("shared-thread", { userId: "bob" })).map((r) => r.runId),
    ).toEqual(["b-run"]);
    await bob.delete("a-run", { userId: "bob" });
    expect((await alice.get("a-run", { userId: "alice" }))?.userId).toBe("alice");
    expect(
      (await alice.listByThread("shared-thread", { userId: "alice" })).map((r) => r.runId),
    ).toEqual(["a-run"]);
  });
});
