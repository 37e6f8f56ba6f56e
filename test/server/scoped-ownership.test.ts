import {
  Code,
  type PutFields,
  type RemoteRunStore,
  type RunRecord,
  type RunStore,
  threadConflict,
} from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import type { Owners } from "../../src/stores/owners.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase } from "../support/mysql.js";
import {
  type Caller,
  clientOf,
  OWNER_TOKENS,
  seedRunning,
  WRITES_BY_ID,
} from "../support/scoped-writes.js";

// The two ownership rules of docs/security.md ("Scoped tokens"), over a real
// server with user-bound tokens: a write is judged on the run's owner at the
// write itself, never on an owner read before it; and a user-bound token
// starts or moves no run onto a thread holding a row none of its users owns.

const clients: RemoteRunStore[] = [];
let seq = 0;
const fresh = (label: string) => `${label}-${++seq}`;

function client(server: RunningServer, caller: Caller): RemoteRunStore {
  const store = clientOf(server.url, caller);
  clients.push(store);
  return store;
}

afterAll(() => {
  for (const store of clients) store.close();
});

/** The fields that put `row` back as it is, owned by `userId`. */
function reowned(row: RunRecord, userId: string): PutFields {
  const { threadId, assistantId, modelName, status, multitaskStrategy, metadata, kwargs } = row;
  const { error, operationKind, stopReason, ownerWorkerId, leaseExpiresAt } = row;
  const { idempotencyKey, followUpToRunId } = row;
  return {
    ...{ threadId, assistantId, userId, modelName, status, multitaskStrategy, metadata, kwargs },
    ...{ error, operationKind, stopReason, ownerWorkerId, leaseExpiresAt, idempotencyKey },
    followUpToRunId,
  };
}

/** What the flipping store does on the next call it gets, and what it saw. */
class Flips {
  /** The run to hand to `to` on the next call; null: leave every call alone. */
  plan: { runId: string; to: string } | null = null;
  /** The store methods called, in order. */
  calls: string[] = [];
  /** The run as the flip left it. */
  after: RunRecord | null = null;
}

/**
 * `base` behind a proxy (as is each view withOwners() gives) that, on the
 * first call after a plan is set, hands the run to another user as an admin
 * would: after a get has answered, or before any other method runs. A write
 * that read the owner first and wrote after would change another user's
 * run; one that checks the owner in its own step is refused.
 */
function flipping(base: MemoryRunStore, flips: Flips): RunStore {
  const flip = async ({ runId, to }: { runId: string; to: string }) => {
    await base.put(runId, reowned((await base.get(runId)) as RunRecord, to));
    flips.after = await base.get(runId);
  };
  const wrap = (target: object): RunStore =>
    new Proxy(target, {
      get(t, name) {
        const value: unknown = Reflect.get(t, name);
        if (typeof value !== "function") return value;
        if (name === "withOwners") return (owners: Owners) => wrap(value.call(t, owners));
        return async (...args: unknown[]) => {
          flips.calls.push(String(name));
          const plan = flips.plan;
          flips.plan = null;
          if (plan === null) return value.apply(t, args);
          if (name !== "get") await flip(plan);
          const answer = await value.apply(t, args);
          if (name === "get") await flip(plan);
          return answer;
        };
      },
    }) as RunStore;
  return wrap(base);
}

/** The store method behind an RPC name: UpdateStatus → updateStatus. */
const methodOf = (rpc: string) => rpc.charAt(0).toLowerCase() + rpc.slice(1);

describe("a user-bound write is judged on the owner at the write, not on one read before it (memory)", () => {
  const base = new MemoryRunStore();
  const flips = new Flips();
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ store: flipping(base, flips), tokens: OWNER_TOKENS });
  });
  afterAll(async () => {
    await server.close(0);
  });

  it("alice's write to her own run goes to the store alone: no read before it", async () => {
    const runId = fresh("own");
    await seedRunning(base, runId, `${runId}-t`, "alice");
    flips.calls = [];
    expect(await client(server, "alice").updateStatus(runId, "error")).toBe(true);
    expect(flips.calls).toEqual(["updateStatus"]);
    expect((await base.get(runId))?.status).toBe("error");
  });

  for (const [rpc, write] of WRITES_BY_ID) {
    it(`${rpc}: alice's run handed to bob as the call reaches the store is PERMISSION_DENIED, unchanged`, async () => {
      const runId = fresh("flip");
      const threadId = `${runId}-t`;
      await seedRunning(base, runId, threadId, "alice");
      flips.calls = [];
      flips.plan = { runId, to: "bob" };
      const error = await failureOf(write(client(server, "alice"), runId, threadId));
      expect([Code[error.code], error.rawMessage]).toEqual([
        "PermissionDenied",
        "run_id belongs to a user this token is not bound to",
      ]);
      expect(flips.calls).toEqual([methodOf(rpc)]);
      expect(flips.after?.userId).toBe("bob");
      expect(await base.get(runId)).toEqual(flips.after);
    });
  }
});

/** The thread rule over one backend: `open` gives the store a real server serves. */
function threadRules(open: () => RunStore): void {
  let backend: RunStore;
  let server: RunningServer;
  beforeAll(async () => {
    backend = open();
    server = await startServer({ store: backend, tokens: OWNER_TOKENS });
  });
  afterAll(async () => {
    await server.close(0);
  });

  /** A thread holding one finished run of `userId` (null: of no user), its id. */
  async function threadOf(userId: string | null): Promise<string> {
    const threadId = fresh("t");
    await backend.put(`${threadId}-done`, { threadId, userId, status: "success" });
    return threadId;
  }

  const notYours = (threadId: string) => [
    "PermissionDenied",
    `thread_id ${threadId} has runs of a user this token is not bound to`,
  ];

  async function runIdsOf(threadId: string): Promise<string[]> {
    return (await backend.listByThread(threadId)).map((run) => run.runId).sort();
  }

  it("bob's token starts no run on a thread where alice's run has ended, and changes nothing", async () => {
    const threadId = await threadOf("alice");
    const bob = client(server, "bob");
    for (const strategy of ["reject", "enqueue"] as const) {
      const runId = fresh("bobs");
      const error = await failureOf(
        bob.createThreadOperation(runId, {
          threadId,
          ownerWorkerId: "w2",
          multitaskStrategy: strategy,
        }),
      );
      expect([Code[error.code], error.rawMessage]).toEqual(notYours(threadId));
      expect(await backend.get(runId)).toBeNull();
    }
    expect(await runIdsOf(threadId)).toEqual([`${threadId}-done`]);
  });

  it("bob's token puts no new run there, nor moves a run of his own there", async () => {
    const threadId = await threadOf("alice");
    const bob = client(server, "bob");
    const created = fresh("bobs");
    const error = await failureOf(bob.put(created, { threadId }));
    expect([Code[error.code], error.rawMessage]).toEqual(notYours(threadId));
    expect(await backend.get(created)).toBeNull();

    const moved = fresh("bobs");
    await bob.put(moved, { threadId: `${moved}-own` });
    const before = await backend.get(moved);
    const refused = await failureOf(bob.put(moved, { threadId, modelName: "m" }));
    expect([Code[refused.code], refused.rawMessage]).toEqual(notYours(threadId));
    expect(await backend.get(moved)).toEqual(before);
    expect(await runIdsOf(threadId)).toEqual([`${threadId}-done`]);
  });

  it("alice's token goes on with her thread; a token bound to alice and bob joins a thread of both", async () => {
    const threadId = await threadOf("alice");
    const alice = client(server, "alice");
    const admitted = await alice.createThreadOperation(fresh("alices"), {
      threadId,
      ownerWorkerId: "w2",
    });
    expect([admitted.run.threadId, admitted.run.userId]).toEqual([threadId, "alice"]);
    await alice.put(fresh("alices"), { threadId });
    expect(await runIdsOf(threadId)).toHaveLength(3);

    const shared = await threadOf("alice");
    await backend.put(`${shared}-bobs`, { threadId: shared, userId: "bob", status: "success" });
    const both = client(server, "both");
    const joined = await both.createThreadOperation(fresh("both"), {
      threadId: shared,
      ownerWorkerId: "w2",
      userId: "bob",
    });
    expect(joined.run.userId).toBe("bob");
  });

  it("a thread with a run of no user takes no user-bound run; the admin token is unchanged", async () => {
    const nobodys = await threadOf(null);
    const error = await failureOf(
      client(server, "alice").createThreadOperation(fresh("alices"), {
        threadId: nobodys,
        ownerWorkerId: "w2",
      }),
    );
    expect([Code[error.code], error.rawMessage]).toEqual(notYours(nobodys));

    const alices = await threadOf("alice");
    const admitted = await client(server, "admin").createThreadOperation(fresh("admins"), {
      threadId: alices,
      ownerWorkerId: "w2",
      userId: "bob",
    });
    expect(admitted.run.userId).toBe("bob");
  });

  it("a new thread belongs to its first user: after bob's run, alice's admission is refused", async () => {
    const threadId = fresh("t");
    await client(server, "bob").createThreadOperation(fresh("bobs"), {
      threadId,
      ownerWorkerId: "w2",
      multitaskStrategy: "enqueue",
    });
    const error = await failureOf(
      client(server, "alice").createThreadOperation(fresh("alices"), {
        threadId,
        ownerWorkerId: "w2",
        multitaskStrategy: "enqueue",
      }),
    );
    expect([Code[error.code], error.rawMessage]).toEqual(notYours(threadId));
  });

  it("a thread busy with bob's run is still the hidden conflict for alice: the strategy answers first", async () => {
    const threadId = fresh("t");
    await backend.put(fresh("bobs"), {
      threadId,
      userId: "bob",
      status: "running",
      ownerWorkerId: "w1",
      leaseExpiresAt: "2999-01-01T00:00:00Z",
    });
    const error = await failureOf(
      client(server, "alice").createThreadOperation(fresh("alices"), {
        threadId,
        ownerWorkerId: "w2",
      }),
    );
    expect([Code[error.code], error.rawMessage]).toEqual([
      "Aborted",
      `thread_id ${threadId} is busy with another user's run`,
    ]);
    expect(threadConflict(error)).toEqual({ threadId, conflictingRunId: "" });
  });
}

describe("thread ownership for user-bound tokens on the memory store", () => {
  threadRules(() => new MemoryRunStore());
});

const db = await createTestDatabase("scoped_ownership");
afterAll(async () => {
  await db?.drop();
});

describe.skipIf(db === null)("thread ownership for user-bound tokens on MySQL", () => {
  threadRules(() => (db as NonNullable<typeof db>).openStore());
});
