import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/config.js";
import { logLines, runUntilExit } from "../support/child-server.js";

// A DATABASE_URL's password never reaches the log, whatever it holds: each
// of @ / # : ? % raw and percent-encoded, through start-up on a database
// that refuses connections (retry lines, the final line) or a refusal of
// the URL itself (no part of its user or password at all).

const USER = "rsUser7";
const HEAD = "Sx9q";
const TAIL = "Zk7w";
const SPECIALS = ["@", "/", "#", ":", "?", "%"];

describe("DATABASE_URL secrets in the log", () => {
  it("no line shows any part of a password with @ / # : ? %, raw or percent-encoded", async () => {
    const cases = SPECIALS.flatMap((c) => [
      { c, encoded: false, password: `${HEAD}${c}${TAIL}` },
      { c, encoded: true, password: encodeURIComponent(`${HEAD}${c}${TAIL}`) },
    ]);
    // Four processes at a time: twelve at once on a loaded two-core machine
    // took longer to start than runUntilExit's bound (an empty output, seen in CI).
    const runs = [];
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4).map(async (run) => ({
        ...run,
        ...(await runUntilExit(
          {
            DATABASE_URL: `mysql://${USER}:${run.password}@127.0.0.1:1/runstore`,
            DB_CONNECT_ATTEMPTS: "2",
          },
          60_000,
        )),
      }));
      runs.push(...(await Promise.all(batch)));
    }
    const outcomes: string[] = [];
    for (const run of runs) {
      const what = `${run.c} ${run.encoded ? "encoded" : "raw"}`;
      const lines = logLines(run.output);
      // Every line is JSON, and none holds either half of the password.
      expect(run.output.trim().split("\n"), what).toHaveLength(lines.length);
      expect(run.output, what).not.toContain(HEAD);
      expect(run.output, what).not.toContain(TAIL);
      if (run.code === 2) {
        // Refused as a URL: nothing of its user or password is shown.
        expect(
          lines.map((l) => l.level),
          what,
        ).toEqual([60]);
        expect(run.output, what).not.toContain(USER);
        outcomes.push(`${what}: refused`);
      } else {
        expect(run.code, what).toBe(1);
        expect(
          lines.map((l) => l.msg).filter((m) => m.includes("not reachable")),
          what,
        ).toEqual([
          `database at mysql://${USER}:***@127.0.0.1:1/runstore not reachable (connect ECONNREFUSED 127.0.0.1:1); attempt 1 of 2, retrying in 1000 ms`,
        ]);
        outcomes.push(`${what}: retried`);
      }
    }
    // Raw / # ? % cannot be read unambiguously and are refused; a raw @ or :
    // is read as the URL standard says (the last @ ends the user info), so
    // the server tries it.
    expect(outcomes).toEqual([
      "@ raw: retried",
      "@ encoded: retried",
      "/ raw: refused",
      "/ encoded: retried",
      "# raw: refused",
      "# encoded: retried",
      ": raw: retried",
      ": encoded: retried",
      "? raw: refused",
      "? encoded: retried",
      "% raw: refused",
      "% encoded: retried",
    ]);
  }, 300_000);

  it("redactUrl hides the password and query values, and shows nothing of a URL it cannot read safely", () => {
    expect(redactUrl("mysql://u:p%40ss@db:3306/runstore")).toBe("mysql://u:***@db:3306/runstore");
    expect(redactUrl('mariadb://u:pw@db/runstore?ssl={"key":"secret"}')).toBe(
      "mariadb://u:***@db/runstore?ssl=***",
    );
    for (const url of ["mysql://u:p@ss/w#rd:x@127.0.0.1/db", "mysql://u:p?ss@h/db", "not a url"]) {
      expect(redactUrl(url)).toBe("(a URL that cannot be shown without its password)");
    }
  });
});
