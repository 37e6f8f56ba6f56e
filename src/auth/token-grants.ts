import { ADMIN, type Principal, type Role, type TokenGrant } from "./principal.js";

/** The roles, weakest first. */
export const ROLES: readonly Role[] = ["read", "write", "admin"];

/** Shortest static token accepted: 16 characters, no whitespace. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The users a role is bound to: admin is never bound (null, every user);
 * read and write must name at least one user id of 1 to 64 characters.
 * Throws an Error whose message names `where`.
 */
export function checkUsers(
  role: Role,
  users: readonly string[],
  where: string,
): Set<string> | null {
  if (role === "admin") {
    if (users.length > 0) throw new Error(`${where}: role admin is never bound to users`);
    return null;
  }
  if (users.length === 0) throw new Error(`${where}: role ${role} needs at least one user`);
  for (const user of users) {
    const length = [...user].length;
    if (length < 1 || length > 64) {
      throw new Error(
        `${where}: a user id must be 1 to 64 characters, got ${JSON.stringify(user)}`,
      );
    }
  }
  return new Set(users);
}

/**
 * One line of AUTH_TOKENS_FILE, after comments and blank lines are dropped:
 * `<token>` alone is an unscoped admin token (the format before scopes);
 * `<token> role=<read|write|admin> [users=<id>,<id>…]` binds it. Throws an
 * Error naming `where` (never the token) when the line breaks a rule.
 */
export function parseTokenLine(line: string, where: string): TokenGrant {
  const [token = "", ...fields] = line.trim().split(/\s+/);
  checkToken(token, where);
  if (fields.length === 0) return { token, principal: ADMIN };
  let role: Role | null = null;
  let users: string[] = [];
  const seen = new Set<string>();
  for (const field of fields) {
    const eq = field.indexOf("=");
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? "" : field.slice(eq + 1);
    if (seen.has(name)) throw new Error(`${where}: ${name}= is given twice`);
    seen.add(name);
    if (name === "role") {
      if (!(ROLES as readonly string[]).includes(value)) {
        throw new Error(
          `${where}: role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(value)}`,
        );
      }
      role = value as Role;
    } else if (name === "users") {
      users = value.split(",");
      if (users.some((u) => u === ""))
        throw new Error(`${where}: users= is a comma-separated list of user ids`);
    } else {
      throw new Error(`${where}: unknown field ${JSON.stringify(name)}; expected role= and users=`);
    }
  }
  if (role === null)
    throw new Error(`${where}: a scoped token needs role=read, role=write or role=admin`);
  const principal: Principal = { role, users: checkUsers(role, users, where) };
  return { token, principal };
}

/** Every grant of a tokens file's text; the same token on two lines is refused as ambiguous. */
export function parseTokenFile(text: string, name: string): TokenGrant[] {
  const grants: TokenGrant[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    grants.push(parseTokenLine(line, `${name} line ${index + 1}`));
  }
  checkDistinct(grants, name);
  return grants;
}

/**
 * Refuses a token given twice with different scopes (two lines, or
 * AUTH_TOKENS and the file): which one applies would be a guess. The same
 * grant twice is harmless, as it was before scopes.
 */
export function checkDistinct(grants: readonly TokenGrant[], name: string): void {
  const seen = new Map<string, string>();
  for (const grant of grants) {
    const scope = describe(grant.principal);
    const before = seen.get(grant.token);
    if (before !== undefined && before !== scope) {
      throw new Error(`${name}: a token is listed twice with different scopes`);
    }
    seen.set(grant.token, scope);
  }
}

/** "admin", or "write users=a,b": for logs and for comparing grants. */
export function describe(principal: Principal): string {
  return principal.users === null
    ? principal.role
    : `${principal.role} users=${[...principal.users].sort().join(",")}`;
}

function checkToken(token: string, where: string): void {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new Error(
      `${where}: every token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`,
    );
  }
}
