// The suites `npm test` runs, each as a child process, each resolving to
// what it counted. A suite that could not run or wrote no counts is a failure.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";

/** The children running now, so a Ctrl-C can end them before the teardown. */
export const running = new Set();

/**
 * Runs a command; resolves with its exit status. Its output is inherited,
 * or with `buffered` kept (stdout and stderr in the order they came) and
 * returned as `output`, for a suite that runs beside another and prints
 * when it is over. `captureStdout` also returns its stdout.
 */
function runChild(command, args, { env, captureStdout = false, buffered = false }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env,
      stdio: [
        "inherit",
        captureStdout || buffered ? "pipe" : "inherit",
        buffered ? "pipe" : "inherit",
      ],
    });
    running.add(child);
    let stdout = "";
    let output = "";
    child.stdout?.on("data", (chunk) => {
      if (!buffered) process.stdout.write(chunk);
      stdout += chunk;
      output += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      output += chunk;
    });
    child.once("error", (error) => resolve({ status: null, error, stdout, output }));
    child.once("close", (code, signal) => {
      running.delete(child);
      resolve({ status: code ?? signal, stdout, output });
    });
  });
}

/**
 * `tsc --noEmit` of the server, SDK and tests, then of the console (its own
 * DOM settings): passes or fails as a whole. With `buffered` its output is
 * returned as `output`.
 */
export async function typecheck(env, { buffered = false } = {}) {
  let output = "";
  for (const project of ["tsconfig.json", "console/tsconfig.json"]) {
    const run = await runChild("node_modules/.bin/tsc", ["--noEmit", "-p", project], {
      env,
      buffered,
    });
    output += run.output;
    if (run.status !== 0) {
      const why = run.error?.message ?? `exit ${run.status}`;
      return { ok: false, problem: `typecheck of ${project} failed (${why})`, output };
    }
  }
  return { ok: true, problem: null, output };
}

/**
 * vitest with a JSON report, counted from that report. `mysqlLog` lists the
 * test files that opened a MySQL test database (test/support/mysql.ts).
 */
export async function vitest(extraArgs, { env, jsonFile, mysqlLog, buffered = false }) {
  const args = ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${jsonFile}`];
  const run = await runChild("node_modules/.bin/vitest", [...args, ...extraArgs], {
    env,
    buffered,
  });
  return { ...vitestCounts(run, jsonFile, mysqlLog), output: run.output };
}

/** vitest's result, from the JSON report it wrote. */
function vitestCounts({ status, error }, jsonFile, mysqlLog) {
  if (!existsSync(jsonFile)) {
    return { ok: false, problem: `vitest wrote no report (${error?.message ?? `exit ${status}`})` };
  }
  const report = JSON.parse(readFileSync(jsonFile, "utf8"));
  const mysqlFiles = new Set(
    existsSync(mysqlLog) ? readFileSync(mysqlLog, "utf8").split("\n").filter(Boolean) : [],
  );
  const onMysql = report.testResults
    .filter((file) => mysqlFiles.has(file.name))
    .flatMap((file) => file.assertionResults)
    .filter((test) => test.status === "passed" || test.status === "failed").length;
  const counts = {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
    onMysql,
    mysqlFiles: mysqlFiles.size,
  };
  // A file that failed to load, or an error outside any test, fails no test.
  const ok = status === 0 && report.success === true;
  const failures = vitestFailures(report);
  return { ok, counts, failures, problem: ok ? null : `vitest failed (exit ${status})` };
}

/**
 * "file > test: first line of the error" for each failed test, and for each
 * file that failed outside any test (one that did not load, say), so the end
 * of a long run names what failed.
 */
function vitestFailures(report) {
  const failures = [];
  for (const file of report.testResults) {
    const name = relative(process.cwd(), file.name);
    const failed = file.assertionResults.filter((test) => test.status === "failed");
    for (const test of failed) {
      failures.push(`${name} > ${test.fullName}: ${firstLine(test.failureMessages[0])}`);
    }
    if (failed.length === 0 && file.status === "failed") {
      failures.push(`${name}: ${firstLine(file.message)}`);
    }
  }
  return failures;
}

function firstLine(text = "") {
  return text.trim().split("\n")[0];
}

/**
 * test/galera (`npm run test:galera`): vitest with vitest.galera.config.ts,
 * whose global setup starts a local 3-node Galera cluster; counted like vitest.
 */
export function galera({ env, jsonFile, buffered = false }) {
  return vitest(["--config", "vitest.galera.config.ts"], { env, jsonFile, mysqlLog: "", buffered });
}

const PYTHON_LINE = /^python: (\d+) passed, (\d+) failed, (\d+) skipped, (\d+) ran on MySQL$/m;
/** unittest's heading of each failed test: "FAIL: test_x (module.Class.test_x)". */
const PYTHON_FAILURE = /^(?:FAIL|ERROR): .+$/gm;

/**
 * python/run_tests.py, counted from its closing "python: …" line. With
 * `buffered` its output is not printed but returned as `output`.
 */
export async function python(env, { buffered = false } = {}) {
  const run = await runChild("/usr/bin/python3", ["python/run_tests.py"], {
    env: { ...env, PYTHONUNBUFFERED: "1" },
    captureStdout: true,
    buffered,
  });
  const failures = run.output.match(PYTHON_FAILURE) ?? [];
  return { ...pythonCounts(run), failures, output: run.output };
}

/** The Python suite's result from its run. */
function pythonCounts({ status, error, stdout }) {
  const line = PYTHON_LINE.exec(stdout);
  if (line === null) {
    return {
      ok: false,
      problem: `the Python suite printed no counts (${error?.message ?? `exit ${status}`})`,
    };
  }
  const [passed, failed, skipped, onMysql] = line.slice(1).map(Number);
  const ok = status === 0;
  return {
    ok,
    counts: { passed, failed, skipped, onMysql },
    problem: ok ? null : `the Python suite failed (exit ${status})`,
  };
}
