#!/usr/bin/env node
// Runs a command against a private MariaDB (the one `npm test` starts), with
// TEST_MYSQL_URL and BENCH_MYSQL_URL pointing at it, and tears it down after:
//   node scripts/with-private-mariadb.mjs npm run bench -- --smoke
// Installs mariadb-server-core / mariadb-client-core first when it may.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { hasDpkg, installPackages, missingPackages } from "./test-runner/debian-packages.mjs";
import { privateMariadb } from "./test-runner/private-mariadb.mjs";

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  console.error("usage: node scripts/with-private-mariadb.mjs COMMAND [ARGS…]");
  process.exit(2);
}
try {
  if (hasDpkg()) installPackages(missingPackages(["mariadb-client-core", "mariadb-server-core"]));
} catch (error) {
  console.error(`with-private-mariadb: ${error.message}`);
  process.exit(2);
}

const mariadb = privateMariadb();
process.on("exit", () => mariadb.stopNow());
let child = null;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    child?.kill(signal);
    mariadb.stop().then(() => process.exit(128 + constants.signals[signal]));
  });
}

let status = 1;
try {
  const url = await mariadb.start();
  console.log(`with-private-mariadb: MariaDB at ${url}`);
  status = await new Promise((resolve) => {
    child = spawn(command, args, {
      stdio: "inherit",
      env: { ...process.env, TEST_MYSQL_URL: url, BENCH_MYSQL_URL: url },
    });
    child.once("error", (error) => {
      console.error(`with-private-mariadb: ${command}: ${error.message}`);
      resolve(127);
    });
    child.once("close", (code) => resolve(code ?? 1));
  });
} catch (error) {
  console.error(`with-private-mariadb: ${error.message}`);
} finally {
  await mariadb.stop();
}
process.exit(status);
