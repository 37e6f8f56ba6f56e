import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN } from "../../src/auth/principal.js";
import { ConfigError, readReloadable } from "../../src/config.js";

// What the scoped-token contract cases (test/contract/cases/scoped-*.json,
// every RPC × read / write / admin × own / other user, run over the wire by
// both languages) cannot say: how AUTH_TOKENS_FILE lines are read at
// start-up. JWT principals: jwt.test.ts.

const directory = mkdtempSync(join(tmpdir(), "runstore-scoped-tokens-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The tokens the server would start with from this AUTH_TOKENS_FILE text (and AUTH_TOKENS). */
function tokensFrom(text: string, authTokens?: string) {
  const file = join(directory, "tokens");
  writeFileSync(file, text);
  return readReloadable({ AUTH_TOKENS_FILE: file, AUTH_TOKENS: authTokens }).tokens;
}

describe("AUTH_TOKENS_FILE scoped lines", () => {
  it("a bare line and AUTH_TOKENS are unscoped admin tokens; role= and users= bind a line", () => {
    const tokens = tokensFrom(
      [
        "# comment",
        "bare-token-0123456789",
        "gw-alice-0123456789 role=write users=alice",
        "dash-team-0123456789 role=read users=alice,bob",
        "ci-admin-0123456789a role=admin",
      ].join("\n"),
      "env-token-0123456789",
    );
    expect(tokens).toEqual([
      "env-token-0123456789",
      "bare-token-0123456789",
      { token: "gw-alice-0123456789", principal: { role: "write", users: new Set(["alice"]) } },
      {
        token: "dash-team-0123456789",
        principal: { role: "read", users: new Set(["alice", "bob"]) },
      },
      { token: "ci-admin-0123456789a", principal: ADMIN },
    ]);
  });

  it("a bad line stops start-up naming its line number and the rule it breaks, never the token", () => {
    const token = "secret-token-0123456789";
    const refusals: [string, string][] = [
      [
        `${token} role=superuser users=a`,
        'role must be one of read, write, admin, got "superuser"',
      ],
      [`${token} role=admin users=a`, "role admin is never bound to users"],
      [`${token} role=read`, "role read needs at least one user"],
      [`${token} users=a`, "a scoped token needs role=read, role=write or role=admin"],
      [`${token} role=read users=a,,b`, "users= is a comma-separated list of user ids"],
      [
        `${token} role=write users=${"u".repeat(65)}`,
        `a user id must be 1 to 64 characters, got "${"u".repeat(65)}"`,
      ],
      [`${token} role=read role=write users=a`, "role= is given twice"],
      [`${token} colour=red`, 'unknown field "colour"; expected role= and users='],
      [
        "short-token role=read users=a",
        "every token must be at least 16 characters without spaces",
      ],
    ];
    for (const [line, rule] of refusals) {
      const error = (() => {
        try {
          tokensFrom(`# line 1\nok-token-0123456789ab\n${line}\n`);
        } catch (thrown) {
          return thrown as Error;
        }
        throw new Error(`accepted: ${line}`);
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toBe(`AUTH_TOKENS_FILE line 3: ${rule}`);
      expect(error.message).not.toContain("secret-token");
      expect(error.message).not.toContain("short-token");
    }
  });

  it("the same token with two scopes is refused, whichever lines give them; the same scope twice is kept", () => {
    const refused = (text: string, authTokens?: string) => () => tokensFrom(text, authTokens);
    const twice = "AUTH_TOKENS / AUTH_TOKENS_FILE: a token is listed twice with different scopes";
    const token = "twice-token-0123456789";
    expect(refused(`${token} role=read users=a\n${token} role=write users=a\n`)).toThrow(twice);
    expect(refused(`${token}\n${token} role=read users=a\n`)).toThrow(twice);
    expect(refused(`${token} role=read users=a\n`, token)).toThrow(twice);
    expect(refused(`${token} role=read users=a\n`, token)).toThrow(ConfigError);
    expect(tokensFrom(`${token} role=read users=a,b\n${token} role=read users=b,a\n`)).toHaveLength(
      2,
    );
    expect(tokensFrom(`${token}\n${token} role=admin\n`)).toHaveLength(2);
  });
});
