// The run's one closing line: every suite's counts together, what ran on
// MySQL, what was opted out, and what failed without a count of its own.

/** "460", or "455 passed, 3 failed, 2 skipped" when something did not pass. */
function brief({ passed, failed, skipped }) {
  if (failed === 0 && skipped === 0) return `${passed}`;
  return [`${passed} passed`, failed > 0 && `${failed} failed`, skipped > 0 && `${skipped} skipped`]
    .filter(Boolean)
    .join(", ");
}

/**
 * TEST_MYSQL_URL as it may be printed: mysql://user:***@host, as
 * src/config.ts's redactUrl hides DATABASE_URL's password (this plain
 * JavaScript cannot import it).
 */
function withoutPassword(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.href;
  } catch {
    // Not a URL ("private MariaDB", or a malformed one): hide anything after user: up to @.
    return url.replace(/\/\/([^/:@]*):[^@]*@/, "//$1:***@");
  }
}

/**
 * `results`: typecheck, vitest, galera (the Galera cluster's vitest run) and
 * python as the suites resolved (null: did not run), mysql: where the MySQL
 * tests ran (null: opted out). Returns the
 * line and whether the run passed. A suite that failed without a failed test
 * (did not start, wrote no counts, an error outside tests) counts as one failure.
 */
export function closingLine(results, { skip }) {
  const totals = { passed: 0, failed: 0, skipped: 0 };
  const details = [];
  const problems = [];
  const suites = [
    ["TypeScript", results.vitest, true],
    ["Galera", results.galera, !skip.includes("galera")],
    ["Python", results.python, !skip.includes("python")],
  ];
  for (const [label, result, expected] of suites) {
    if (!expected) continue;
    if (result === null) {
      problems.push(`${label} did not run`);
      totals.failed += 1;
      continue;
    }
    if (result.counts !== undefined) {
      for (const key of Object.keys(totals)) totals[key] += result.counts[key];
      details.push(`${label} ${brief(result.counts)}`);
    }
    if (!result.ok) {
      problems.push(result.problem);
      if ((result.counts?.failed ?? 0) === 0) totals.failed += 1;
    }
  }
  if (results.typecheck === null) {
    problems.push("typecheck did not run");
    totals.failed += 1;
  } else if (!results.typecheck.ok) {
    problems.push(results.typecheck.problem);
    totals.failed += 1;
  } else {
    details.push("typecheck passed");
  }
  if (results.mysql !== null) {
    const ts = results.vitest?.counts;
    const py = results.python?.counts;
    // TypeScript: by file (a file that opens a test database); Python: by test.
    const ran = [
      ts !== undefined && `${ts.mysqlFiles} TypeScript files (${ts.onMysql} tests)`,
      py !== undefined && `${py.onMysql} Python tests`,
    ].filter(Boolean);
    details.push(
      `ran on MySQL (${withoutPassword(results.mysql)}): ${ran.join(", ") || "nothing"}`,
    );
  }
  details.push(`opted out: ${skip.length > 0 ? skip.join(", ") : "none"}`);
  if (problems.length > 0) details.push(`failed: ${problems.join("; ")}`);
  const line =
    `tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped` +
    ` (${details.join("; ")})`;
  return { line, ok: totals.failed === 0 };
}
