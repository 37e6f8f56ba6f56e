#!/usr/bin/env node
// A local 3-node MariaDB Galera cluster for tests and developers, the way
// test-runner/private-mariadb.mjs runs one server: temporary data
// directories, free ports on 127.0.0.1, --no-defaults, root without a
// password, small buffers. Node 1 bootstraps the cluster (--wsrep-new-cluster);
// the others join it and receive its data by rsync state transfer (SST); a
// node killed and restarted rejoins by IST from the position its data
// directory recovers. Plain Node with no dependencies.
//
//   node scripts/galera-cluster.mjs      prints the three URLs, stops on Ctrl-C
//
// Tests: const cluster = await startGaleraCluster(); cluster.urls, kill(i),
// restart(i), stop().
import { execFile, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mysqlArgs } from "./test-runner/private-mariadb.mjs";

const run = promisify(execFile);

/** Debian's galera-4 puts the provider here. */
export const GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so";
/** What the cluster needs from Debian: the provider, and mariadb-server's wsrep_sst_rsync (which pulls rsync in). */
export const GALERA_PACKAGES = ["galera-4", "mariadb-server", "mariadb-client-core", "rsync"];
/** The SST script rsync state transfer runs (package mariadb-server). */
const SST_SCRIPT = "/usr/bin/wsrep_sst_rsync";

/** How long one node may take to be Synced after it was started (an SST included). */
const SYNCED_WITHIN_MS = 120_000;
/** How often the nodes' state is polled while waiting. */
const POLL_MS = 100;
/** The status variables that say whether a node serves. */
const WSREP_STATUS = [
  "wsrep_cluster_status",
  "wsrep_cluster_size",
  "wsrep_ready",
  "wsrep_local_state_comment",
];

/**
 * The account the nodes run as: this process's own, or for root the
 * `mysql` account (created by mariadb-server), as Debian runs them. Not
 * root itself: an rsync daemon started by root (the SST joiner's) switches
 * to `nobody`, which may not write the joiner's data directory.
 */
function serverAccount() {
  if (process.getuid?.() !== 0) return null;
  try {
    const id = (flag) => Number(execFileSync("id", [flag, "mysql"], { encoding: "utf8" }).trim());
    return { name: "mysql", uid: id("-u"), gid: id("-g") };
  } catch {
    throw new Error(
      "cannot start a Galera cluster as root without a `mysql` account to run the nodes as " +
        `(install mariadb-server: sudo apt-get install -y ${GALERA_PACKAGES.join(" ")})`,
    );
  }
}

/** A directory the nodes' account owns. */
function ownedDir(path, account) {
  mkdirSync(path);
  if (account !== null) chownSync(path, account.uid, account.gid);
}

/** mariadbd lives in /usr/sbin, which is not on every user's PATH. */
function mariadbd() {
  const found = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].find((path) => existsSync(path));
  return found ?? "mariadbd";
}

/** `count` distinct ports that were free on 127.0.0.1 a moment ago (held together, so distinct). */
async function freePorts(count) {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** The last lines of a log file, for an error message. */
function tail(path, lines = 20) {
  if (!existsSync(path)) return "(no log written)";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** A clear error when something the cluster needs is not installed. */
function checkInstalled() {
  const missing = [GALERA_PROVIDER, SST_SCRIPT, "/usr/bin/rsync"].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `cannot start a Galera cluster: ${missing.join(", ")} missing; ` +
        `install them with: sudo apt-get install -y ${GALERA_PACKAGES.join(" ")}`,
    );
  }
}

/**
 * A node's wsrep status variables (names as above), or null while it does
 * not answer SQL (starting, receiving its state, or dead).
 */
async function wsrepStatus(port) {
  const names = WSREP_STATUS.map((name) => `'${name}'`).join(", ");
  try {
    const sql = `SHOW GLOBAL STATUS WHERE Variable_name IN (${names})`;
    const args = [...mysqlArgs(port, sql), "--batch", "--skip-column-names"];
    const { stdout } = await run("mysql", args, { timeout: 5000 });
    return Object.fromEntries(
      stdout
        .trim()
        .split("\n")
        .map((line) => line.split("\t"))
        .map(([name, value]) => [name.toLowerCase(), value]),
    );
  } catch {
    return null;
  }
}

/** True when `status` is a node of a Primary cluster of `size`, Synced and ready. */
function serves(status, size) {
  return (
    status !== null &&
    status.wsrep_cluster_status === "Primary" &&
    Number(status.wsrep_cluster_size) === size &&
    status.wsrep_ready === "ON" &&
    status.wsrep_local_state_comment === "Synced"
  );
}

/** The mariadbd arguments of `node` in the cluster `state` describes. */
function nodeArgs(state, node, { bootstrap }) {
  const user = state.account === null ? [] : [`--user=${state.account.name}`];
  const groupPorts = state.nodes.map((other) => other.ports.group);
  const provider = [
    `gmcast.listen_addr=tcp://127.0.0.1:${node.ports.group}`,
    `ist.recv_addr=127.0.0.1:${node.ports.ist}`,
    "gcache.size=64M",
    // A node that dies is noticed in seconds rather than the default 5-15 s.
    "evs.suspect_timeout=PT3S",
    "evs.inactive_timeout=PT6S",
    "evs.install_timeout=PT6S",
  ].join(";");
  return [
    "--no-defaults",
    ...user,
    `--datadir=${node.files.data}`,
    `--socket=${node.files.socket}`,
    `--pid-file=${node.files.pid}`,
    `--log-error=${node.files.log}`,
    "--bind-address=127.0.0.1",
    `--port=${node.ports.sql}`,
    "--skip-name-resolve",
    "--skip-log-bin",
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--binlog-format=ROW",
    "--innodb-autoinc-lock-mode=2",
    "--default-storage-engine=InnoDB",
    "--wsrep-on=ON",
    `--wsrep-provider=${GALERA_PROVIDER}`,
    `--wsrep-provider-options=${provider}`,
    "--wsrep-cluster-name=runstore-test",
    `--wsrep-cluster-address=gcomm://${groupPorts.map((port) => `127.0.0.1:${port}`).join(",")}`,
    `--wsrep-node-name=node${node.index + 1}`,
    `--wsrep-node-address=127.0.0.1:${node.ports.group}`,
    `--wsrep-node-incoming-address=127.0.0.1:${node.ports.sql}`,
    `--wsrep-sst-receive-address=127.0.0.1:${node.ports.sst}`,
    "--wsrep-sst-method=rsync",
    ...(bootstrap ? ["--wsrep-new-cluster"] : []),
  ];
}

/** A cluster's node: its files and ports, and the process while one runs. */
function newNode(base, index, ports, account) {
  const dir = join(base, `node${index + 1}`);
  ownedDir(dir, account);
  return {
    index,
    dir,
    ports,
    files: {
      data: join(dir, "data"),
      socket: join(dir, "mariadb.sock"),
      pid: join(dir, "mariadb.pid"),
      log: join(dir, "error.log"),
    },
    child: null,
    exited: null,
  };
}

/** True while `node`'s mariadbd runs. */
function running(node) {
  return node.child !== null && node.child.exitCode === null && node.child.signalCode === null;
}

/**
 * Starts `node`'s mariadbd in a process group of its own (with the SST
 * scripts it runs), unless the cluster was stopped meanwhile.
 */
function spawnNode(state, node, bootstrap, startPosition = null) {
  if (state.stopped) throw new Error("the Galera cluster was stopped");
  const args = nodeArgs(state, node, { bootstrap });
  if (startPosition !== null) args.push(`--wsrep-start-position=${startPosition}`);
  const child = spawn(mariadbd(), args, { detached: true, stdio: "ignore" });
  node.child = child;
  node.exited = new Promise((resolve) => child.once("exit", resolve));
}

/**
 * The last position `node` committed, from its data directory
 * (mariadbd --wsrep-recover, as galera_recovery does), or null when there
 * is none. After a SIGKILL grastate.dat says seqno -1; started with this
 * position the node rejoins by IST (the write sets it missed, from a
 * donor's gcache) instead of a full SST of the data directory.
 */
async function recoveredPosition(state, node) {
  const log = join(node.dir, "recover.log");
  const args = nodeArgs(state, node, { bootstrap: false });
  rmSync(log, { force: true });
  try {
    await run(mariadbd(), [...args, `--log-error=${log}`, "--wsrep-recover"], { timeout: 60_000 });
  } catch (error) {
    throw new Error(
      `mariadbd --wsrep-recover failed: ${error.message}; its log ends:\n${tail(log)}`,
    );
  }
  const found = /WSREP: Recovered position: ([0-9a-f-]{36}:-?\d+)/.exec(readFileSync(log, "utf8"));
  return found === null || found[1].endsWith(":-1") ? null : found[1];
}

/** SIGKILL to `node`'s process group: mariadbd and any SST script it started. */
function signalNode(node) {
  if (!running(node)) return;
  try {
    process.kill(-node.child.pid, "SIGKILL");
  } catch {
    node.child.kill("SIGKILL");
  }
}

/** signalNode, resolving once mariadbd exited. */
async function killNode(node) {
  if (!running(node)) return;
  signalNode(node);
  await node.exited;
}

/**
 * Waits until every node in `live` serves in a cluster of live.length
 * nodes. Fails naming the node and with its log's end when one exits or
 * the bound passes.
 */
async function waitSynced(state, live) {
  const deadline = Date.now() + SYNCED_WITHIN_MS;
  for (;;) {
    if (state.stopped) throw new Error("the Galera cluster was stopped");
    const states = await Promise.all(live.map((node) => wsrepStatus(node.ports.sql)));
    if (states.every((status) => serves(status, live.length))) return;
    const dead = live.find((node) => !running(node));
    if (dead !== undefined) {
      throw new Error(
        `Galera node${dead.index + 1} exited; its log ends:\n${tail(dead.files.log)}`,
      );
    }
    if (Date.now() > deadline) {
      const where = live
        .map((node, i) => `node${node.index + 1}: ${JSON.stringify(states[i])}`)
        .join("; ");
      const waiting = live.find((_, i) => !serves(states[i], live.length)) ?? live[0];
      throw new Error(
        `the Galera cluster was not Synced with ${live.length} nodes within ` +
          `${SYNCED_WITHIN_MS / 1000} s (${where}); node${waiting.index + 1}'s log ends:\n` +
          tail(waiting.files.log),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** mariadb-install-db into node's data directory (only node 1's: the others receive it by SST). */
async function installDb(node, account) {
  const user = account === null ? [] : [`--user=${account.name}`];
  try {
    await run("mariadb-install-db", [
      "--no-defaults",
      `--datadir=${node.files.data}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      ...user,
      "--innodb-buffer-pool-size=64M",
      "--innodb-log-file-size=16M",
    ]);
  } catch (error) {
    throw new Error(`mariadb-install-db failed: ${error.stderr || error.message}`);
  }
}

/**
 * A cluster of `size` nodes (3 by default), not started yet, like
 * private-mariadb.mjs's server: start() resolves once the cluster is
 * Primary with every node Synced; stop() kills every node and removes the
 * files, at any point, also halfway through start(); stopNow() is for
 * process exit, where nothing can be awaited. After start():
 *   urls        mysql://root@127.0.0.1:PORT of each node (no database part)
 *   nodes       [{ index, url, pid, dir, log }] (pid: the running mariadbd's, null while killed)
 *   kill(i)     SIGKILL node i; resolves once it exited (the others notice within seconds)
 *   restart(i)  starts node i again; resolves once every running node is Synced in a cluster of them all
 *   startedInMs how long start() took
 */
export function galeraCluster({ size = 3 } = {}) {
  const base = mkdtempSync(join(tmpdir(), "runstore-galera-"));
  const state = { base, size, account: null, nodes: [], stopped: false, startedInMs: null };
  const url = (node) => `mysql://root@127.0.0.1:${node.ports.sql}`;
  return {
    dir: base,
    get urls() {
      return state.nodes.map(url);
    },
    get nodes() {
      return state.nodes.map((node) => ({
        index: node.index,
        url: url(node),
        dir: node.dir,
        log: node.files.log,
        get pid() {
          return running(node) ? node.child.pid : null;
        },
      }));
    },
    get startedInMs() {
      return state.startedInMs;
    },
    start: () => startCluster(state),
    kill: (i) => killNode(nodeAt(state.nodes, i)),
    restart: (i) => restartNode(state, i),
    stop: () => stopCluster(state),
    stopNow: () => stopClusterNow(state),
  };
}

/** galeraCluster(options), started; stopped again when start fails. */
export async function startGaleraCluster(options) {
  const cluster = galeraCluster(options);
  try {
    await cluster.start();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function startCluster(state) {
  const startedAt = Date.now();
  checkInstalled();
  const account = serverAccount();
  state.account = account;
  // The nodes' account must reach its directories under this one.
  if (account !== null) chmodSync(state.base, 0o755);
  const ports = await freePorts(state.size * 4);
  state.nodes = Array.from({ length: state.size }, (_, i) => {
    const [sql, group, ist, sst] = ports.slice(i * 4, i * 4 + 4);
    return newNode(state.base, i, { sql, group, ist, sst }, account);
  });
  const [first, ...others] = state.nodes;
  await installDb(first, account);
  for (const node of others) ownedDir(node.files.data, account);
  spawnNode(state, first, true);
  await waitSynced(state, [first]);
  // Both join at once: the donor serves one SST at a time, and the second
  // joiner asks again each second until it is free.
  for (const node of others) spawnNode(state, node, false);
  await waitSynced(state, state.nodes);
  state.startedInMs = Date.now() - startedAt;
}

async function restartNode(state, i) {
  const node = nodeAt(state.nodes, i);
  if (running(node)) throw new Error(`Galera node${i + 1} is running; kill it first`);
  spawnNode(state, node, false, await recoveredPosition(state, node));
  await waitSynced(state, state.nodes.filter(running));
}

async function stopCluster(state) {
  state.stopped = true;
  await Promise.all(state.nodes.map(killNode));
  rmSync(state.base, { recursive: true, force: true });
}

function stopClusterNow(state) {
  state.stopped = true;
  for (const node of state.nodes) signalNode(node);
  rmSync(state.base, { recursive: true, force: true });
}

/** nodes[i], or an error naming the bad index. */
function nodeAt(nodes, i) {
  const node = nodes[i];
  if (!Number.isInteger(i) || node === undefined) {
    throw new Error(`no Galera node ${i}: the cluster has nodes 0 to ${nodes.length - 1}`);
  }
  return node;
}

/** The CLI: start, print the URLs, wait for Ctrl-C (or SIGTERM), stop. */
async function main() {
  const cluster = galeraCluster();
  process.on("exit", () => cluster.stopNow());
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      console.error(`\ngalera-cluster: ${signal}: stopping`);
      cluster.stop().then(() => process.exit(0));
    });
  }
  console.log(`galera-cluster: starting 3 nodes in ${cluster.dir}`);
  try {
    await cluster.start();
  } catch (error) {
    console.error(`galera-cluster: ${error.message}`);
    await cluster.stop();
    process.exit(1);
  }
  console.log(`galera-cluster: 3 nodes Synced in ${(cluster.startedInMs / 1000).toFixed(1)} s`);
  for (const node of cluster.nodes) {
    console.log(`${node.url}  (pid ${node.pid}, log ${node.log})`);
  }
  console.log("galera-cluster: Ctrl-C stops the nodes and removes their files");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
