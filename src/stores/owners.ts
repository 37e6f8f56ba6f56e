import { Code, ConnectError, type RunStore } from "@runstore/client";

// The owner condition a store view applies inside its writes, for a caller
// bound to users (docs/security.md, "Scoped tokens"). The public RunStore
// interface has no place for it: the service asks the store for a view with
// withOwners(), as it asks for one with a response budget.

/** The users a store view acts for: a user-bound token's. */
export type Owners = ReadonlySet<string>;

/** Whether one of `owners` owns a row of `userId`; a row without an owner is nobody's. */
export function ownedBy(owners: Owners, userId: string | null): boolean {
  return userId !== null && owners.has(userId);
}

/** PERMISSION_DENIED for a write to a run none of the view's users owns. */
export function runNotYours(): ConnectError {
  return new ConnectError(
    "run_id belongs to a user this token is not bound to",
    Code.PermissionDenied,
  );
}

/**
 * PERMISSION_DENIED for a new run (or a run moved) onto a thread that holds
 * a row none of the view's users owns: names the thread, never the row.
 */
export function threadNotYours(threadId: string): ConnectError {
  return new ConnectError(
    `thread_id ${threadId} has runs of a user this token is not bound to`,
    Code.PermissionDenied,
  );
}

/**
 * A store whose writes can carry the owner condition (MemoryRunStore,
 * MysqlRunStore). On the view withOwners() answers, in the same atomic step
 * as each write: a write addressed by run id applies only to a row one of
 * `owners` owns (another's, or nobody's, is PERMISSION_DENIED and changes
 * nothing; a missing row gets the call's usual answer), and a put or an
 * admission that creates a run on a thread, or moves one there, is
 * PERMISSION_DENIED naming thread_id while the thread holds a row none of
 * them owns.
 */
export interface HonoursOwners {
  withOwners(owners: Owners): RunStore;
}

export function honoursOwners(store: RunStore): store is RunStore & HonoursOwners {
  return typeof (store as Partial<HonoursOwners>).withOwners === "function";
}
