import { createContextKey } from "@connectrpc/connect";
import type { Principal } from "./principal.js";

/**
 * The authenticated principal of a call, set by the bearer-auth interceptor;
 * null when the server runs without authentication (every user, every RPC).
 */
export const principalKey = createContextKey<Principal | null>(null, {
  description: "runstore auth principal",
});
