// The bearer tokens of the scoped cases (cases/README.md, "Scoped tokens"):
// what a case's "tokens" map may say, the token string each scope gets, and
// the AUTH_TOKENS_FILE lines a server of the remote runners starts with.
// python/tests/contract/case_tokens.py is the same in Python; a change here
// is a change there.

/** A token's scope as a case writes it: a role, and its users (none for admin). */
export interface TokenScope {
  role: "read" | "write" | "admin";
  users?: string[];
}

/** Token name (a step's "as") → scope. */
export type CaseTokens = Record<string, TokenScope>;

/** The token of every step without "as": an unscoped (admin) token, a bare line. */
export const ADMIN_TOKEN = "contract-admin-unscoped";

const ROLES = ["read", "write", "admin"];

/** A user id a token-file line can hold: 1 to 64 code points, no space or comma. */
const USER_ID = /^[^\s,]{1,64}$/u;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Refuses a "tokens" map the server would refuse (or the runner misread),
 * naming `where` and the token: read and write are bound to at least one
 * user, admin to none, and a scope has no other key.
 */
export function checkCaseTokens(tokens: unknown, where: string): asserts tokens is CaseTokens {
  if (!isObject(tokens) || Object.keys(tokens).length === 0) {
    throw new Error(`${where}: "tokens" must map token names to {"role", "users"}`);
  }
  for (const [name, scope] of Object.entries(tokens)) {
    const at = `${where}: token "${name}"`;
    if (!isObject(scope) || !ROLES.includes(scope.role as string)) {
      throw new Error(`${at}: needs "role": "read", "write" or "admin"`);
    }
    const extra = Object.keys(scope).filter((key) => key !== "role" && key !== "users");
    if (extra.length > 0) throw new Error(`${at}: unknown key "${extra[0]}" (role, users)`);
    const users = scope.users;
    if (scope.role === "admin") {
      if (users !== undefined) throw new Error(`${at}: role admin is never bound to users`);
      continue;
    }
    if (!Array.isArray(users) || users.length === 0) {
      throw new Error(`${at}: role ${scope.role} needs "users", a list of user ids`);
    }
    for (const user of users) {
      if (typeof user !== "string" || !USER_ID.test(user)) {
        throw new Error(`${at}: a user id is 1 to 64 characters without spaces or commas`);
      }
    }
  }
}

/**
 * The token string of a scope, the same in both languages: one string per
 * scope, so every scope of every case fits in one tokens file.
 */
export function tokenOf(scope: TokenScope): string {
  if (scope.role === "admin") return ADMIN_TOKEN;
  const users = Buffer.from((scope.users ?? []).join(","), "utf8").toString("hex");
  return `contract-${scope.role}-${users}`;
}

/** AUTH_TOKENS_FILE lines for these scopes and the admin token, each scope once. */
export function tokenFileLines(scopes: Iterable<TokenScope>): string[] {
  const lines = new Set([ADMIN_TOKEN]);
  for (const scope of scopes) {
    if (scope.role !== "admin") {
      lines.add(`${tokenOf(scope)} role=${scope.role} users=${(scope.users ?? []).join(",")}`);
    }
  }
  return [...lines];
}
