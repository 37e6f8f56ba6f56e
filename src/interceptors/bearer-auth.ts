import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Why a call was refused, for the log line; never the token itself. */
export type AuthFailure = "missing" | "malformed" | "wrong";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Requires `authorization: Bearer <token>` matching one of `tokens` on every
 * call of the given services (health and reflection stay open: probes carry
 * no credentials). Tokens are compared as SHA-256 digests with
 * timingSafeEqual, against every accepted token without stopping early, so
 * neither a token's length nor which one matched shows in the timing.
 * Several tokens may be valid at once, which is how they are rotated.
 */
export function bearerAuth(
  tokens: readonly string[],
  protectedServices: readonly string[],
  onFailure: (procedure: string, reason: AuthFailure) => void,
): Interceptor {
  const accepted = tokens.map(digest);
  const guarded = new Set(protectedServices);
  return (next) => async (req) => {
    if (!guarded.has(req.service.typeName)) return next(req);
    const header = req.header.get("authorization");
    const reason = check(header);
    if (reason !== null) {
      onFailure(`${req.service.typeName}/${req.method.name}`, reason);
      throw new ConnectError(
        reason === "missing" ? "missing bearer token" : "invalid bearer token",
        Code.Unauthenticated,
      );
    }
    return next(req);
  };

  function check(header: string | null): AuthFailure | null {
    if (header === null || header === "") return "missing";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) return "malformed";
    const presented = digest(match[1]);
    let ok = false;
    for (const token of accepted) ok = timingSafeEqual(presented, token) || ok;
    return ok ? null : "wrong";
  }
}
