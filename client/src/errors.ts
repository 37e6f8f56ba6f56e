import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Whether a failed call may succeed if the caller tries it again later, so
 * job runners and queues can tell "back off and requeue" from "give up".
 * Every RPC of RunStoreService is idempotent, so repeating one is always safe.
 *
 * - UNAVAILABLE: true. The server or its database cannot serve the call now
 *   (the server maps connection loss, lock timeouts and deadlocks to it), and
 *   connection failures on the client side are reported with it too.
 *   RemoteRunStore already retries it within the call's deadline; seeing it
 *   here means those attempts ran out.
 * - ABORTED: true. By gRPC's status-code guide it is a concurrency conflict
 *   to be retried "at a higher level" (re-read, then write again). This server
 *   never sends it (its deadlocks become UNAVAILABLE), but a proxy or another
 *   implementation of the service may; RemoteRunStore does not retry it itself.
 * - RESOURCE_EXHAUSTED: false. This server sends it for a request over its
 *   size limit, which the same request hits again on every try; nothing tells
 *   a caller when a quota would refill.
 * - Anything else (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,
 *   DEADLINE_EXCEEDED, CANCELED, INTERNAL, …) and anything that is not a
 *   ConnectError: false. These need a different request, a different
 *   credential, more time, or a fix, not another try.
 */
export function isTransientError(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  return error.code === Code.Unavailable || error.code === Code.Aborted;
}
