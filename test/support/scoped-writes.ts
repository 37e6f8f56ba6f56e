import { RemoteRunStore, type RunRecord, type RunStore } from "@runstore/client";
import { parseTokenFile } from "../../src/auth/token-grants.js";

// What the scoped-ownership tests share (test/server/scoped-ownership.test.ts,
// test/mysql/scoped-race.test.ts): tokens bound to users, every write a
// user-bound caller addresses by run id, and a run each of them would change.

/** An admin token, alice's, bob's, and one bound to both. */
export const OWNER_TOKENS = parseTokenFile(
  [
    "owners-admin-0123456789abcdef",
    "owners-alice-0123456789abcdef role=write users=alice",
    "owners-bob-0123456789abcdefgh role=write users=bob",
    "owners-both-0123456789abcdefg role=write users=alice,bob",
  ].join("\n"),
  "tokens",
);

export type Caller = "admin" | "alice" | "bob" | "both";
const CALLERS: readonly Caller[] = ["admin", "alice", "bob", "both"];

/** A gRPC client of the server at `url` with `caller`'s token, never retrying. */
export function clientOf(url: string, caller: Caller): RemoteRunStore {
  const grant = OWNER_TOKENS[CALLERS.indexOf(caller)];
  if (grant === undefined) throw new Error(`no token for ${caller}`);
  return new RemoteRunStore({
    baseUrl: url,
    protocol: "grpc",
    token: grant.token,
    retry: { maxAttempts: 1 },
  });
}

/** A run in the past, so an expired lease is expired past any grace. */
const PAST = "2001-01-01T00:00:00Z";

/**
 * A run of `userId` that the writes of WRITES_BY_ID would change if they
 * were allowed (StartRun aside, which wants a pending run): running, owned by
 * worker w1 with an expired lease.
 */
export async function seedRunning(
  store: RunStore,
  runId: string,
  threadId: string,
  userId: string,
): Promise<RunRecord> {
  await store.put(runId, {
    threadId,
    userId,
    status: "running",
    ownerWorkerId: "w1",
    leaseExpiresAt: PAST,
    createdAt: PAST,
  });
  return (await store.get(runId)) as RunRecord;
}

/** Every write a user-bound caller addresses by run id, made on `runId` (of thread `threadId`). */
export const WRITES_BY_ID: [
  string,
  (s: RunStore, runId: string, threadId: string) => Promise<unknown>,
][] = [
  ["Put", (s, r, t) => s.put(r, { threadId: t, status: "running", modelName: "changed" })],
  ["UpdateStatus", (s, r) => s.updateStatus(r, "error")],
  ["UpdateModelName", (s, r) => s.updateModelName(r, "changed")],
  [
    "UpdateRunCompletion",
    (s, r) => s.updateRunCompletion(r, { status: "success", totalTokens: 9 }),
  ],
  ["UpdateRunProgress", (s, r) => s.updateRunProgress(r, { totalTokens: 7 })],
  ["Delete", (s, r) => s.delete(r)],
  ["StartRun", (s, r) => s.startRun(r)],
  ["RenewLease", (s, r) => s.renewLease(r, "w1", { durationMs: 60_000 })],
  ["RequestCancel", (s, r) => s.requestCancel(r, "interrupt")],
  ["FinalizeIfNotCancelled", (s, r) => s.finalizeIfNotCancelled(r, "success")],
  ["ClaimForTakeover", (s, r) => s.claimForTakeover(r, { error: "taken over", graceSeconds: 0 })],
];
