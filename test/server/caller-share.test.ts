import { connect as netConnect } from "node:net";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RemoteRunStore } from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { type RunningServer, startServer } from "../../src/server.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
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
});
