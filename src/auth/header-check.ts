import type { IncomingHttpHeaders } from "node:http2";
import { type JwtSettings, jwtVerifier } from "./jwt.js";
import { credentials, resolvePrincipal, type TokenGrant } from "./principal.js";

/** What the pre-body check answers (src/authenticate.ts's Authentication). */
export type HeaderDecision =
  | { ok: true }
  | { ok: false; reason: "missing" | "malformed" | "wrong"; message: string };

/**
 * The pre-body header check (src/authenticate.ts's Authenticate) over
 * resolvePrincipal: static tokens, scoped or not, are decided here. A JWT
 * is verified asynchronously by jose, which this synchronous check cannot
 * wait for, so a JWT-shaped token is let through to the bearer-auth
 * interceptor, which verifies it before the service runs. Null when there is
 * no authentication.
 */
export function headerCheck(
  tokens: readonly (string | TokenGrant)[],
  jwt: JwtSettings | null,
): ((headers: IncomingHttpHeaders) => HeaderDecision) | null {
  if (tokens.length === 0 && jwt === null) return null;
  const creds = credentials(tokens, jwt === null ? null : jwtVerifier(jwt));
  return (headers) => {
    const result = resolvePrincipal(creds, headers.authorization);
    if (result instanceof Promise) {
      result.catch(() => {}); // verified again, and answered, by the interceptor
      return { ok: true };
    }
    if (result.ok) return { ok: true };
    return {
      ok: false,
      reason: result.reason === "jwt" ? "wrong" : result.reason,
      message: result.message,
    };
  };
}
