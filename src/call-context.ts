import type * as http from "node:http";
import type * as http2 from "node:http2";
import { type ContextValues, createContextValues } from "@connectrpc/connect";
import type { Verified } from "./auth/header-check.js";
import { principalKey } from "./auth/principal-key.js";
import { callerKey, peerCaller } from "./caller-share.js";
import { connectionKey } from "./health.js";

/** What the pre-body header check proved of a request's headers (src/auth/header-check.ts). */
export type VerifiedOf = (headers: http2.IncomingHttpHeaders) => Verified | undefined;

/**
 * The context values each call starts with, from its request: its
 * connection (the per-connection Watch cap), its caller (the caller share:
 * the digest of its token, else its remote address) and, when the header
 * check passed it, its principal, so the bearer-auth interceptor uses it
 * instead of resolving (verifying) the token a second time.
 */
export function callContext(
  req: http2.Http2ServerRequest | http.IncomingMessage,
  verifiedOf: VerifiedOf | null,
): ContextValues {
  const values = createContextValues();
  values.set(connectionKey, connectionOf(req));
  const verified = verifiedOf?.(req.headers);
  if (verified === undefined) {
    values.set(callerKey, peerCaller(req.socket?.remoteAddress));
  } else {
    values.set(principalKey, verified.principal);
    values.set(callerKey, verified.caller);
  }
  return values;
}

/** The connection a request came on: its HTTP/2 session, or its HTTP/1.1 socket. */
function connectionOf(req: http2.Http2ServerRequest | http.IncomingMessage): object {
  return "stream" in req ? (req.stream.session ?? req.socket) : req.socket;
}
