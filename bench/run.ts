import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { CAPACITY_SIZES, capacityBenchStep } from "./capacity.js";
import { LIFECYCLE_SIZES, lifecycleBenchStep } from "./lifecycle.js";
import type { ClientTransport, LoadSpec } from "./load.js";
import { cpuWindow, median, runLoadProcesses } from "./load-processes.js";
import { memoryBoundStep } from "./memory-bound.js";
import { type Served, serve as serveWith, statusMb } from "./serve.js";
import { serverPid } from "./server-pid.js";

// `npm run bench`: every workload × concurrency against each path, load
// from separate processes, medians of several rounds, each figure next to
// its baseline from the same run. `npm run bench -- --smoke` is the few-second
// version CI runs so the bench cannot rot; no timing is ever pass/fail.
// Then the memory store's RSS under MEMORY_MAX_RUNS (bench/memory-bound.ts)
// the lifecycles of a Python caller (bench/lifecycle.ts) and the capacity in
// active runs (bench/capacity.ts).

const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    rounds: { type: "string" },
    "duration-ms": { type: "string" },
    concurrency: { type: "string" },
    workload: { type: "string" },
    backend: { type: "string" },
    loaders: { type: "string" },
    "node-flags": { type: "string" },
    "client-transport": { type: "string" },
    /** Leave out the memory store's MEMORY_MAX_RUNS step (bench/memory-bound.ts). */
    "skip-memory-bound": { type: "boolean", default: false },
    /** Leave out the Python caller's lifecycle step (bench/lifecycle.ts). */
    "skip-lifecycle": { type: "boolean", default: false },
    /** Leave out the capacity step (bench/capacity.ts). */
    "skip-capacity": { type: "boolean", default: false },
  },
});
/** Extra Node/V8 flags for every process the bench starts (servers, load), to measure GC settings. */
const NODE_FLAGS = flags["node-flags"]?.split(" ").filter(Boolean) ?? [];
const smoke = flags.smoke ?? false;
const list = (value: string | undefined, fallback: string[]) => value?.split(",") ?? fallback;
const ROUNDS = Number(flags.rounds ?? (smoke ? 1 : 3));
const DURATION_MS = Number(flags["duration-ms"] ?? (smoke ? 300 : 1500));
const CONCURRENCY = list(flags.concurrency, smoke ? ["16"] : ["1", "16", "64"]).map(Number);
const WORKLOADS = list(flags.workload, [
  "get",
  "put",
  "lifecycle",
  "aggregate",
]) as LoadSpec["workload"][];
const BACKENDS = list(flags.backend, ["memory", "mysql"]);
/** RemoteRunStore's gRPC transports (`--client-transport`), one path each. */
const CLIENT_TRANSPORTS: Record<ClientTransport, string> = {
  sdk: "the one RemoteRunStore builds itself",
  connect: "connect-node's createGrpcTransport",
};
const CLIENT_TRANSPORT = list(flags["client-transport"], ["sdk"]) as ClientTransport[];
for (const kind of CLIENT_TRANSPORT) {
  if (!(kind in CLIENT_TRANSPORTS)) {
    throw new TypeError(
      `--client-transport: ${kind} is not one of ${Object.keys(CLIENT_TRANSPORTS).join(", ")}`,
    );
  }
}
/** Connections to MariaDB, the same for the server and the in-process MysqlRunStore. */
const MYSQL_POOL_SIZE = 64;
/** Load processes per measurement (one at concurrency 1): the server, not one client process, must be the limit. */
const LOADERS = Number(flags.loaders ?? 2);
const MYSQL_SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

/**
 * A server under test, started with the bench's `--node-flags`. The
 * workloads here are closed loops at a fixed concurrency that measure what a
 * call costs; the server's shedding on event-loop lag (OVERLOAD_LAG_MS, on
 * by default) would refuse calls on a busy shared machine that the grpc-js
 * load does not retry, so it is off here. The capacity step
 * (bench/capacity.ts) measures overload with the defaults.
 */
const serve = (name: string, args: string[], env: Record<string, string>) =>
  serveWith(name, args, { OVERLOAD_LAG_MS: "0", ...env }, NODE_FLAGS);

function peakRssMb(pid: number): number {
  return statusMb(pid, "VmHWM");
}

/** One path through which a workload is driven. */
interface Path {
  label: string;
  client: LoadSpec["client"];
  clientTransport?: ClientTransport;
  target: () => string;
  server?: () => Served;
  backend: "memory" | "mysql";
}

interface Row {
  workload: string;
  concurrency: number;
  path: string;
  backend: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRpc: number | null;
  /** CPU of the load processes per operation (for in-process paths: the store's own cost). */
  loadCpuUsPerOp: number;
  /** CPU of the database server per operation (MySQL rows, when it runs on this machine). */
  dbCpuUsPerOp: number | null;
  /** Share of the machine's CPU left idle while measuring: near 0, the machine was the limit. */
  machineIdlePct: number;
  errors: number;
}

async function main(): Promise<void> {
  const database = `runstore_bench_${process.pid}`;
  const admin = await createConnection({ uri: MYSQL_SERVER });
  await admin.query(`CREATE DATABASE \`${database}\``);
  const mysqlUrl = `${MYSQL_SERVER}/${database}`;
  const dbPid = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(MYSQL_SERVER).hostname)
    ? await serverPid(MYSQL_SERVER)
    : null;
  const servers: Served[] = [];
  try {
    // Each server joins `servers` as it starts, so the finally block stops it.
    const started = async (server: Promise<Served>) => {
      const s = await server;
      servers.push(s);
      return s;
    };
    const reference = await started(serve("reference", ["bench/reference-server.ts"], {}));
    const onMemory = await started(serve("runstore-memory", ["dist/main.js"], {}));
    const onMysql = await started(
      serve("runstore-mysql", ["dist/main.js"], {
        DATABASE_URL: mysqlUrl,
        DB_POOL_SIZE: String(MYSQL_POOL_SIZE),
      }),
    );
    /** One RemoteRunStore path per `--client-transport`. */
    const remotePaths = (server: Served, backend: Path["backend"]) =>
      CLIENT_TRANSPORT.map(
        (kind): Path => ({
          label:
            kind === "sdk" ? "RemoteRunStore → runstore" : `RemoteRunStore (${kind}) → runstore`,
          client: "remote",
          clientTransport: kind,
          target: () => server.url,
          server: () => server,
          backend,
        }),
      );
    const paths: Path[] = [
      { label: "in-process MemoryRunStore", client: "memory", target: () => "", backend: "memory" },
      {
        label: "grpc-js → grpc-js reference",
        client: "grpc-js",
        target: () => reference.url,
        server: () => reference,
        backend: "memory",
      },
      {
        label: "grpc-js → runstore",
        client: "grpc-js",
        target: () => onMemory.url,
        server: () => onMemory,
        backend: "memory",
      },
      ...remotePaths(onMemory, "memory"),
      {
        label: "in-process MysqlRunStore",
        client: "mysql",
        target: () => mysqlUrl,
        backend: "mysql",
      },
      {
        label: "grpc-js → runstore",
        client: "grpc-js",
        target: () => onMysql.url,
        server: () => onMysql,
        backend: "mysql",
      },
      ...remotePaths(onMysql, "mysql"),
    ];
    const rows: Row[] = [];
    let round = 0;
    /** One round of one path: its figures and the server's and database's CPU per call. */
    const measure = async (path: Path, workload: LoadSpec["workload"], concurrency: number) => {
      const db = path.backend === "mysql" ? dbPid : null;
      const pid = path.server?.().child.pid;
      const serverCpu = cpuWindow(pid === undefined ? [] : [pid]);
      const dbCpuWindow = cpuWindow(db === null ? [] : [db]);
      const result = await runLoadProcesses(
        {
          client: path.client,
          ...(path.clientTransport === undefined ? {} : { clientTransport: path.clientTransport }),
          target: path.target(),
          workload,
          concurrency,
          durationMs: DURATION_MS,
          mysqlPoolSize: MYSQL_POOL_SIZE,
          tag: `b${round++}`,
        },
        // In-process baselines run in one process: they have no server to saturate.
        path.server ? LOADERS : 1,
        {
          start: () => {
            serverCpu.start();
            dbCpuWindow.start();
          },
          end: () => {
            serverCpu.end();
            dbCpuWindow.end();
          },
        },
        NODE_FLAGS,
      );
      const cpu = pid === undefined ? null : serverCpu.micros() / result.rpcs;
      const dbCpu = db === null ? null : dbCpuWindow.micros() / Math.max(1, result.ops);
      return { ...result, cpu, dbCpu };
    };
    for (const workload of WORKLOADS) {
      for (const concurrency of CONCURRENCY) {
        const selected = paths.filter((p) => BACKENDS.includes(p.backend));
        // Rounds alternate between the paths, so a neighbour's load on this
        // shared machine falls on all of them alike rather than on one.
        const results = new Map(
          selected.map((p) => [p, [] as Awaited<ReturnType<typeof measure>>[]]),
        );
        for (let r = 0; r < ROUNDS; r++) {
          for (const path of selected)
            results.get(path)?.push(await measure(path, workload, concurrency));
        }
        for (const path of selected) {
          const rounds = results.get(path) ?? [];
          rows.push({
            workload,
            concurrency,
            path: path.label,
            backend: path.backend,
            opsPerSec: median(rounds.map((x) => x.ops / x.seconds)),
            p50Ms: median(rounds.map((x) => x.p50Ms)),
            p99Ms: median(rounds.map((x) => x.p99Ms)),
            serverCpuUsPerRpc: path.server ? median(rounds.map((x) => x.cpu ?? 0)) : null,
            loadCpuUsPerOp: median(rounds.map((x) => x.loadCpuUs / Math.max(1, x.ops))),
            dbCpuUsPerOp:
              path.backend === "mysql" && dbPid !== null
                ? median(rounds.map((x) => x.dbCpu ?? 0))
                : null,
            machineIdlePct: median(rounds.map((x) => 100 * x.machineIdle)),
            errors: rounds.reduce((n, x) => n + x.errors, 0),
          });
        }
        console.error(`${workload} c=${concurrency}: done`);
      }
    }
    const rss = Object.fromEntries(servers.map((s) => [s.name, peakRssMb(s.child.pid as number)]));
    report(rows, rss);
  } finally {
    for (const server of servers) server.child.kill("SIGTERM");
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
  }
}

/**
 * The most operations per second a remote path could reach on this machine if
 * the server's transport cost no CPU at all: every core busy with this path's
 * client CPU per operation plus what the same operation costs in-process (the
 * store's own work and, on MySQL, the database's). A remote ratio can only
 * approach `ceiling / in-process ops/s`, whatever the server does.
 */
function ceilingOpsPerSec(remote: Row, local: Row): number {
  const perOp = remote.loadCpuUsPerOp + local.loadCpuUsPerOp + (local.dbCpuUsPerOp ?? 0);
  return (cpus().length * 1_000_000) / perOp;
}

function report(rows: Row[], rss: Record<string, number>): void {
  const base = (row: Row, path: string) =>
    rows.find(
      (r) =>
        r.workload === row.workload &&
        r.concurrency === row.concurrency &&
        r.backend === row.backend &&
        r.path === path,
    );
  const fmt = (n: number, digits = 1) => n.toFixed(digits);
  const lines = [
    "| workload | conc | backend | path | ops/s | × in-process | ceiling × in-process | p50 ms | p99 ms | p99 × in-process | server CPU µs/RPC | × grpc-js reference | load CPU µs/op | db CPU µs/op | machine idle % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const local = base(
      row,
      `in-process ${row.backend === "memory" ? "MemoryRunStore" : "MysqlRunStore"}`,
    );
    const reference = rows.find(
      (r) =>
        r.workload === row.workload &&
        r.concurrency === row.concurrency &&
        r.path === "grpc-js → grpc-js reference",
    );
    const opsRatio = local && local !== row ? fmt(row.opsPerSec / local.opsPerSec, 2) : "—";
    const ceiling =
      local && local !== row ? fmt(ceilingOpsPerSec(row, local) / local.opsPerSec, 2) : "—";
    const p99Ratio = local && local !== row ? fmt(row.p99Ms / local.p99Ms, 2) : "—";
    const cpuRatio =
      row.serverCpuUsPerRpc !== null &&
      reference?.serverCpuUsPerRpc &&
      row.backend === "memory" &&
      reference !== row
        ? fmt(row.serverCpuUsPerRpc / reference.serverCpuUsPerRpc, 2)
        : "—";
    lines.push(
      `| ${row.workload} | ${row.concurrency} | ${row.backend} | ${row.path} | ${fmt(row.opsPerSec, 0)} | ${opsRatio} | ${ceiling} | ${fmt(row.p50Ms, 2)} | ${fmt(row.p99Ms, 2)} | ${p99Ratio} | ${row.serverCpuUsPerRpc === null ? "—" : fmt(row.serverCpuUsPerRpc, 0)} | ${cpuRatio} | ${fmt(row.loadCpuUsPerOp, 0)} | ${row.dbCpuUsPerOp === null ? "—" : fmt(row.dbCpuUsPerOp, 0)} | ${fmt(row.machineIdlePct, 0)} |`,
    );
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const rssLine = `Server peak RSS (MB): ${Object.entries(rss)
    .map(([k, v]) => `${k} ${fmt(v, 0)}`)
    .join(", ")}`;
  console.log(
    [
      `Machine: ${machine}; ${ROUNDS} rounds of ${DURATION_MS} ms, medians; up to ${LOADERS} load processes per remote measurement`,
      "",
      ...lines,
      "",
      rssLine,
    ].join("\n"),
  );
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/${smoke ? "smoke" : "latest"}.json`,
    `${JSON.stringify({ machine, rounds: ROUNDS, durationMs: DURATION_MS, rows, peakRssMb: rss }, null, 2)}\n`,
  );
}

await main();
// After the workloads' servers have stopped, so the memory servers have the machine.
if (!flags["skip-memory-bound"]) await memoryBoundStep(smoke);
if (!flags["skip-lifecycle"]) {
  const sizes = LIFECYCLE_SIZES[smoke ? "smoke" : "full"];
  const backends = sizes.backends.filter((b) => b === "reference" || BACKENDS.includes(b));
  await lifecycleBenchStep(smoke, { ...sizes, backends });
}
// Last, each of its steps on a fresh server, on the backends this run measured.
if (!flags["skip-capacity"]) {
  const sizes = CAPACITY_SIZES[smoke ? "smoke" : "full"];
  await capacityBenchStep(smoke, { ...sizes, backends: BACKENDS as typeof sizes.backends });
}
