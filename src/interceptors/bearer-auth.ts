import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type AuthFailure, type Credentials, resolvePrincipal } from "../auth/principal.js";
import { principalKey } from "../auth/principal-key.js";

export type { AuthFailure } from "../auth/principal.js";

/**
 * Requires `authorization: Bearer <token>` (a static token or a JWT, see
 * resolvePrincipal) on every call of the given services (health and
 * reflection stay open: probes carry no credentials), refuses RPCs with side
 * effects to role read (PERMISSION_DENIED), and hands the principal to the
 * service as the `principalKey` context value, where user-bound principals
 * are filtered. A call whose principal is set already (src/call-context.ts:
 * the pre-body header check resolved it) is not resolved again, so a JWT is
 * verified once per call. `credentials` is a function so that a reload
 * (SIGHUP) takes effect on the next call.
 */
export function bearerAuth(
  credentials: Credentials | (() => Credentials),
  protectedServices: readonly string[],
  onFailure: (procedure: string, reason: AuthFailure) => void,
): Interceptor {
  const current = typeof credentials === "function" ? credentials : () => credentials;
  const guarded = new Set(protectedServices);
  return (next) => async (req) => {
    if (!guarded.has(req.service.typeName)) return next(req);
    const known = req.contextValues.get(principalKey);
    const result =
      known !== null
        ? { ok: true as const, principal: known }
        : await resolvePrincipal(current(), req.header.get("authorization"));
    if (!result.ok) {
      onFailure(`${req.service.typeName}/${req.method.name}`, result.reason);
      throw new ConnectError(result.message, Code.Unauthenticated);
    }
    const { principal } = result;
    if (
      principal.role === "read" &&
      req.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS
    ) {
      throw new ConnectError(
        `role read may call only side-effect-free RPCs, not ${req.method.name}`,
        Code.PermissionDenied,
      );
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
