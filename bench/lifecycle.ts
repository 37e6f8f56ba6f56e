import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ensurePythonPackages } from "./capacity.js";
import { cpuWindow, idleWindow, median, quantile } from "./load-processes.js";
import { scratchDatabase } from "./scratch-database.js";
import { serve } from "./serve.js";

// The agent runtime's view of whole runs (issue 18's first table): one Python
// asyncio process with GrpcRunStore runs agent-run lifecycles back to back
// from `concurrency` workers (bench/lifecycle_caller.py: put, start, five
// progress snapshots, completion, get, list_by_thread: ten calls), against a
// fresh server at its defaults per measurement, memory and MariaDB, and the
// grpc-js reference server (memory) as the same run's baseline.
// Lifecycles per second, lifecycle p50/p99 and the CPU per call of caller,
// server and database over the measured window; p99 and server CPU also as
// ratios to the reference server's median at the same concurrency. Part of `npm run bench`;
// alone (after `npm run build`): `node --conditions=source --import tsx
// bench/lifecycle.ts [--smoke] [--backend reference,memory,mysql] [--concurrency 1,64]
// [--duration-ms N] [--rounds N]`.

/** Our server on each backend, and the grpc-js reference server (bench/reference-server.ts, memory): the same run's baseline. */
type Backend = "reference" | "memory" | "mysql";

export interface LifecycleOptions {
  backends: Backend[];
  concurrencies: number[];
  warmupMs: number;
  durationMs: number;
  /** Measurements per backend × concurrency, each on a fresh server, one after the other. */
  rounds: number;
}

const FULL: LifecycleOptions = {
  backends: ["reference", "memory", "mysql"],
  concurrencies: [1, 64],
  warmupMs: 2000,
  durationMs: 10_000,
  rounds: 3,
};

export const LIFECYCLE_SIZES: Record<"full" | "smoke", LifecycleOptions> = {
  full: FULL,
  // Concurrency 8, not 64, in the smoke: at 64 a lifecycle outlasts its 0.5 s window.
  smoke: { ...FULL, concurrencies: [1, 8], warmupMs: 100, durationMs: 500, rounds: 1 },
};

/** One measurement's figures. */
export interface LifecycleFigures {
  backend: Backend;
  concurrency: number;
  round: number;
  lifecyclesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Calls that failed in the window, by gRPC status (their lifecycles are not counted). */
  failed: Record<string, number>;
  callerCpuUsPerCall: number;
  serverCpuUsPerCall: number;
  dbCpuUsPerCall: number | null;
  machineIdlePct: number;
}

interface CallerResult {
  latenciesUs: number[];
  calls: number;
  failed: Record<string, number>;
  callerCpuUs: number;
}

/** Runs the Python caller to its end, bracketing server and database CPU by its window lines. */
async function runCaller(spec: object, pids: { server: number; db: number | null }) {
  const child = spawn("/usr/bin/python3", ["bench/lifecycle_caller.py", JSON.stringify(spec)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, PYTHONPATH: resolve("python") },
  });
  const server = cpuWindow([pids.server]);
  const db = cpuWindow(pids.db === null ? [] : [pids.db]);
  const machine = idleWindow();
  const windows = [server, db, machine];
  const exited = new Promise<number | null>((done, fail) => {
    child.once("exit", done);
    child.once("error", fail);
  });
  let result: CallerResult | null = null;
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === "measuring") for (const w of windows) w.start();
      else if (line === "measured") for (const w of windows) w.end();
      else if (line.startsWith("{")) result = JSON.parse(line) as CallerResult;
    }
  } catch (error) {
    child.kill("SIGKILL"); // not left behind when its lines cannot be read
    throw error;
  }
  const code = await exited;
  if (result === null || code !== 0)
    throw new Error(`lifecycle caller exited ${code} without figures`);
  return {
    result,
    serverUs: server.micros(),
    dbUs: pids.db === null ? null : db.micros(),
    idle: machine.share(),
  };
}

/** One measurement: a fresh server, one caller at `concurrency`. */
async function measure(
  options: LifecycleOptions,
  at: { backend: Backend; concurrency: number; round: number },
  env: Record<string, string>,
  dbPid: number | null,
): Promise<LifecycleFigures> {
  const server =
    at.backend === "reference"
      ? await serve("grpc-js reference", ["bench/reference-server.ts"], {})
      : await serve(`runstore-${at.backend}`, ["dist/main.js"], env);
  try {
    const spec = {
      target: server.url,
      concurrency: at.concurrency,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      tag: `lc-${at.backend}-${at.concurrency}-${at.round}-${Date.now().toString(36)}`,
    };
    const db = at.backend === "mysql" ? dbPid : null;
    const run = await runCaller(spec, { server: server.child.pid as number, db });
    const sorted = [...run.result.latenciesUs].sort((a, b) => a - b);
    const calls = Math.max(1, run.result.calls);
    return {
      ...at,
      lifecyclesPerSec: sorted.length / (options.durationMs / 1000),
      // None finished in the window (a smoke window shorter than one lifecycle): no latency.
      p50Ms: sorted.length === 0 ? Number.NaN : quantile(sorted, 0.5) / 1000,
      p99Ms: sorted.length === 0 ? Number.NaN : quantile(sorted, 0.99) / 1000,
      failed: run.result.failed,
      callerCpuUsPerCall: run.result.callerCpuUs / calls,
      serverCpuUsPerCall: run.serverUs / calls,
      dbCpuUsPerCall: run.dbUs === null ? null : run.dbUs / calls,
      machineIdlePct: run.idle * 100,
    };
  } finally {
    server.child.kill("SIGKILL");
  }
}

const fixed = (n: number | null, digits = 0) =>
  n === null || !Number.isFinite(n) ? "—" : n.toFixed(digits);

/** The reference server's median of `pick` at `concurrency`, or null without reference rows. */
function referenceMedian(
  rows: readonly LifecycleFigures[],
  concurrency: number,
  pick: (r: LifecycleFigures) => number,
): number | null {
  const values = rows
    .filter((r) => r.backend === "reference" && r.concurrency === concurrency)
    .map(pick);
  return values.length === 0 ? null : median(values);
}

/** `value` as a ratio to the reference's median at the same concurrency ("—" for reference rows). */
function ratio(
  rows: readonly LifecycleFigures[],
  r: LifecycleFigures,
  pick: (r: LifecycleFigures) => number,
): string {
  const base = r.backend === "reference" ? null : referenceMedian(rows, r.concurrency, pick);
  return base === null || base === 0 || !Number.isFinite(base) ? "—" : fixed(pick(r) / base, 2);
}

/** Failed calls by code ("UNAVAILABLE 3"), or "—". */
function failedText(failed: Record<string, number> | undefined): string {
  const parts = Object.entries(failed ?? {}).map(([code, n]) => `${code} ${n}`);
  return parts.length === 0 ? "—" : parts.join(", ");
}

/** The table: one row per measurement, p99 and server CPU also as ratios to the reference server's. */
export function lifecycleTable(rows: readonly LifecycleFigures[]): string[] {
  const p99 = (r: LifecycleFigures) => r.p99Ms;
  const server = (r: LifecycleFigures) => r.serverCpuUsPerCall;
  return [
    "| backend | concurrency | round | lifecycles/s | p50 ms | p99 ms | p99 × reference | failed calls | caller CPU µs/call | server CPU µs/call | server CPU × reference | db CPU µs/call | machine idle % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.backend} | ${r.concurrency} | ${r.round} | ${fixed(r.lifecyclesPerSec, 1)} | ${fixed(r.p50Ms, 2)} | ${fixed(r.p99Ms, 2)} | ${ratio(rows, r, p99)} | ${failedText(r.failed)} | ${fixed(r.callerCpuUsPerCall)} | ${fixed(r.serverCpuUsPerCall)} | ${ratio(rows, r, server)} | ${fixed(r.dbCpuUsPerCall)} | ${fixed(r.machineIdlePct)} |`,
    ),
  ];
}

/** Every backend × concurrency × round, MySQL on a scratch database. */
export async function lifecycleBench(options: LifecycleOptions): Promise<LifecycleFigures[]> {
  if (!existsSync("dist/main.js")) throw new Error("lifecycle: run `npm run build` first");
  await ensurePythonPackages();
  const scratch = await scratchDatabase(
    `runstore_lifecycle_${process.pid}`,
    options.backends.includes("mysql"),
  );
  const dbPid = scratch?.dbPid ?? null;
  const rows: LifecycleFigures[] = [];
  try {
    for (const backend of options.backends) {
      const env: Record<string, string> =
        backend === "mysql" && scratch ? { DATABASE_URL: scratch.url } : {};
      for (const concurrency of options.concurrencies) {
        for (let round = 1; round <= options.rounds; round++) {
          rows.push(await measure(options, { backend, concurrency, round }, env, dbPid));
        }
      }
    }
    return rows;
  } finally {
    await scratch?.drop();
  }
}

/** The bench step: measures, prints the table, keeps the figures in bench/results. */
export async function lifecycleBenchStep(smoke: boolean, options?: LifecycleOptions) {
  const sized = options ?? LIFECYCLE_SIZES[smoke ? "smoke" : "full"];
  const rows = await lifecycleBench(sized);
  console.log(
    [
      "",
      `Lifecycles from one Python asyncio caller (GrpcRunStore; 10 calls each; window ${sized.durationMs} ms after ${sized.warmupMs} ms of warm-up, a fresh server each):`,
      "",
      ...lifecycleTable(rows),
    ].join("\n"),
  );
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/lifecycle${smoke ? "-smoke" : ""}.json`,
    `${JSON.stringify({ options: sized, rows }, null, 2)}\n`,
  );
}

if (process.argv[1]?.endsWith("lifecycle.ts")) {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      backend: { type: "string" },
      concurrency: { type: "string" },
      "duration-ms": { type: "string" },
      rounds: { type: "string" },
    },
  });
  const base = LIFECYCLE_SIZES[values.smoke ? "smoke" : "full"];
  const positive = (flag: string, value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new TypeError(`--${flag}: ${value} is not an integer >= 1`);
    return n;
  };
  const backends = (values.backend?.split(",") ?? base.backends) as Backend[];
  for (const b of backends) {
    if (!base.backends.includes(b))
      throw new TypeError(`--backend: ${b} is not one of ${base.backends.join(", ")}`);
  }
  await lifecycleBenchStep(values.smoke ?? false, {
    ...base,
    backends,
    concurrencies:
      values.concurrency?.split(",").map((c) => positive("concurrency", c)) ?? base.concurrencies,
    durationMs:
      values["duration-ms"] === undefined
        ? base.durationMs
        : positive("duration-ms", values["duration-ms"]),
    rounds: values.rounds === undefined ? base.rounds : positive("rounds", values.rounds),
  });
}
