import type { OperationKind, OwnerOptions, RunRecord, RunStatus } from "./run-store.js";

// Live changes (docs/contract.md, "Live changes"): the filter of a watch and
// the events RemoteRunStore.watchRuns yields. Only a remote store has them:
// a watch follows a server's change log.

/**
 * Which changes a watch carries; every given filter must hold (SearchRuns'
 * filters plus activeOnly). A change is sent when the row matches after it,
 * or matched before it and no longer does (then `leftFilter` is true).
 */
export interface WatchRunsFilter extends OwnerOptions {
  threadId?: string | null;
  /** Any of these; empty or omitted: every status. */
  statuses?: readonly RunStatus[] | null;
  /** Only pending and running runs (and the change that makes one leave). */
  activeOnly?: boolean | null;
  /** Any of these; empty or omitted: runs only. */
  operationKinds?: readonly OperationKind[] | null;
  /**
   * Start after this cursor (an earlier event's); null or "": from now. A
   * cursor the server's change log no longer holds, or one of another log
   * (a memory store of an earlier server process), fails with OUT_OF_RANGE:
   * list again and watch from now.
   */
  cursor?: string | null;
}

/** What a change did to its row. */
export type RunChangeKind = "created" | "updated" | "deleted";

/** The change kinds, in proto order. */
export const RUN_CHANGE_KINDS: readonly RunChangeKind[] = ["created", "updated", "deleted"];

/** One committed change of one run. */
export interface RunChangeEvent {
  kind: RunChangeKind;
  /** The row after the change; for "deleted", the row as it was. */
  run: RunRecord;
  /** The change's place in the store's change order: increasing, never reused. */
  sequence: bigint;
  /** When the change was recorded, fixed-width UTC like the record's timestamps. */
  changedAt: string;
  /** The run matched the filter before this change and no longer does. */
  leftFilter: boolean;
  /**
   * The sequence is not above the highest this iterator already yielded: a
   * change it delivered before. A correct server never sends one on the
   * iterator's own resumes; a consumer that starts a new watch from an older
   * cursor it stored sees changes it applied before unmarked, and tells them
   * by comparing `sequence` with the highest it applied.
   */
  repeated: boolean;
}

/**
 * One message of a watch: a change, or a heartbeat (the first message of
 * every stream, then one while nothing matches). Each carries the cursor to
 * resume after it (`filter.cursor` of a later watch).
 */
export type RunWatchEvent =
  | { type: "change"; change: RunChangeEvent; cursor: string }
  | { type: "heartbeat"; cursor: string };
