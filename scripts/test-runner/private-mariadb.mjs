// A MariaDB server of the test run's own: a temporary data directory, a free
// port on 127.0.0.1, root without a password, small buffers, and no system
// configuration read (--no-defaults). Stopped and removed by stop().
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** How long the server may take to answer after it was started. */
const READY_WITHIN_MS = 60_000;
/** How long SIGTERM may take before the server is killed. */
const STOP_WITHIN_MS = 30_000;

/** mariadbd lives in /usr/sbin, which is not on every user's PATH. */
function mariadbd() {
  const found = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].find((path) => existsSync(path));
  return found ?? "mariadbd";
}

/** A port that was free on 127.0.0.1 a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The last lines of a log file, for an error message. */
function tail(path, lines = 15) {
  if (!existsSync(path)) return "(no log written)";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * The mysql client's arguments for `sql` as root on 127.0.0.1:`port` over
 * TCP, reading no option file, giving up on connecting after 2 s.
 */
export function mysqlArgs(port, sql) {
  return [
    "--no-defaults",
    "--protocol=TCP",
    "--host=127.0.0.1",
    `--port=${port}`,
    "--user=root",
    "--connect-timeout=2",
    `--execute=${sql}`,
  ];
}

/** True once the server answers a query over TCP. */
async function answers(port) {
  try {
    await run("mysql", mysqlArgs(port, "SELECT 1"), { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A private server, not started yet: start() resolves with its URL once it
 * answers; stop() ends it (SIGTERM, then waits for the exit) and removes its
 * files, at any point, also halfway through start(); stopNow() is for process
 * exit, where nothing can be awaited.
 */
export function privateMariadb() {
  const state = { dir: mkdtempSync(join(tmpdir(), "runstore-test-mariadb-")), child: null };
  return {
    dir: state.dir,
    start: () => start(state),
    stop: () => stopServer(state),
    stopNow: () => killNow(state),
  };
}

async function start(state) {
  const files = {
    data: join(state.dir, "data"),
    socket: join(state.dir, "mariadb.sock"),
    pid: join(state.dir, "mariadb.pid"),
    log: join(state.dir, "error.log"),
  };
  // Root may run mariadbd only by naming the user; anyone else runs it as themselves.
  const user = process.getuid?.() === 0 ? ["--user=root"] : [];
  const small = ["--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M"];
  try {
    await run("mariadb-install-db", [
      "--no-defaults",
      `--datadir=${files.data}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      ...user,
      ...small,
    ]);
  } catch (error) {
    throw new Error(`mariadb-install-db failed: ${error.stderr || error.message}`);
  }
  const port = await freePort();
  const child = spawn(
    mariadbd(),
    [
      "--no-defaults",
      ...user,
      `--datadir=${files.data}`,
      `--socket=${files.socket}`,
      `--pid-file=${files.pid}`,
      `--log-error=${files.log}`,
      "--bind-address=127.0.0.1",
      `--port=${port}`,
      "--skip-name-resolve",
      "--skip-log-bin",
      ...small,
    ],
    // Its own process group: a Ctrl-C reaches the runner, which stops it in order.
    { detached: true, stdio: "ignore" },
  );
  state.child = child;
  state.exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + READY_WITHIN_MS;
  while (!(await answers(port))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the private MariaDB exited at start-up; its log ends:\n${tail(files.log)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the private MariaDB did not answer within ${READY_WITHIN_MS / 1000} s; its log ends:\n${tail(files.log)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return `mysql://root@127.0.0.1:${port}`;
}

/** SIGTERM, wait for the exit (SIGKILL past the bound), remove the directory. */
async function stopServer(state) {
  const { child } = state;
  if (child !== null && child.exitCode === null && child.signalCode === null) {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WITHIN_MS);
    child.kill("SIGTERM");
    await state.exited;
    clearTimeout(timer);
  }
  rmSync(state.dir, { recursive: true, force: true });
}

/** Kill and remove at once. */
function killNow(state) {
  const { child } = state;
  if (child !== null && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(state.dir, { recursive: true, force: true });
}
