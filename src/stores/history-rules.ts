import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStatus, ThreadStatus } from "@runstore/client";

// Rules of ListThreads and DeleteThread (docs/contract.md, "History") that
// every backend applies the same way once it has read the rows.

/**
 * A thread's status as LangGraph derives it: busy while any of its rows
 * (any kind, any user) is pending or running; otherwise from how its latest
 * visible run ended.
 */
export function threadStatus(busy: boolean, latestRunStatus: RunStatus): ThreadStatus {
  if (busy) return "busy";
  if (latestRunStatus === "interrupted") return "interrupted";
  if (latestRunStatus === "error" || latestRunStatus === "timeout") return "error";
  return "idle";
}

/** DeleteThread without force on a thread with a pending or running row. */
export function threadActiveError(threadId: string): ConnectError {
  return new ConnectError(
    `thread_id ${threadId} has an active operation (pending or running); ` +
      "wait for it to end, or delete with force",
    Code.FailedPrecondition,
  );
}

/** A sum of counters, or OUT_OF_RANGE when it is past 2^53-1, the largest exact value. */
export function checkedSum(sum: number, what: string): number {
  if (sum > Number.MAX_SAFE_INTEGER) {
    throw new ConnectError(
      `${what} exceeds ${Number.MAX_SAFE_INTEGER}, the largest exact value`,
      Code.OutOfRange,
    );
  }
  return sum;
}
