import { describe, expect, it } from "vitest";
import { closingLine } from "../../scripts/test-runner/closing-line.mjs";

const typecheck = { ok: true, problem: null };
const ts = { passed: 460, failed: 0, skipped: 0, onMysql: 291, mysqlFiles: 13 };
const py = { passed: 150, failed: 0, skipped: 0, onMysql: 64 };
const galera = {
  ok: true,
  counts: { passed: 7, failed: 0, skipped: 0, onMysql: 0 },
  problem: null,
};

describe("npm test's closing line", () => {
  it("counts every suite and says what ran on MySQL", () => {
    const { line, ok } = closingLine(
      {
        typecheck,
        vitest: { ok: true, counts: ts, problem: null },
        galera,
        python: { ok: true, counts: py, problem: null },
        mysql: "private MariaDB",
      },
      { skip: [] },
    );
    expect(line).toBe(
      "tests: 617 passed, 0 failed, 0 skipped (TypeScript 460; Galera 7; Python 150; typecheck passed; " +
        "ran on MySQL (private MariaDB): 13 TypeScript files (291 tests), 64 Python tests; opted out: none)",
    );
    expect(ok).toBe(true);
  });

  it("names what was opted out, and a suite opted out is not a failure", () => {
    const { line, ok } = closingLine(
      {
        typecheck,
        vitest: { ok: true, counts: ts, problem: null },
        galera: null,
        python: null,
        mysql: null,
      },
      { skip: ["python", "mysql", "galera"] },
    );
    expect(line).toBe(
      "tests: 460 passed, 0 failed, 0 skipped (TypeScript 460; typecheck passed; opted out: python, mysql, galera)",
    );
    expect(ok).toBe(true);
  });

  it("counts a suite that did not run, or failed without a failed test, as a failure", () => {
    const { line, ok } = closingLine(
      {
        typecheck: { ok: false, problem: "typecheck failed (exit 2)" },
        vitest: { ok: false, counts: ts, problem: "vitest failed (exit 1)" },
        galera: { ok: false, problem: "vitest wrote no report (exit 1)" },
        python: null,
        mysql: "private MariaDB",
      },
      { skip: [] },
    );
    expect(line).toBe(
      "tests: 460 passed, 4 failed, 0 skipped (TypeScript 460; " +
        "ran on MySQL (private MariaDB): 13 TypeScript files (291 tests); opted out: none; " +
        "failed: vitest failed (exit 1); vitest wrote no report (exit 1); Python did not run; " +
        "typecheck failed (exit 2))",
    );
    expect(ok).toBe(false);
  });

  it("counts failed tests once, with the suite's own problem named", () => {
    const counts = { ...py, passed: 147, failed: 2, skipped: 1 };
    const { line, ok } = closingLine(
      {
        typecheck,
        vitest: { ok: true, counts: ts, problem: null },
        galera,
        python: { ok: false, counts, problem: "the Python suite failed (exit 1)" },
        mysql: "mysql://root@db:3306",
      },
      { skip: [] },
    );
    expect(line).toBe(
      "tests: 614 passed, 2 failed, 1 skipped (TypeScript 460; Galera 7; Python 147 passed, 2 failed, 1 skipped; " +
        "typecheck passed; ran on MySQL (mysql://root@db:3306): 13 TypeScript files (291 tests), " +
        "64 Python tests; opted out: none; failed: the Python suite failed (exit 1))",
    );
    expect(ok).toBe(false);
  });

  it("prints TEST_MYSQL_URL without its password", () => {
    const line = (mysql: string) =>
      closingLine(
        {
          typecheck,
          vitest: { ok: true, counts: ts, problem: null },
          galera: null,
          python: null,
          mysql,
        },
        { skip: ["python", "galera"] },
      ).line;
    const expected = (shown: string) =>
      "tests: 460 passed, 0 failed, 0 skipped (TypeScript 460; typecheck passed; " +
      `ran on MySQL (${shown}): 13 TypeScript files (291 tests); opted out: python, galera)`;
    expect(line("mysql://ci:s3cr%40t@db:3306/runstore?ssl=true")).toBe(
      expected("mysql://ci:***@db:3306/runstore?ssl=true"),
    );
    // One the URL parser refuses (port out of range) is hidden all the same.
    expect(line("mysql://ci:s3cret@db:99999")).toBe(expected("mysql://ci:***@db:99999"));
  });
});
