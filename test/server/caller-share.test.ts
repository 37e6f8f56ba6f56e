import { connect as netConnect } from "node:net";
import { Code } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RemoteRunStore } from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { Overload } from "../../src/overload.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, lockRow, type TestDatabase } from "../support/mysql.js";

// A fair share of the pool per caller (docs/operations.md, "Limits"): on a
// pool of 4 (share 2), one caller's many writes blocked on a locked row take
// at most 2 connections, so another caller's Gets are answered meanwhile.
// A caller is a bearer token (scoped or not: two unscoped tokens are two
// callers), or, without a token, the client's address (127.0.0.1 and
// 127.0.0.2 here, both loopback).

const SCOPED = parseTokenFile(
  [
    "alice-token-0123456789abcdef role=write users=alice",
    "bob-token-0123456789abcdefgh role=write users=bob",
  ].join("\n"),
  "tokens",
);
const UNSCOPED = ["first-unscoped-token-0123456789", "second-unscoped-token-0123456789"];

const db = await createTestDatabase("caller_share");
let store: MysqlRunStore;
let server: RunningServer;
/** The same store without authentication. */
let open: RunningServer;
const clients: RemoteRunStore[] = [];
const managers: Http2SessionManager[] = [];

/** A gRPC client of `target` with this token (none: unauthenticated), from this local address. */
function client(target: RunningServer, token?: string, localAddress = "127.0.0.1"): RemoteRunStore {
  const { hostname, port } = new URL(target.url);
  const sessionManager = new Http2SessionManager(target.url, undefined, {
    createConnection: () => netConnect({ host: hostname, port: Number(port), localAddress }),
  });
  managers.push(sessionManager);
  const transport = createGrpcTransport({ baseUrl: target.url, sessionManager });
  const remote = new RemoteRunStore({ transport, token, retry: { maxAttempts: 1 } });
  clients.push(remote);
  return remote;
}

beforeAll(async () => {
  if (db === null) return;
  store = db.openStore(); // poolSize 4: the default share is 2
  server = await startServer({ store, tokens: [...SCOPED, ...UNSCOPED] });
  open = await startServer({ store });
});

afterAll(async () => {
  for (const c of clients) c.close?.();
  for (const m of managers) m.abort();
  await server?.close(0);
  await open?.close(0);
  await db?.drop();
});

/**
 * Statements running on the test database now, other than this count's
 * own: those blocked on the locked row (an UPDATE, or the SELECT … FOR
 * UPDATE of a write checked against its owner).
 */
async function blockedStatements(database: TestDatabase): Promise<number> {
  const connection = await createConnection({ uri: database.url });
  try {
    const [rows] = await connection.query(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST " +
        "WHERE DB = ? AND INFO IS NOT NULL AND ID <> CONNECTION_ID()",
      [database.name],
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await connection.end();
  }
}

/**
 * `flooder` sends 12 writes to a row locked by another session; once its
 * share (2) is on MySQL, `other` must get 40 answers while every write is
 * still blocked. Each Get has a deadline of its own, so a Get stuck behind
 * the flooder's share fails the test rather than hanging it.
 */
async function floodAndServe(
  name: string,
  flooder: RemoteRunStore,
  other: RemoteRunStore,
  users: { flooder: string; other: string },
): Promise<void> {
  const database = db as TestDatabase;
  const locked = `locked-${name}`;
  const theirs = `theirs-${name}`;
  await flooder.put(locked, { threadId: locked, userId: users.flooder, status: "pending" });
  await other.put(theirs, { threadId: theirs, userId: users.other, status: "pending" });

  const unlock = await lockRow(database.url, locked);
  let settled = 0;
  const writes = Array.from({ length: 12 }, (_, i) =>
    flooder.updateModelName(locked, `m${i}`).finally(() => {
      settled++;
    }),
  );
  // Awaited below; a failed assertion first must not leave them unhandled.
  for (const write of writes) write.catch(() => {});
  try {
    // The flooder's share (2) is on MySQL, waiting for the lock; the other 10 wait in the server.
    await expect.poll(() => blockedStatements(database), { timeout: 10_000 }).toBe(2);

    const times: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      const run = await other.get(theirs, undefined, { timeoutMs: 5000 });
      times.push(performance.now() - t0);
      expect(run?.runId).toBe(theirs);
    }
    // The other caller was answered every time while every write was still blocked.
    expect(settled).toBe(0);
    expect(await blockedStatements(database)).toBe(2);
    times.sort((a, b) => a - b);
    const p99 = times[Math.ceil(times.length * 0.99) - 1] as number;
    console.log(
      `REPORT caller-share (${name}): 40 Gets of another caller while 12 writes of one caller were blocked on a row lock (pool 4, share 2): p99 ${p99.toFixed(1)} ms`,
    );
  } finally {
    await unlock();
  }
  await Promise.all(writes);
  expect(settled).toBe(12);
  expect((await flooder.get(locked))?.modelName).toMatch(/^m\d+$/);
}

describe.skipIf(db === null)("caller share", () => {
  it("two scoped tokens: one's writes blocked on a locked row do not stop the other's Gets", async () => {
    const alice = client(server, SCOPED[0]?.token);
    const bob = client(server, SCOPED[1]?.token);
    await floodAndServe("scoped", alice, bob, { flooder: "alice", other: "bob" });
  });

  it("two unscoped tokens are two callers, each with a share of its own", async () => {
    const first = client(server, UNSCOPED[0]);
    const second = client(server, UNSCOPED[1]);
    await floodAndServe("unscoped", first, second, { flooder: "u1", other: "u2" });
  });

  it("without authentication, each client address is a caller with a share of its own", async () => {
    const here = client(open, undefined, "127.0.0.1");
    const there = client(open, undefined, "127.0.0.2");
    await floodAndServe("addresses", here, there, { flooder: "h1", other: "h2" });
  });

  it("progress writes the store groups take no place of their caller's share; the batch's refusal is counted", async () => {
    const database = db as TestDatabase;
    // A pool of 4 (share 2), at most 2 progress writes waiting for a batch.
    const small = MysqlRunStore.open({ url: database.url, poolSize: 4, progressBatch: 2 });
    const overload = new Overload({
      maxInflightCalls: 8,
      maxQueuedCalls: 32,
      queueTimeoutMs: 60_000,
    });
    const served = await startServer({ store: small, overload });
    try {
      const caller = client(served);
      await caller.put("share-locked", { threadId: "tl", status: "running" });
      const runs = Array.from({ length: 20 }, (_, i) => `share-p${i}`);
      for (const id of runs) await caller.put(id, { threadId: "tp", status: "running" });
      const lock = await lockRow(database.url, "share-locked");
      let unlocked: Promise<void> | undefined;
      const unlock = () => {
        unlocked ??= lock();
        return unlocked;
      };
      let settled = 0;
      const writes = [0, 1].map((i) =>
        caller.updateModelName("share-locked", `m${i}`).finally(() => {
          settled++;
        }),
      );
      for (const write of writes) write.catch(() => {});
      try {
        await expect.poll(() => blockedStatements(database), { timeout: 10_000 }).toBe(2);
        // The caller's share is held by the two blocked writes; its progress still goes through.
        for (const id of runs)
          await caller.updateRunProgress(id, { totalTokens: 7 }, { timeoutMs: 5000 });
        expect(settled).toBe(0);
        // A progress write to the locked run rides alone and blocks; two more of it wait; a fourth is refused.
        const blocked = caller.updateRunProgress("share-locked", { totalTokens: 1 });
        await expect.poll(() => blockedStatements(database), { timeout: 10_000 }).toBe(3);
        const waiting = [2, 3].map((n) =>
          caller.updateRunProgress("share-locked", { totalTokens: n }),
        );
        const refused = await failureOf(
          caller.updateRunProgress("share-locked", { totalTokens: 4 }),
        );
        expect(refused.code).toBe(Code.Unavailable);
        expect(refused.rawMessage).toMatch(/^server overloaded: MYSQL_PROGRESS_BATCH \(2\) /);
        expect(overload.refused().get("MYSQL_PROGRESS_BATCH")).toBe(1);
        await unlock();
        await Promise.all([...writes, blocked, ...waiting]);
      } finally {
        await unlock();
      }
      expect((await caller.get("share-locked"))?.totalTokens).toBe(3);
      expect((await caller.get("share-p19"))?.totalTokens).toBe(7);
    } finally {
      await served.close(0);
      await small.close();
    }
  });
});
