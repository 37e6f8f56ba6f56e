import type { IncomingHttpHeaders } from "node:http2";

/** Why a call was refused, for the log line; never the token itself. */
export type AuthFailure = "missing" | "malformed" | "wrong";

/** What the headers prove: a caller that may go on, or the reason it may not. */
export type Authentication = { ok: true } | { ok: false; reason: AuthFailure; message: string };

/**
 * Decides a call on its request headers alone, before any byte of its body
 * is read, so an unauthenticated caller can never make the server hold
 * memory for it. src/auth/header-check.ts implements it over the token
 * and JWT settings (resolvePrincipal); src/header-auth.ts answers its
 * refusals. A check that needs I/O may answer with a promise; the body
 * stays unread meanwhile.
 */
export type Authenticate = (
  headers: IncomingHttpHeaders,
) => Authentication | Promise<Authentication>;
