import type { OperationKind, RunRecord, RunStatus } from "@runstore/client";
import type { ChangeRecord } from "../stores/change-feed.js";

// Which changes a WatchRuns stream carries (docs/contract.md, "Live
// changes"): a change whose row matches every filter after it, or matched
// before it (its previous status with the row's other fields) and no longer
// does: then left_filter. A deleted row is matched as it was.

/** A checked WatchRuns filter; the sets are empty when not given (operationKinds: runs only). */
export interface WatchFilter {
  userId: string | null;
  /** A user-bound token's users: only their rows; null for an unbound caller. */
  users: ReadonlySet<string> | null;
  threadId: string | null;
  statuses: ReadonlySet<RunStatus>;
  activeOnly: boolean;
  operationKinds: ReadonlySet<OperationKind>;
}

/** What a stream sends of one change: nothing (null), or the change with its left_filter. */
export type Verdict = { leftFilter: boolean } | null;

/** Whether `run` matches every filter. */
export function matches(run: RunRecord, f: WatchFilter): boolean {
  return (
    (f.userId === null || run.userId === f.userId) &&
    (f.users === null || (run.userId !== null && f.users.has(run.userId))) &&
    (f.threadId === null || run.threadId === f.threadId) &&
    (f.statuses.size === 0 || f.statuses.has(run.status)) &&
    (!f.activeOnly || run.status === "pending" || run.status === "running") &&
    f.operationKinds.has(run.operationKind)
  );
}

/** Whether a stream with filter `f` sends `change`, and how. */
export function verdict(change: ChangeRecord, f: WatchFilter): Verdict {
  if (matches(change.run, f)) return { leftFilter: false };
  if (change.kind !== "updated" || change.previousStatus === null) return null;
  if (change.previousStatus === change.run.status) return null;
  return matches({ ...change.run, status: change.previousStatus }, f) ? { leftFilter: true } : null;
}
