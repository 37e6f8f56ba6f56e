import type { RunRecord, RunStatus } from "@runstore/client";

// The change log behind WatchRuns (docs/contract.md, part 4): every committed
// change of a row of the store, in one order that every server replica on
// the same database agrees on. The memory store keeps it in the process
// (memory-change-feed.ts); MySQL writes it in the same transaction as each
// change, by triggers, and numbers it in commit order
// (mysql-change-feed.ts). The server's watch hub (src/watch/) reads it.

/** What a change did to the row. */
export type ChangeKind = "created" | "updated" | "deleted";

/** One committed change of one row. */
export interface ChangeRecord {
  /** Position in the change order: 1, 2, 3, … with no gaps and never reused. */
  sequence: bigint;
  kind: ChangeKind;
  /** The row after the change; for "deleted", the row as it was. */
  run: RunRecord;
  /** The row's status before the change; null for "created". */
  previousStatus: RunStatus | null;
  /** When the change was recorded: fixed-width UTC with microseconds. */
  changedAt: string;
}

/** Thrown by read() for a position the log no longer (or never) held. */
export class ChangeLogGap extends Error {
  constructor(
    message: string,
    /** "pruned": older than the oldest change kept; "ahead": past the newest. */
    readonly reason: "pruned" | "ahead",
  ) {
    super(message);
    this.name = "ChangeLogGap";
  }
}

/** A store's change log, as the watch hub reads it. */
export interface ChangeFeed {
  /**
   * Names this log: a cursor made from another log (another memory store,
   * another database) is refused rather than read at a wrong position.
   */
  identity(): Promise<string>;
  /** The sequence of the newest change (0n when none yet), after numbering any committed but unnumbered ones. */
  head(): Promise<bigint>;
  /**
   * Up to `limit` changes with a sequence greater than `after`, in
   * sequence order (fewer, possibly none, when the log has no more).
   * Throws ChangeLogGap when `after` is older than the oldest change kept
   * minus one, or newer than head.
   */
  read(after: bigint, limit: number): Promise<ChangeRecord[]>;
  /**
   * Resolves once a change after `after` may be readable, or after
   * `timeoutMs`, or when `signal` aborts, whichever is first; never
   * rejects. The memory log resolves on the write itself; MySQL polls
   * (numbering committed changes) every poll interval.
   */
  waitForChange(after: bigint, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

/** True when `store` keeps a change log (the memory and MySQL stores do). */
export function hasChangeFeed(store: object): store is { changeFeed(): ChangeFeed } {
  return typeof (store as { changeFeed?: unknown }).changeFeed === "function";
}
