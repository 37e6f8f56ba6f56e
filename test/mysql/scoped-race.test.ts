import { Code, ConnectError, type RemoteRunStore, type RunRecord } from "@runstore/client";
import { type Connection, createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, type TestDatabase } from "../support/mysql.js";
import { CONTRACT_OVERLOAD } from "../support/remote.js";
import {
  type Caller,
  clientOf,
  OWNER_TOKENS,
  seedRunning,
  WRITES_BY_ID,
} from "../support/scoped-writes.js";

// The owner condition inside MySQL's writes (docs/security.md, "Scoped
// tokens"), made deterministic with a session of the test's own: it holds
// the lock a user-bound write needs, the test waits until the write is
// queued behind it (its statement shows in PROCESSLIST), then the session
// changes what the write depends on and commits. The write must
// then be judged on what was committed, and change nothing.

const db = await createTestDatabase("scoped_race");
let store: MysqlRunStore;
let server: RunningServer;
const clients: RemoteRunStore[] = [];
let seq = 0;
const fresh = (label: string) => `${label}-${++seq}`;

beforeAll(async () => {
  if (db === null) return;
  store = db.openStore();
  // Races of owners, not of the overload bounds: every call waits its turn.
  server = await startServer({ store, tokens: OWNER_TOKENS, overload: CONTRACT_OVERLOAD });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server?.close(0);
  await db?.drop();
});

function client(caller: Caller): RemoteRunStore {
  const remote = clientOf(server.url, caller);
  clients.push(remote);
  return remote;
}

/** A session of the test's own with a transaction open: what it locks stays locked until COMMIT. */
async function sideSession(): Promise<Connection> {
  const session = await createConnection({ uri: (db as TestDatabase).url });
  await session.query("BEGIN");
  return session;
}

/**
 * Statements of other sessions on the test's database that wait, or are
 * about to wait, for a row the side session holds: a locking read, or an
 * UPDATE / DELETE. Read from PROCESSLIST, which is live (InnoDB's lock-wait
 * tables are a snapshot refreshed every 0.1 s, so they may show a wait that
 * has ended). A locking read cannot have read the row before the side
 * session locked it, so once it shows here it answers with what the side
 * session commits.
 */
async function blockedStatements(): Promise<number> {
  const session = await createConnection({ uri: (db as TestDatabase).url });
  try {
    const [rows] = await session.query(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() " +
        "AND (INFO LIKE '%FOR UPDATE%' OR INFO LIKE 'UPDATE%' OR INFO LIKE 'DELETE%')",
      [(db as TestDatabase).name],
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await session.end();
  }
}

/**
 * Starts `call` while `side` holds what it needs, waits until it is queued
 * behind that lock, runs `change` in the side session and commits: answers
 * the call's error (the call must fail).
 */
async function raced(
  side: Connection,
  call: () => Promise<unknown>,
  change: string,
  values: string[],
) {
  expect(await blockedStatements()).toBe(0);
  const failing = failureOf(call());
  await expect.poll(blockedStatements, { timeout: 10_000 }).toBe(1);
  await side.query(change, values);
  await side.query("COMMIT");
  return failing;
}

/** A finished run of bob's as another replica would insert it: on `threadId`, holding no slot. */
const INSERT_BOBS =
  "INSERT INTO runs (run_id, thread_id, user_id, status, multitask_strategy, metadata, kwargs, " +
  "created_at, updated_at) VALUES (?, ?, 'bob', 'success', 'reject', '{}', '{}', " +
  "'2001-01-01 00:00:00', '2001-01-01 00:00:00')";

const RUN_NOT_YOURS = ["PermissionDenied", "run_id belongs to a user this token is not bound to"];

describe.skipIf(db === null)("a user-bound write racing an owner change on MySQL", () => {
  for (const [rpc, write] of WRITES_BY_ID) {
    it(`${rpc}: alice's write waits for her run's lock; handed to bob meanwhile, it is refused and changes nothing`, async () => {
      const runId = fresh("race");
      const threadId = `${runId}-t`;
      const before = await seedRunning(store, runId, threadId, "alice");
      const side = await sideSession();
      try {
        await side.query("SELECT run_id FROM runs WHERE run_id = ? FOR UPDATE", [runId]);
        const error = await raced(
          side,
          () => write(client("alice"), runId, threadId),
          "UPDATE runs SET user_id = 'bob' WHERE run_id = ?",
          [runId],
        );
        expect([Code[error.code], error.rawMessage]).toEqual(RUN_NOT_YOURS);
        expect(await store.get(runId)).toEqual({ ...before, userId: "bob" });
      } finally {
        await side.end();
      }
    });
  }

  it("a run missing when alice's write starts, inserted for bob meanwhile, is refused and unchanged", async () => {
    const runId = fresh("late");
    const side = await sideSession();
    try {
      await side.query(INSERT_BOBS, [runId, `${runId}-t`]);
      const error = await raced(
        side,
        () => client("alice").updateStatus(runId, "error"),
        "UPDATE runs SET model_name = 'committed' WHERE run_id = ?",
        [runId],
      );
      expect([Code[error.code], error.rawMessage]).toEqual(RUN_NOT_YOURS);
      const row = (await store.get(runId)) as RunRecord;
      expect([row.userId, row.status, row.updatedAt]).toEqual([
        "bob",
        "success",
        "2001-01-01T00:00:00.000000Z",
      ]);
    } finally {
      await side.end();
    }
  });
});

describe.skipIf(db === null)("a user-bound run racing onto another user's thread on MySQL", () => {
  const notYours = (threadId: string) => [
    "PermissionDenied",
    `thread_id ${threadId} has runs of a user this token is not bound to`,
  ];

  for (const [how, create] of [
    [
      "admission",
      (runId: string, threadId: string) =>
        client("alice").createThreadOperation(runId, { threadId, ownerWorkerId: "w2" }),
    ],
    ["put", (runId: string, threadId: string) => client("alice").put(runId, { threadId })],
  ] as const) {
    it(`alice's ${how} on a thread bob's run is being inserted onto waits for it, then is refused`, async () => {
      const threadId = fresh("t");
      const bobs = `${threadId}-bobs`;
      const alices = `${threadId}-alices`;
      const side = await sideSession();
      try {
        await side.query(INSERT_BOBS, [bobs, threadId]);
        const error = await raced(
          side,
          () => create(alices, threadId),
          "UPDATE runs SET model_name = 'committed' WHERE run_id = ?",
          [bobs],
        );
        expect([Code[error.code], error.rawMessage]).toEqual(notYours(threadId));
        expect(await store.get(alices)).toBeNull();
        expect((await store.listByThread(threadId)).map((run) => run.runId)).toEqual([bobs]);
      } finally {
        await side.end();
      }
    });
  }

  it("alice and bob admitted onto 10 new threads at once: one user per thread, the other refused", async () => {
    const threads = Array.from({ length: 10 }, () => fresh("t"));
    const outcomes = await Promise.all(
      threads.flatMap((threadId) =>
        (["alice", "bob"] as const).map((user) =>
          client(user)
            .createThreadOperation(`${threadId}-${user}`, {
              threadId,
              ownerWorkerId: "w2",
              multitaskStrategy: "enqueue",
            })
            .then(
              () => "admitted",
              (error: unknown) => Code[ConnectError.from(error).code],
            ),
        ),
      ),
    );
    for (const [i, threadId] of threads.entries()) {
      expect(outcomes.slice(2 * i, 2 * i + 2).sort()).toEqual(["PermissionDenied", "admitted"]);
      const owners = new Set((await store.listByThread(threadId)).map((run) => run.userId));
      expect(owners.size).toBe(1);
    }
  });

  it("REPORT: what the owner condition costs a write", async () => {
    const timed = async (caller: Caller) => {
      const runId = fresh("cost");
      await seedRunning(store, runId, `${runId}-t`, "alice");
      const remote = client(caller);
      await remote.updateModelName(runId, "warm");
      const t0 = performance.now();
      for (let i = 0; i < 50; i++) await remote.updateModelName(runId, `m${i}`);
      const ms = (performance.now() - t0) / 50;
      expect((await store.get(runId))?.modelName).toBe("m49");
      return ms.toFixed(2);
    };
    const admin = await timed("admin");
    const alice = await timed("alice");
    console.log(
      `REPORT scoped-race: UpdateModelName over gRPC on MySQL, 50 in a row: admin token ${admin} ms each, alice's token (owner locked in the write's own transaction) ${alice} ms each`,
    );
  });
});
