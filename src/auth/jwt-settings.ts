import type { JSONWebKeySet } from "jose";
import type { JwtSettings } from "./jwt.js";

/** The AUTH_JWT_* rows of config.ts's SETTINGS (the `--help` and docs table). */
export const JWT_SETTINGS = [
  [
    "AUTH_JWT_SECRET",
    "(unset)",
    "accept JWT bearer tokens signed HS256 with this secret, at least 32 characters",
  ],
  [
    "AUTH_JWT_JWKS_FILE",
    "(unset)",
    "accept JWT bearer tokens signed by a key of this JWKS file (RS*, PS*, ES*, EdDSA)",
  ],
  ["AUTH_JWT_ISSUER", "(unset)", "when set, a JWT's iss must equal it"],
  ["AUTH_JWT_AUDIENCE", "(unset)", "when set, a JWT's aud must hold it"],
  [
    "AUTH_JWT_USERS_CLAIM",
    "runstore_users",
    "JWT claim with the user id(s) the token is bound to (a string or an array)",
  ],
  ["AUTH_JWT_ROLE_CLAIM", "runstore_role", "JWT claim with the role: read, write or admin"],
] as const;

/**
 * The JWT settings from `get` (a trimmed setting or undefined); null when
 * neither AUTH_JWT_SECRET nor AUTH_JWT_JWKS_FILE is set. Throws an
 * Error naming the setting (never the secret) when one is wrong.
 */
export function jwtSettings(
  get: (name: string) => string | undefined,
  readFile: (name: string, path: string) => Buffer,
): JwtSettings | null {
  const secret = get("AUTH_JWT_SECRET") ?? null;
  const jwksFile = get("AUTH_JWT_JWKS_FILE");
  if (secret === null && jwksFile === undefined) {
    for (const [name] of JWT_SETTINGS.slice(2)) {
      if (get(name) !== undefined) {
        throw new Error(`${name} needs AUTH_JWT_SECRET or AUTH_JWT_JWKS_FILE`);
      }
    }
    return null;
  }
  if (secret !== null && secret.length < 32) {
    throw new Error("AUTH_JWT_SECRET must be at least 32 characters");
  }
  return {
    hs256Secret: secret,
    jwks: jwksFile === undefined ? null : readJwks(jwksFile, readFile),
    issuer: get("AUTH_JWT_ISSUER") ?? null,
    audience: get("AUTH_JWT_AUDIENCE") ?? null,
    usersClaim: get("AUTH_JWT_USERS_CLAIM") ?? "runstore_users",
    roleClaim: get("AUTH_JWT_ROLE_CLAIM") ?? "runstore_role",
  };
}

function readJwks(path: string, readFile: (name: string, path: string) => Buffer): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFile("AUTH_JWT_JWKS_FILE", path).toString("utf8"));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new Error(`AUTH_JWT_JWKS_FILE=${path} is not JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (
    !Array.isArray(keys) ||
    keys.length === 0 ||
    !keys.every((k) => typeof k === "object" && k !== null)
  ) {
    throw new Error(
      `AUTH_JWT_JWKS_FILE=${path} must be a JWKS: {"keys": [ … ]} with at least one key`,
    );
  }
  for (const key of keys as Record<string, unknown>[]) {
    if ("d" in key || key.kty === "oct") {
      throw new Error(`AUTH_JWT_JWKS_FILE=${path} must hold public keys only`);
    }
  }
  return parsed as JSONWebKeySet;
}
