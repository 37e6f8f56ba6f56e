import { createHash, timingSafeEqual } from "node:crypto";
import { type JwtVerifier, verifyJwt } from "./jwt.js";

/** What a caller may do: read = side-effect-free RPCs only, write = every RPC, admin = write for every user. */
export type Role = "read" | "write" | "admin";

/**
 * Who a call is made for, as the token or JWT says. `users` null means
 * unbound (every user's runs, role admin); otherwise the call only ever sees
 * or changes runs owned by one of these users.
 */
export interface Principal {
  readonly role: Role;
  readonly users: ReadonlySet<string> | null;
}

/** The principal of an unscoped token (a bare line, AUTH_TOKENS): admin of everything. */
export const ADMIN: Principal = Object.freeze({ role: "admin", users: null });

/** A static bearer token and the principal it stands for. */
export interface TokenGrant {
  readonly token: string;
  readonly principal: Principal;
}

/** Why a call was refused, for the log line; never the token itself. */
export type AuthFailure = "missing" | "malformed" | "wrong" | "jwt";

/** A principal, or why there is none (`message` is safe to send to the caller). */
export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly reason: AuthFailure; readonly message: string };

/**
 * Everything needed to turn an `authorization` header into a principal:
 * static tokens (held as SHA-256 digests) and an optional JWT verifier.
 */
export interface Credentials {
  readonly grants: readonly { readonly digest: Buffer; readonly principal: Principal }[];
  readonly jwt: JwtVerifier | null;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Prepares grants (and a JWT verifier) for resolvePrincipal; done once, not per call. */
export function credentials(
  grants: readonly (string | TokenGrant)[],
  jwt: JwtVerifier | null = null,
): Credentials {
  return {
    grants: grants.map((g) =>
      typeof g === "string"
        ? { digest: digest(g), principal: ADMIN }
        : { digest: digest(g.token), principal: g.principal },
    ),
    jwt,
  };
}

/**
 * The principal an `authorization` header stands for: `Bearer <token>`
 * matching a static token, else (when a verifier is configured and the token
 * has the three parts of a JWS) a valid JWT. Static tokens are compared as
 * SHA-256 digests with timingSafeEqual against every grant without stopping
 * early, so neither a token's length nor which one matched shows in the
 * timing. No side effects: the interceptor and the pre-body header check both
 * call it. Synchronous unless a JWT has to be verified (jose verifies
 * asynchronously): then the answer is a promise.
 */
export function resolvePrincipal(
  creds: Credentials,
  authorization: string | null | undefined,
): AuthResult | Promise<AuthResult> {
  if (authorization === null || authorization === undefined || authorization === "") {
    return { ok: false, reason: "missing", message: "missing bearer token" };
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  const token = match?.[1];
  if (token === undefined) {
    return { ok: false, reason: "malformed", message: "invalid bearer token" };
  }
  const presented = digest(token);
  let found: Principal | null = null;
  for (const grant of creds.grants) {
    if (timingSafeEqual(presented, grant.digest)) found ??= grant.principal;
  }
  if (found !== null) return { ok: true, principal: found };
  if (creds.jwt !== null && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    return verifyJwt(creds.jwt, token);
  }
  return { ok: false, reason: "wrong", message: "invalid bearer token" };
}
