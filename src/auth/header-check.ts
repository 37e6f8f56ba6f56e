import type { IncomingHttpHeaders } from "node:http2";
import { type JwtSettings, jwtVerifier } from "./jwt.js";
import { type AuthResult, credentials, resolvePrincipal, type TokenGrant } from "./principal.js";

/** What the pre-body check answers (src/authenticate.ts's Authentication). */
export type HeaderDecision =
  | { ok: true }
  | { ok: false; reason: "missing" | "malformed" | "wrong"; message: string };

/**
 * The pre-body header check (src/authenticate.ts's Authenticate) over
 * resolvePrincipal: static tokens, scoped or not, are decided at once; a
 * JWT-shaped token is verified by jose (asynchronously) and the answer is a
 * promise, which src/header-auth.ts awaits before any byte of the body is
 * read, so an expired, forged or ill-claimed JWT is refused at the headers
 * like a wrong static token. The bearer-auth interceptor resolves the
 * principal again for the service. Null when there is no authentication.
 */
export function headerCheck(
  tokens: readonly (string | TokenGrant)[],
  jwt: JwtSettings | null,
): ((headers: IncomingHttpHeaders) => HeaderDecision | Promise<HeaderDecision>) | null {
  if (tokens.length === 0 && jwt === null) return null;
  const creds = credentials(tokens, jwt === null ? null : jwtVerifier(jwt));
  return (headers) => {
    const result = resolvePrincipal(creds, headers.authorization);
    return result instanceof Promise ? result.then(decision) : decision(result);
  };
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
