import type { IncomingHttpHeaders } from "node:http2";
import { tokenCaller } from "../caller-share.js";
import { type JwtSettings, jwtVerifier } from "./jwt.js";
import {
  type AuthResult,
  type Credentials,
  credentials,
  type Principal,
  resolvePrincipal,
  type TokenGrant,
} from "./principal.js";

/** What the pre-body check answers (src/authenticate.ts's Authentication). */
export type HeaderDecision =
  | { ok: true }
  | { ok: false; reason: "missing" | "malformed" | "wrong"; message: string };

/** What a passed check proved of a request: who it is for, and whose share it takes. */
export interface Verified {
  readonly principal: Principal;
  /** The caller-share key of its token (src/caller-share.ts's tokenCaller). */
  readonly caller: string;
}

/** The pre-body check, and what it proved of each request it passed. */
export interface HeaderCheck {
  /** The check itself (src/authenticate.ts's Authenticate). */
  readonly authenticate: (headers: IncomingHttpHeaders) => HeaderDecision | Promise<HeaderDecision>;
  /**
   * The principal and caller of headers the check passed; undefined for
   * headers it has not passed. src/call-context.ts hands them to the call,
   * so the bearer-auth interceptor does not resolve (verify) them again.
   */
  readonly verified: (headers: IncomingHttpHeaders) => Verified | undefined;
  /** The credentials it checks with, for the interceptor behind it. */
  readonly credentials: Credentials;
}

/**
 * The pre-body header check over resolvePrincipal: static tokens, scoped or
 * not, are decided at once; a JWT-shaped token is verified by jose
 * (asynchronously) and the answer is a promise, which src/header-auth.ts
 * awaits before any byte of the body is read, so an expired, forged or
 * ill-claimed JWT is refused at the headers like a wrong static token. Each
 * token is resolved (a JWT verified) once per call: the principal is kept
 * with the request's headers object (a WeakMap, gone with the request).
 * Null when there is no authentication.
 */
export function headerCheck(
  tokens: readonly (string | TokenGrant)[],
  jwt: JwtSettings | null,
): HeaderCheck | null {
  if (tokens.length === 0 && jwt === null) return null;
  const creds = credentials(tokens, jwt === null ? null : jwtVerifier(jwt));
  const passed = new WeakMap<IncomingHttpHeaders, Verified>();
  const decide = (headers: IncomingHttpHeaders, result: AuthResult): HeaderDecision => {
    if (result.ok) {
      passed.set(headers, { principal: result.principal, caller: callerOf(headers) });
    }
    return decision(result);
  };
  return {
    authenticate: (headers) => {
      const result = resolvePrincipal(creds, headers.authorization);
      return result instanceof Promise
        ? result.then((r) => decide(headers, r))
        : decide(headers, result);
    },
    verified: (headers) => passed.get(headers),
    credentials: creds,
  };
}

/** The caller of headers whose bearer token was accepted: that token's digest. */
function callerOf(headers: IncomingHttpHeaders): string {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? "")?.[1] ?? "";
  return tokenCaller(token);
}

/** An AuthResult as the header check's answer; a refused JWT is logged as "wrong". */
function decision(result: AuthResult): HeaderDecision {
  if (result.ok) return { ok: true };
  return {
    ok: false,
    reason: result.reason === "jwt" ? "wrong" : result.reason,
    message: result.message,
  };
}
