import {
  Code,
  ConnectError,
  isTransientError,
  RemoteRunStore,
  type RunRecord,
  type RunStore,
  threadConflict,
} from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenGrant } from "../../src/auth/principal.js";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { createTestDatabase } from "../support/mysql.js";

// The scoped-token matrix (docs/security.md, "Scoped tokens"): every RPC ×
// read / write / admin × the caller's own user / another user, over a real
// HTTP/2 server, gRPC and Connect, over the memory store and MySQL (a
// database of this file's own). Exact codes; a refused write changes no row.

const TOKENS = parseTokenFile(
  [
    "# role and users per token",
    "admin-token-0123456789abcdef",
    "write-token-alice-0123456789 role=write users=alice",
    "read-token-alice-01234567890 role=read users=alice",
    "write-token-alice-bob-012345 role=write users=alice,bob",
  ].join("\n"),
  "tokens",
);
const TOKEN_OF = { admin: TOKENS[0], write: TOKENS[1], read: TOKENS[2] } as Record<
  "admin" | "write" | "read",
  TokenGrant
>;
type Role = keyof typeof TOKEN_OF;
type Target = "own" | "other";

/** A backend and a real server over it, set up by served(). */
interface Served {
  server: RunningServer;
  backend: RunStore;
}

const clients: RemoteRunStore[] = [];
let seq = 0;

/** A server over the store open() gives, started before and closed after the tests of the describe it is called in. */
function served(open: () => RunStore): Served {
  const setup = {} as Served;
  beforeAll(async () => {
    setup.backend = open();
    setup.server = await startServer({ store: setup.backend, tokens: TOKENS });
  });
  afterAll(async () => {
    for (const client of clients.splice(0)) client.close();
    await setup.server.close(0);
  });
  return setup;
}

const memory = served(() => new MemoryRunStore());
const db = await createTestDatabase("scoped_tokens");
afterAll(async () => {
  await db?.drop();
});

function client(on: Served, protocol: "grpc" | "connect", token: string): RemoteRunStore {
  const store = new RemoteRunStore({
    baseUrl: on.server.url,
    protocol,
    token,
    retry: { maxAttempts: 1 },
  });
  clients.push(store);
  return store;
}

/** Fresh rows for one case: alice's and bob's run, each on its own thread, running with an expired lease. */
async function seed({
  backend,
}: Served): Promise<{ a: string; b: string; ta: string; tb: string }> {
  const p = `c${++seq}`;
  const ids = { a: `${p}-a`, b: `${p}-b`, ta: `${p}-ta`, tb: `${p}-tb` };
  const past = "2001-01-01T00:00:00Z";
  for (const [run, thread, user] of [
    [ids.a, ids.ta, "alice"],
    [ids.b, ids.tb, "bob"],
  ] as const) {
    await backend.put(run, {
      threadId: thread,
      userId: user,
      status: "running",
      ownerWorkerId: "w1",
      leaseExpiresAt: past,
      createdAt: past,
      metadata: { regenerate_from_run_id: `src-${run}`, replay_kind: "edit" },
    });
    await backend.updateRunCompletion(run, { status: "success", totalTokens: 5 });
    await backend.updateStatus(run, "running");
    await backend.put(`${run}-pending`, { threadId: `${thread}-p`, userId: user, createdAt: past });
  }
  return ids;
}

interface Rpc {
  name: string;
  /** NO_SIDE_EFFECTS: allowed to role read. */
  read: boolean;
  /** Never allowed to a user-bound token (filtering cannot be done correctly). */
  unboundOnly?: boolean;
  /** Takes no user and addresses no run: "other" means another user's rows exist and are hidden. */
  listsAll?: boolean;
  call(
    s: RunStore,
    ids: { a: string; b: string; ta: string; tb: string },
    t: Target,
  ): Promise<unknown>;
}

const run = (ids: { a: string; b: string }, t: Target) => (t === "own" ? ids.a : ids.b);
const thread = (ids: { ta: string; tb: string }, t: Target) => (t === "own" ? ids.ta : ids.tb);
const user = (t: Target) => (t === "own" ? "alice" : "bob");
const LEASE = { durationMs: 60_000 };

const RPCS: Rpc[] = [
  {
    name: "Put",
    read: false,
    call: (s, i, t) => s.put(run(i, t), { threadId: thread(i, t), userId: user(t) }),
  },
  { name: "Get", read: true, call: (s, i, t) => s.get(run(i, t), { userId: user(t) }) },
  {
    name: "ListByThread",
    read: true,
    call: (s, i, t) => s.listByThread(thread(i, t), { userId: user(t) }),
  },
  { name: "UpdateStatus", read: false, call: (s, i, t) => s.updateStatus(run(i, t), "error") },
  { name: "Delete", read: false, call: (s, i, t) => s.delete(run(i, t)) },
  { name: "UpdateModelName", read: false, call: (s, i, t) => s.updateModelName(run(i, t), "m2") },
  {
    name: "UpdateRunCompletion",
    read: false,
    call: (s, i, t) => s.updateRunCompletion(run(i, t), { status: "success", totalTokens: 9 }),
  },
  {
    name: "UpdateRunProgress",
    read: false,
    call: (s, i, t) => s.updateRunProgress(run(i, t), { totalTokens: 7 }),
  },
  { name: "ListPending", read: true, listsAll: true, call: (s) => s.listPending() },
  { name: "ListInflight", read: true, listsAll: true, call: (s) => s.listInflight() },
  {
    name: "AggregateTokensByThread",
    read: true,
    unboundOnly: true,
    call: (s, i, t) => s.aggregateTokensByThread(thread(i, t)),
  },
  {
    name: "CreateThreadOperation",
    read: false,
    call: (s, i, t) =>
      s.createThreadOperation(`${run(i, t)}-new`, {
        threadId: `${thread(i, t)}-new`,
        ownerWorkerId: "w2",
        userId: user(t),
      }),
  },
  { name: "StartRun", read: false, call: (s, i, t) => s.startRun(run(i, t)) },
  { name: "RenewLease", read: false, call: (s, i, t) => s.renewLease(run(i, t), "w1", LEASE) },
  {
    name: "RequestCancel",
    read: false,
    call: (s, i, t) => s.requestCancel(run(i, t), "interrupt"),
  },
  {
    name: "FinalizeIfNotCancelled",
    read: false,
    call: (s, i, t) => s.finalizeIfNotCancelled(run(i, t), "success"),
  },
  {
    name: "ClaimForTakeover",
    read: false,
    call: (s, i, t) => s.claimForTakeover(run(i, t), { error: "taken over", graceSeconds: 0 }),
  },
  {
    name: "ListInflightWithExpiredLease",
    read: true,
    listsAll: true,
    call: (s) => s.listInflightWithExpiredLease({ graceSeconds: 0 }),
  },
  {
    name: "ClaimNextRun",
    read: false,
    unboundOnly: true,
    call: (s) => s.claimNextRun("w3", LEASE),
  },
  {
    name: "GetManyByThread",
    read: true,
    call: (s, i, t) => s.getManyByThread(thread(i, t), [run(i, t)], { userId: user(t) }),
  },
  {
    name: "ListSuccessfulRegenerateSources",
    read: true,
    call: (s, i, t) => s.listSuccessfulRegenerateSources(thread(i, t), { userId: user(t) }),
  },
  {
    name: "ListEditRegenerateRuns",
    read: true,
    call: (s, i, t) => s.listEditRegenerateRuns(thread(i, t), { userId: user(t) }),
  },
];

/** The code a call must end with. */
function expected(rpc: Rpc, role: Role, target: Target): Code | "ok" {
  if (role === "admin") return "ok";
  if (role === "read" && !rpc.read) return Code.PermissionDenied;
  if (rpc.unboundOnly) return Code.PermissionDenied;
  if (rpc.listsAll) return "ok";
  return target === "own" ? "ok" : Code.PermissionDenied;
}

async function outcome(call: Promise<unknown>): Promise<{ code: Code | "ok"; value?: unknown }> {
  try {
    return { code: "ok", value: await call };
  } catch (error) {
    return { code: ConnectError.from(error).code };
  }
}

/** Every row the case touched, as stored. */
async function rows(
  { backend }: Served,
  ids: { a: string; b: string },
): Promise<(RunRecord | null)[]> {
  return Promise.all([ids.a, ids.b, `${ids.a}-new`, `${ids.b}-new`].map((id) => backend.get(id)));
}

/** The matrix over one backend and protocol. */
function matrix(on: Served, protocol: "grpc" | "connect"): void {
  describe(`scoped tokens over ${protocol}`, () => {
    for (const rpc of RPCS) {
      for (const role of ["read", "write", "admin"] as const) {
        for (const target of ["own", "other"] as const) {
          const want = expected(rpc, role, target);
          it(`${rpc.name} × ${role} × ${target}: ${want === "ok" ? "OK" : Code[want]}`, async () => {
            const ids = await seed(on);
            const before = await rows(on, ids);
            const got = await outcome(
              rpc.call(client(on, protocol, TOKEN_OF[role].token), ids, target),
            );
            expect(Code[got.code as Code] ?? got.code).toBe(Code[want as Code] ?? want);
            if (got.code !== "ok") {
              // Refused: nothing changed, the other user's row least of all.
              expect(await rows(on, ids)).toEqual(before);
            } else if (rpc.listsAll) {
              // This case's rows in the answer: alice's always, bob's only for admin.
              const prefix = ids.a.slice(0, -1);
              const listed = (got.value as RunRecord[]).filter((r) => r.runId.startsWith(prefix));
              const owners = new Set(listed.map((r) => r.userId));
              expect(owners).toEqual(new Set(role === "admin" ? ["alice", "bob"] : ["alice"]));
              if (role !== "admin") {
                expect((got.value as RunRecord[]).every((r) => r.userId === "alice")).toBe(true);
              }
            } else if (role !== "admin" && rpc.read) {
              expect(JSON.stringify(got.value)).not.toContain('"bob"');
            }
          });
        }
      }
    }
  });
}

describe("on the memory store", () => {
  matrix(memory, "grpc");
  matrix(memory, "connect");
});

describe.skipIf(db === null)("on MySQL", () => {
  const mysql = served(() => (db as NonNullable<typeof db>).openStore());
  matrix(mysql, "grpc");
  matrix(mysql, "connect");
});

describe("scoped tokens: omitted users and several users", () => {
  it("a token bound to one user behaves as if its user_id were given", async () => {
    const ids = await seed(memory);
    const alice = client(memory, "grpc", TOKEN_OF.write.token);
    expect((await alice.get(ids.a))?.runId).toBe(ids.a);
    expect(await alice.get(ids.b)).toBeNull();
    await alice.put(`${ids.a}-x`, { threadId: ids.ta });
    expect((await memory.backend.get(`${ids.a}-x`))?.userId).toBe("alice");
  });

  it("a token bound to alice and bob lists both, merged newest first, and never a third user's run", async () => {
    const ids = await seed(memory);
    const shared = `${ids.a}-shared`;
    await memory.backend.put(`${shared}-1`, {
      threadId: shared,
      userId: "alice",
      createdAt: "2020-01-01T00:00:01Z",
    });
    await memory.backend.put(`${shared}-2`, {
      threadId: shared,
      userId: "bob",
      createdAt: "2020-01-01T00:00:02Z",
    });
    await memory.backend.put(`${shared}-3`, {
      threadId: shared,
      userId: "carol",
      createdAt: "2020-01-01T00:00:03Z",
    });
    await memory.backend.put(`${shared}-4`, {
      threadId: shared,
      userId: "alice",
      createdAt: "2020-01-01T00:00:04Z",
    });
    const both = client(memory, "connect", TOKENS[3]?.token ?? "");
    expect((await both.listByThread(shared, { limit: 2 })).map((r) => r.runId)).toEqual([
      `${shared}-4`,
      `${shared}-2`,
    ]);
    expect((await both.listByThread(shared)).map((r) => r.runId)).toEqual([
      `${shared}-4`,
      `${shared}-2`,
      `${shared}-1`,
    ]);
    const refused = await outcome(both.put(`${shared}-5`, { threadId: shared }));
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(await memory.backend.get(`${shared}-5`)).toBeNull();
  });

  it("an admission that would interrupt the thread's runs needs an unbound token", async () => {
    const ids = await seed(memory);
    const alice = client(memory, "grpc", TOKEN_OF.write.token);
    const refused = await outcome(
      alice.createThreadOperation(`${ids.a}-i`, {
        threadId: ids.ta,
        ownerWorkerId: "w9",
        multitaskStrategy: "interrupt",
      }),
    );
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(await memory.backend.get(`${ids.a}-i`)).toBeNull();
  });
});

/** The error a call fails with (the test fails if it succeeds). */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the call succeeded");
}

function threadConflictCases(on: Served, protocol: "grpc" | "connect"): void {
  /** A thread with one active run of `user` (live lease), its ids. */
  async function busy(user: string): Promise<{ thread: string; holder: string }> {
    const p = `tc${++seq}`;
    const ids = { thread: `${p}-t`, holder: `${p}-${user}-secret-run` };
    await on.backend.put(ids.holder, {
      threadId: ids.thread,
      userId: user,
      status: "running",
      ownerWorkerId: "w1",
      leaseExpiresAt: "2999-01-01T00:00:00Z",
    });
    return ids;
  }

  it(`${protocol}: a thread busy with another user's run names neither the run nor its owner`, async () => {
    const { thread, holder } = await busy("bob");
    const alice = client(on, protocol, TOKEN_OF.write.token);
    const error = await failure(
      alice.createThreadOperation(`${holder}-new`, { threadId: thread, ownerWorkerId: "w2" }),
    );
    expect(error.code).toBe(Code.Aborted);
    expect(error.rawMessage).toBe(`thread_id ${thread} is busy with another user's run`);
    expect(threadConflict(error)).toEqual({ threadId: thread, conflictingRunId: "" });
    expect(isTransientError(error)).toBe(false);
    expect(await on.backend.get(`${holder}-new`)).toBeNull();
  });

  it(`${protocol}: a thread busy with a run the token may see names it`, async () => {
    const own = await busy("alice");
    const alice = client(on, protocol, TOKEN_OF.write.token);
    const error = await failure(
      alice.createThreadOperation(`${own.holder}-new`, {
        threadId: own.thread,
        ownerWorkerId: "w2",
      }),
    );
    expect(error.code).toBe(Code.Aborted);
    expect(error.rawMessage).toBe(`thread_id ${own.thread} is busy: run ${own.holder} is active`);
    expect(threadConflict(error)).toEqual({ threadId: own.thread, conflictingRunId: own.holder });

    const bobs = await busy("bob");
    const both = client(on, protocol, TOKENS[3]?.token ?? "");
    const shared = await failure(
      both.createThreadOperation(`${bobs.holder}-new`, {
        threadId: bobs.thread,
        ownerWorkerId: "w2",
        userId: "alice",
      }),
    );
    expect(threadConflict(shared)).toEqual({
      threadId: bobs.thread,
      conflictingRunId: bobs.holder,
    });
  });
}

describe("scoped tokens: thread conflicts across users", () => {
  threadConflictCases(memory, "grpc");
  threadConflictCases(memory, "connect");
  describe.skipIf(db === null)("on MySQL", () => {
    const mysql = served(() => (db as NonNullable<typeof db>).openStore());
    threadConflictCases(mysql, "grpc");
    threadConflictCases(mysql, "connect");
  });
});
