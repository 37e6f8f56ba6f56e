import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { LOCK_OWNER } from "../../src/stores/mysql-owners.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import {
  createTestDatabase,
  lockRow,
  runningStatements,
  type TestDatabase,
} from "../support/mysql.js";

// A fair share of the pool per caller (docs/operations.md, "Limits"): on a
// pool of 4 (share 2), one caller's many writes blocked on a locked row take
// at most 2 connections, so another caller's Gets are answered meanwhile.

const TOKENS = parseTokenFile(
  [
    "alice-token-0123456789abcdef role=write users=alice",
    "bob-token-0123456789abcdefgh role=write users=bob",
  ].join("\n"),
  "tokens",
);

/** What a user-bound write waits in first: the lock on its run's row (mysql-owners.ts), up to its first value. */
const OWNER_LOCK = LOCK_OWNER.slice(0, LOCK_OWNER.indexOf("?"));

const db = await createTestDatabase("caller_share");
let store: MysqlRunStore;
let server: RunningServer;
const clients: RemoteRunStore[] = [];

function client(token: string): RemoteRunStore {
  const remote = new RemoteRunStore({
    baseUrl: server.url,
    protocol: "grpc",
    token,
    retry: { maxAttempts: 1 },
  });
  clients.push(remote);
  return remote;
}

beforeAll(async () => {
  if (db === null) return;
  store = db.openStore(); // poolSize 4: the default share is 2
  server = await startServer({ store, tokens: TOKENS });
});

afterAll(async () => {
  for (const c of clients) c.close?.();
  await server?.close(0);
  await db?.drop();
});

describe.skipIf(db === null)("caller share", () => {
  it("one caller's writes blocked on a locked row do not stop another caller's Gets", async () => {
    const database = db as TestDatabase;
    const alice = client(TOKENS[0]?.token as string);
    const bob = client(TOKENS[1]?.token as string);
    await alice.put("locked", { threadId: "t", userId: "alice", status: "pending" });
    await bob.put("bobs", { threadId: "tb", userId: "bob", status: "pending" });

    const unlock = await lockRow(database.url, "locked");
    let settled = 0;
    const writes = Array.from({ length: 12 }, (_, i) =>
      alice.updateModelName("locked", `m${i}`).finally(() => {
        settled++;
      }),
    );
    try {
      // Alice's share (2) is on MySQL, waiting for the lock; the other 10 wait in the server.
      await expect.poll(() => runningStatements(database, OWNER_LOCK), { timeout: 10_000 }).toBe(2);

      const times: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        const run = await bob.get("bobs");
        times.push(performance.now() - t0);
        expect(run?.runId).toBe("bobs");
      }
      // Bob was answered every time while every write of Alice's was still blocked.
      expect(settled).toBe(0);
      expect(await runningStatements(database, OWNER_LOCK)).toBe(2);
      times.sort((a, b) => a - b);
      const p99 = times[Math.ceil(times.length * 0.99) - 1] as number;
      console.log(
        `REPORT caller-share: 40 Gets of another caller while 12 writes of one caller were blocked on a row lock (pool 4, share 2): p99 ${p99.toFixed(1)} ms`,
      );
    } finally {
      await unlock();
    }
    await Promise.all(writes);
    expect(settled).toBe(12);
    expect((await alice.get("locked"))?.modelName).toMatch(/^m\d+$/);
  });
});
