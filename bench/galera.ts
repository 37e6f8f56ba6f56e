import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { type GaleraCluster, startGaleraCluster } from "../scripts/galera-cluster.mjs";
import { migrate } from "../src/stores/mysql-migrations.js";
import type { LoadSpec } from "./load.js";
import { cpuWindow, type LoadFigures, median, runLoadProcesses } from "./load-processes.js";
import { type Served, serve } from "./serve.js";
import { serverPid } from "./server-pid.js";

// `npm run bench:galera`: the same workloads through one and three replicas
// on a local 3-node Galera cluster (scripts/galera-cluster.mjs) next to the
// same on one MariaDB, in one run, so the cost of certification and of the
// causality checks (wsrep_sync_wait = 3) is known. The in-process rows
// separate the two: MysqlRunStore on a Galera node as it runs, and with the
// causality checks turned off for the bench (never how the store runs).
// Figures only: two cores shared by every node, replica and load process
// cannot show scaling, so three replicas here measure overhead, not capacity.
//
//   BENCH_MYSQL_URL    the one MariaDB (default mysql://root@127.0.0.1:3306)
//   BENCH_GALERA_URLS  a running cluster's three node URLs, comma-separated
//                      (default: start one for the run and stop it after)

const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    rounds: { type: "string" },
    "duration-ms": { type: "string" },
    concurrency: { type: "string" },
    workload: { type: "string" },
    loaders: { type: "string" },
  },
});
const smoke = flags.smoke ?? false;
const list = (value: string | undefined, fallback: string[]) => value?.split(",") ?? fallback;
const ROUNDS = Number(flags.rounds ?? (smoke ? 1 : 3));
const DURATION_MS = Number(flags["duration-ms"] ?? (smoke ? 300 : 1500));
const CONCURRENCY = list(flags.concurrency, ["16"]).map(Number);
const WORKLOADS = list(
  flags.workload,
  smoke ? ["get"] : ["get", "put", "lifecycle"],
) as LoadSpec["workload"][];
/** Load processes per remote measurement (in-process ones run in one). */
const LOADERS = Number(flags.loaders ?? 2);
/** Each replica's pool and the in-process store's: three replicas on one MariaDB stay under max_connections. */
const POOL_SIZE = 32;
const MYSQL_SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

/** Where a path's data lives: the one MariaDB or the cluster. */
type Database = "one MariaDB" | "Galera";

/** One way the workloads are driven. */
interface Path {
  label: string;
  database: Database;
  client: "mysql" | "remote";
  /** The database URL (in-process) or the replicas' URLs (remote). */
  target: () => string;
  replicas: () => Served[];
  /** false: in-process with the causality checks off. */
  causalReads?: boolean;
}

interface Row {
  workload: string;
  concurrency: number;
  path: string;
  database: Database;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the path's replica processes, summed, per RPC. */
  replicaCpuUsPerRpc: number | null;
  /** CPU of the database processes (every node of the cluster), summed, per operation. */
  dbCpuUsPerOp: number | null;
  /** wsrep_local_cert_failures + wsrep_local_bf_aborts over every node, summed over the rounds. */
  certConflicts: number | null;
  machineIdlePct: number;
  errors: number;
}

/** Certification failures and brute-force aborts so far, summed over `urls`. */
async function conflictsSoFar(urls: readonly string[]): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    const connection = await createConnection({ uri: url });
    try {
      const [rows] = await connection.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
      );
      for (const row of rows as { Value: string }[]) sum += Number(row.Value);
    } finally {
      await connection.end();
    }
  }
  return sum;
}

/** A database of this run's own on `server` (no database part), migrated; its URL. */
async function createDatabase(server: string, name: string): Promise<string> {
  const admin = await createConnection({ uri: server });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  const url = `${server}/${name}`;
  await migrate({ url });
  return url;
}

async function dropDatabase(server: string, name: string): Promise<void> {
  const admin = await createConnection({ uri: server });
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.end();
}

/** The cluster's node URLs: BENCH_GALERA_URLS's, or a cluster started for the run. */
async function clusterNodes(): Promise<{ urls: string[]; cluster: GaleraCluster | null }> {
  const given = process.env.BENCH_GALERA_URLS;
  if (given !== undefined && given !== "") {
    return { urls: given.split(",").map((url) => url.trim()), cluster: null };
  }
  console.error("starting a 3-node Galera cluster (scripts/galera-cluster.mjs)");
  const cluster = await startGaleraCluster();
  console.error(`cluster Synced in ${((cluster.startedInMs ?? 0) / 1000).toFixed(1)} s`);
  return { urls: cluster.urls, cluster };
}

/** The seven paths: in-process and through 1 and 3 replicas, on one MariaDB and on the cluster. */
function paths(
  mysqlUrl: string,
  nodeUrls: readonly string[],
  onMariadb: Served[],
  onGalera: Served[],
): Path[] {
  const urls = (servers: Served[]) => servers.map((server) => server.url).join(",");
  const remote = (database: Database, servers: Served[]): Path => ({
    label: `RemoteRunStore → ${servers.length === 1 ? "1 replica" : `${servers.length} replicas`}`,
    database,
    client: "remote",
    target: () => urls(servers),
    replicas: () => servers,
  });
  const inProcess = (database: Database, target: string, causalReads = true): Path => ({
    label: causalReads
      ? "in-process MysqlRunStore"
      : "in-process MysqlRunStore, causality checks off",
    database,
    client: "mysql",
    target: () => target,
    replicas: () => [],
    causalReads,
  });
  return [
    inProcess("one MariaDB", mysqlUrl),
    inProcess("Galera", nodeUrls[0] ?? ""),
    inProcess("Galera", nodeUrls[0] ?? "", false),
    remote("one MariaDB", onMariadb.slice(0, 1)),
    remote("one MariaDB", onMariadb),
    remote("Galera", onGalera.slice(0, 1)),
    remote("Galera", onGalera),
  ];
}

interface Measured extends LoadFigures {
  replicaCpuUs: number;
  dbCpuUs: number;
  conflicts: number;
}

async function main(): Promise<void> {
  const name = `runstore_bench_galera_${process.pid}`;
  const { urls: nodes, cluster } = await clusterNodes();
  const servers: Served[] = [];
  try {
    const mysqlUrl = await createDatabase(MYSQL_SERVER, name);
    // Through node 1: Galera replicates the database and the schema.
    const nodeUrls = [await createDatabase(nodes[0] ?? "", name)];
    nodeUrls.push(...nodes.slice(1).map((node) => `${node}/${name}`));
    const replica = async (label: string, url: string) => {
      const server = await serve(label, ["dist/main.js"], {
        DATABASE_URL: url,
        DB_POOL_SIZE: String(POOL_SIZE),
        // Closed loops measuring cost, as in bench/run.ts: no shedding on lag.
        OVERLOAD_LAG_MS: "0",
      });
      servers.push(server);
      return server;
    };
    const onMariadb = [];
    for (const i of [1, 2, 3]) onMariadb.push(await replica(`mariadb-replica-${i}`, mysqlUrl));
    const onGalera = [];
    for (const [i, url] of nodeUrls.entries()) {
      onGalera.push(await replica(`galera-replica-${i + 1}`, url));
    }
    const dbPids = {
      "one MariaDB": [await serverPid(MYSQL_SERVER)],
      Galera: await Promise.all(nodes.map(serverPid)),
    };
    const rows = await measureAll(paths(mysqlUrl, nodeUrls, onMariadb, onGalera), dbPids, nodes);
    report(rows, cluster === null ? "BENCH_GALERA_URLS" : "started for the run");
  } finally {
    for (const server of servers) server.child.kill("SIGTERM");
    await dropDatabase(MYSQL_SERVER, name).catch(() => {});
    await dropDatabase(nodes[0] ?? "", name).catch(() => {});
    await cluster?.stop();
  }
}

/** Every workload × concurrency × path, rounds alternating between the paths. */
async function measureAll(
  all: Path[],
  dbPids: Record<Database, (number | null)[]>,
  nodes: readonly string[],
): Promise<Row[]> {
  const rows: Row[] = [];
  let round = 0;
  const measure = async (path: Path, workload: LoadSpec["workload"], concurrency: number) => {
    const replicaCpu = cpuWindow(path.replicas().map((server) => server.child.pid as number));
    const pids = dbPids[path.database].filter((pid): pid is number => pid !== null);
    const dbCpu = cpuWindow(pids);
    const conflictsBefore = path.database === "Galera" ? await conflictsSoFar(nodes) : 0;
    const figures = await runLoadProcesses(
      {
        client: path.client,
        target: path.target(),
        workload,
        concurrency,
        durationMs: DURATION_MS,
        mysqlPoolSize: POOL_SIZE,
        ...(path.causalReads === false ? { causalReads: false } : {}),
        tag: `g${round++}`,
      },
      path.client === "remote" ? LOADERS : 1,
      {
        start: () => {
          replicaCpu.start();
          dbCpu.start();
        },
        end: () => {
          replicaCpu.end();
          dbCpu.end();
        },
      },
    );
    const conflicts =
      path.database === "Galera" ? (await conflictsSoFar(nodes)) - conflictsBefore : 0;
    return {
      ...figures,
      replicaCpuUs: replicaCpu.micros(),
      dbCpuUs: pids.length === 0 ? Number.NaN : dbCpu.micros(),
      conflicts,
    };
  };
  for (const workload of WORKLOADS) {
    for (const concurrency of CONCURRENCY) {
      const results = new Map(all.map((path) => [path, [] as Measured[]]));
      for (let r = 0; r < ROUNDS; r++) {
        for (const path of all) results.get(path)?.push(await measure(path, workload, concurrency));
      }
      for (const path of all) rows.push(row(path, workload, concurrency, results.get(path) ?? []));
      console.error(`${workload} c=${concurrency}: done`);
    }
  }
  return rows;
}

/** One path's medians over its rounds. */
function row(path: Path, workload: string, concurrency: number, rounds: Measured[]): Row {
  const dbCpu = median(rounds.map((x) => x.dbCpuUs / Math.max(1, x.ops)));
  return {
    workload,
    concurrency,
    path: path.label,
    database: path.database,
    opsPerSec: median(rounds.map((x) => x.ops / x.seconds)),
    p50Ms: median(rounds.map((x) => x.p50Ms)),
    p99Ms: median(rounds.map((x) => x.p99Ms)),
    replicaCpuUsPerRpc:
      path.client === "remote"
        ? median(rounds.map((x) => x.replicaCpuUs / Math.max(1, x.rpcs)))
        : null,
    dbCpuUsPerOp: Number.isNaN(dbCpu) ? null : dbCpu,
    certConflicts: path.database === "Galera" ? rounds.reduce((n, x) => n + x.conflicts, 0) : null,
    machineIdlePct: median(rounds.map((x) => 100 * x.machineIdle)),
    errors: rounds.reduce((n, x) => n + x.errors, 0),
  };
}

function report(rows: Row[], clusterSource: string): void {
  const fmt = (n: number | null, digits = 0) => (n === null ? "—" : n.toFixed(digits));
  /** The same path on one MariaDB (the checks-off row against the in-process one). */
  const baseline = (row: Row) =>
    rows.find(
      (r) =>
        r.workload === row.workload &&
        r.concurrency === row.concurrency &&
        r.database === "one MariaDB" &&
        r.path === row.path.replace(", causality checks off", ""),
    );
  const lines = [
    "| workload | conc | database | path | ops/s | × one MariaDB | p50 ms | p99 ms | replica CPU µs/RPC | db CPU µs/op | cert. conflicts | errors | machine idle % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const base = baseline(row);
    const ratio = base && base !== row ? fmt(row.opsPerSec / base.opsPerSec, 2) : "—";
    lines.push(
      `| ${row.workload} | ${row.concurrency} | ${row.database} | ${row.path} | ${fmt(row.opsPerSec)} | ${ratio} | ${fmt(row.p50Ms, 2)} | ${fmt(row.p99Ms, 2)} | ${fmt(row.replicaCpuUsPerRpc)} | ${fmt(row.dbCpuUsPerOp)} | ${fmt(row.certConflicts)} | ${row.errors} | ${fmt(row.machineIdlePct)} |`,
    );
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  console.log(
    [
      `Machine: ${machine}; ${ROUNDS} rounds of ${DURATION_MS} ms, medians; up to ${LOADERS} load processes per remote measurement; cluster ${clusterSource}`,
      "Two cores run every node, replica and load process: three replicas show overhead, not scaling.",
      "",
      ...lines,
    ].join("\n"),
  );
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/${smoke ? "galera-smoke" : "galera"}.json`,
    `${JSON.stringify({ machine, rounds: ROUNDS, durationMs: DURATION_MS, rows }, null, 2)}\n`,
  );
}

await main();
