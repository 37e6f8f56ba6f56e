import { Code, ConnectError } from "@connectrpc/connect";
import { threadConflict } from "./conflicts.js";

/**
 * Whether a failed call may succeed if the caller tries it again later, so
 * job runners and queues can tell "back off and requeue" from "give up".
 * It says nothing about whether repeating the call is safe: startRun,
 * claimNextRun, finalizeIfNotCancelled and claimForTakeover answer a repeat
 * differently when their first attempt applied (read the row instead).
 *
 * - UNAVAILABLE: true. The server or its database cannot serve the call now
 *   (the server maps connection loss, lock timeouts and deadlocks to it), and
 *   connection failures on the client side are reported with it too.
 *   RemoteRunStore already retries it within the call's deadline (except for
 *   those four calls); seeing it here means those attempts ran out.
 * - ABORTED with a ThreadConflict detail (`threadConflict(error)`): false.
 *   The thread is busy: an answer about the thread, not a failure of the
 *   store; whether and when to admit again is the caller's decision.
 * - Any other ABORTED: true. By gRPC's status-code guide it is a concurrency
 *   conflict to be retried "at a higher level" (re-read, then write again).
 *   This server sends ABORTED only for thread conflicts (its deadlocks become
 *   UNAVAILABLE), but a proxy or another implementation of the service may;
 *   RemoteRunStore does not retry it itself.
 * - RESOURCE_EXHAUSTED: false. This server sends it for a request over its
 *   size limit, which the same request hits again on every try; nothing tells
 *   a caller when a quota would refill.
 * - Anything else (INVALID_ARGUMENT, ALREADY_EXISTS, UNAUTHENTICATED,
 *   PERMISSION_DENIED, DEADLINE_EXCEEDED, CANCELED, INTERNAL, …) and anything
 *   that is not a ConnectError: false. These need a different request, a
 *   different credential, more time, or a fix, not another try.
 */
export function isTransientError(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  if (error.code === Code.Aborted) return threadConflict(error) === null;
  return error.code === Code.Unavailable;
}
