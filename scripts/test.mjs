#!/usr/bin/env node
// `npm test`: sets the machine up (npm ci, Debian packages, a private
// MariaDB), runs every suite (vitest; typecheck, Python then Galera
// beside it), tears the private
// server down, and ends with one closing line:
//   tests: N passed, N failed, N skipped (details)
// Plain Node with no dependencies: it runs before node_modules exists.
// Extra arguments go to vitest (`npm test -- test/server`). A part of the run
// is skipped only when named in RUNSTORE_SKIP (python, mysql, galera);
// TEST_MYSQL_URL points the tests at an existing server instead of a private
// one. The galera part is `npm run test:galera`: test/galera on a local
// 3-node Galera cluster of its own (scripts/galera-cluster.mjs).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { closingLine } from "./test-runner/closing-line.mjs";
import {
  hasDpkg,
  installPackages,
  missingPackages,
  neededPackages,
} from "./test-runner/debian-packages.mjs";
import { privateMariadb } from "./test-runner/private-mariadb.mjs";
import { galera, python, running, typecheck, vitest } from "./test-runner/suites.mjs";

const PARTS = ["python", "mysql", "galera"];

process.chdir(fileURLToPath(new URL("..", import.meta.url)));

/** Ends the run before any suite, with one line saying why. */
function stop(message) {
  console.error(`npm test: ${message}`);
  process.exit(2);
}

const skip = new Set(
  (process.env.RUNSTORE_SKIP ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean),
);
const unknown = [...skip].filter((name) => !PARTS.includes(name));
if (unknown.length > 0) {
  stop(`RUNSTORE_SKIP names ${unknown.join(", ")}; the parts that can be opted out: ${PARTS}`);
}
const parts = new Set(PARTS.filter((part) => !skip.has(part)));
const externalMysql = process.env.TEST_MYSQL_URL || undefined;

if (!existsSync("node_modules")) {
  console.log("npm test: node_modules is absent: npm ci");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { stdio: "inherit" });
}

/** The Debian packages missing for these parts of the run. */
const missingFor = (someParts) =>
  missingPackages(neededPackages({ parts: someParts, privateMysql: externalMysql === undefined }));
if (!hasDpkg()) {
  console.log("npm test: no dpkg-query (not Debian/Ubuntu): packages not checked");
} else {
  const missing = missingFor(parts);
  try {
    installPackages(missing);
  } catch (error) {
    // Name the parts whose opting out would leave fewer packages missing.
    const optional = [...parts].filter(
      (part) =>
        missingFor(new Set([...parts].filter((other) => other !== part))).length < missing.length,
    );
    stop(`${error.message}${optional.length > 0 ? ` (or RUNSTORE_SKIP=${optional})` : ""}`);
  }
}

const work = mkdtempSync(join(tmpdir(), "runstore-test-"));
const mariadb = parts.has("mysql") && externalMysql === undefined ? privateMariadb() : null;
let interrupted = null;

/** Stops the private server and removes the run's files; safe to call twice. */
async function teardown() {
  await mariadb?.stop();
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", () => {
  mariadb?.stopNow();
  rmSync(work, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (interrupted !== null) return;
    interrupted = signal;
    console.error(`\nnpm test: ${signal}: stopping`);
    for (const child of running) child.kill(signal);
    // Ends a start-up in progress too: start() sees the server exit.
    mariadb?.stop();
  });
}

const results = { typecheck: null, vitest: null, galera: null, python: null, mysql: null };
let status = 0;
try {
  let mysqlUrl = externalMysql;
  if (mariadb !== null) {
    mysqlUrl = await mariadb.start();
    console.log(`npm test: private MariaDB at ${mysqlUrl} (data in ${mariadb.dir})`);
  }
  results.mysql = !parts.has("mysql") ? null : mariadb !== null ? "private MariaDB" : mysqlUrl;
  const env = {
    ...process.env,
    ...(mysqlUrl === undefined ? {} : { TEST_MYSQL_URL: mysqlUrl }),
    RUNSTORE_TEST_MYSQL_LOG: join(work, "mysql-files.txt"),
  };
  // Two lanes side by side: vitest, printing as it goes; typecheck, Python
  // then Galera, their output printed once the first lane is over. Each
  // suite waits on servers and sockets much of the time, and one after the
  // other they left a third of the two cores idle. vitest alone is the
  // longer lane (800-850 s against 650-700 s for the other three).
  const first = [
    [
      "vitest",
      (buffered) =>
        vitest(process.argv.slice(2), {
          env,
          jsonFile: join(work, "vitest.json"),
          mysqlLog: env.RUNSTORE_TEST_MYSQL_LOG,
          buffered,
        }),
    ],
  ];
  const second = [["typecheck", (buffered) => typecheck(env, { buffered })]];
  if (parts.has("python")) second.push(["python", (buffered) => python(env, { buffered })]);
  if (parts.has("galera")) {
    const jsonFile = join(work, "galera.json");
    second.push(["galera", (buffered) => galera({ env, jsonFile, buffered })]);
  }
  const outputs = [];
  /** Runs a lane's suites one after the other; `buffered`: their output kept for the end. */
  const runLane = async (lane, buffered) => {
    for (const [name, step] of lane) {
      if (interrupted !== null) break;
      if (!buffered) console.log(`\n== npm test: ${name}`);
      const { output, ...result } = await step(buffered);
      results[name] = result;
      if (buffered) outputs.push([name, output]);
    }
  };
  console.log(
    `\n== npm test: ${second.map(([name]) => name).join(", ")} beside (output at the end)`,
  );
  await Promise.all([runLane(second, true), runLane(first, false)]);
  for (const [name, output] of outputs) {
    console.log(`\n== npm test: ${name} (ran beside)`);
    process.stdout.write(output);
  }
} catch (error) {
  if (interrupted === null) {
    console.error(`npm test: ${error.message}`);
    status = 1;
  }
  // A suite still running beside the one that failed to run ends with the run.
  for (const child of running) child.kill("SIGTERM");
} finally {
  await teardown();
}
if (interrupted !== null) {
  console.error(`npm test: interrupted by ${interrupted}; the private server is stopped`);
  process.exit(128 + constants.signals[interrupted]);
}
printFailures(results);
const { line, ok } = closingLine(results, { skip: [...skip] });
console.log(`\n${line}`);
process.exit(status !== 0 || !ok ? 1 : 0);

/** Names each failed test once more just above the closing line, however long the output above. */
function printFailures(results) {
  const failed = Object.entries(results).flatMap(([suite, result]) =>
    (result?.failures ?? []).map((failure) => `${suite}: ${failure}`),
  );
  if (failed.length === 0) return;
  console.log(`\n== npm test: what failed (${failed.length})`);
  for (const failure of failed) console.log(`  ${failure}`);
}
