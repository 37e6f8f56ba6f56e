import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import type { AuthResult, Principal, Role } from "./principal.js";
import { checkUsers, ROLES } from "./token-grants.js";

/** How JWT bearer tokens are checked and what their claims mean (AUTH_JWT_* settings). */
export interface JwtSettings {
  /** HS256 shared secret (at least 32 bytes); null: HS256 tokens are refused. */
  readonly hs256Secret: string | null;
  /** Public keys (RS*, PS*, ES*, EdDSA) as a JWKS document; null: asymmetric tokens are refused. */
  readonly jwks: JSONWebKeySet | null;
  /** Required `iss`, when set. */
  readonly issuer: string | null;
  /** Required `aud`, when set. */
  readonly audience: string | null;
  /** Claim holding the user id(s): a string or an array of strings. */
  readonly usersClaim: string;
  /** Claim holding the role: read, write or admin. */
  readonly roleClaim: string;
}

/** JwtSettings made ready to verify (keys imported once). */
export interface JwtVerifier {
  readonly settings: JwtSettings;
  readonly key: JWTVerifyGetKey;
  readonly algorithms: string[];
}

const ASYMMETRIC = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
];

/** Builds the verifier; throws (naming the setting) when the JWKS holds no usable key set. */
export function jwtVerifier(settings: JwtSettings): JwtVerifier {
  const secret =
    settings.hs256Secret === null ? null : new TextEncoder().encode(settings.hs256Secret);
  const jwks = settings.jwks === null ? null : createLocalJWKSet(settings.jwks);
  const algorithms = [...(secret === null ? [] : ["HS256"]), ...(jwks === null ? [] : ASYMMETRIC)];
  const key: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === "HS256" && secret !== null) return secret;
    if (jwks !== null) return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
  };
  return { settings, key, algorithms };
}

let verifications = 0;

/**
 * JWTs this process has verified so far (a signature check each): a call
 * with a JWT costs exactly one, at its headers (test/server/jwt-once.test.ts).
 */
export function jwtVerifications(): number {
  return verifications;
}

/** A JWT's principal: signature, `exp` (required), `nbf`, issuer and audience checked first. */
export async function verifyJwt(verifier: JwtVerifier, token: string): Promise<AuthResult> {
  verifications++;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, verifier.key, {
      algorithms: verifier.algorithms,
      requiredClaims: ["exp"],
      ...(verifier.settings.issuer === null ? {} : { issuer: verifier.settings.issuer }),
      ...(verifier.settings.audience === null ? {} : { audience: verifier.settings.audience }),
    }));
  } catch (error) {
    const why = error instanceof errors.JOSEError ? error.code : "unreadable";
    return { ok: false, reason: "jwt", message: `invalid bearer token (JWT: ${why})` };
  }
  try {
    return { ok: true, principal: principalFromClaims(payload, verifier.settings) };
  } catch (error) {
    return {
      ok: false,
      reason: "jwt",
      message: `invalid bearer token (JWT: ${(error as Error).message})`,
    };
  }
}

/** The role and users a verified payload grants; the same rules as a token-file line. */
export function principalFromClaims(
  payload: JWTPayload,
  settings: Pick<JwtSettings, "usersClaim" | "roleClaim">,
): Principal {
  const role = payload[settings.roleClaim];
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw new Error(`claim ${settings.roleClaim} must be one of ${ROLES.join(", ")}`);
  }
  const raw = payload[settings.usersClaim];
  const list =
    raw === undefined
      ? []
      : typeof raw === "string"
        ? [raw]
        : Array.isArray(raw) && raw.every((u) => typeof u === "string")
          ? (raw as string[])
          : null;
  if (list === null) {
    throw new Error(`claim ${settings.usersClaim} must be a string or an array of strings`);
  }
  const users = checkUsers(role as Role, list, `claim ${settings.usersClaim}`);
  return { role: role as Role, users };
}
