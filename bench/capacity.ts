import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { ACHIEVED_SHARE, P99_LIMIT_MS, type StepFigures } from "./capacity-figures.js";
import { CALLER_LABELS, type CapacityResult, stepTable, summaryTable } from "./capacity-report.js";
import { type Backend, type CallerKind, capacityStep, type StepSetup } from "./capacity-step.js";
import { scratchDatabase } from "./scratch-database.js";

// The capacity bench (issue 18 item 1): how many active agent runs one
// server sustains. Each run sends one progress snapshot a second at a random
// phase, and 5 % of the runs a second complete and are replaced (put, start,
// progress…), on a schedule fixed in advance (bench/capacity-schedule.ts);
// each call's latency counts from its scheduled time. Steps double from 50
// active runs until p99 ≥ 50 ms or less than 95 % of the offered rate is
// achieved; the last passing step is the capacity, and the step at twice it
// is the overload step (offered, admitted and refused rates, admitted p99,
// whether it finished within duration + grace). From one caller process per
// measurement (Python GrpcRunStore and TypeScript RemoteRunStore) on the same
// machine as the server, on the memory and the MariaDB backend. Part of
// `npm run bench`; alone (after `npm run build`): `npm run bench:capacity
// [-- --smoke] [--caller python,typescript] [--backend memory,mysql]
// [--duration-ms N] [--warmup-ms N] [--grace-ms N] [--start-runs N]
// [--max-runs N] [--timeout-ms N] [--keep-going] [--server-env KEY=VALUE]
// [--caller-queue-timeout-ms N] [--caller-max-queued-calls N|none]`.

/** How a run of the bench is sized. */
export interface CapacityOptions {
  callers: CallerKind[];
  backends: Backend[];
  warmupMs: number;
  durationMs: number;
  graceMs: number;
  timeoutMs: number;
  startRuns: number;
  /** The doubling stops after this many runs even if every step passed. */
  maxRuns: number;
  /**
   * Past the first failing step, keep doubling while the achieved rate keeps
   * up (p99 aside), to see where throughput ends on a machine whose
   * scheduling noise fails the p99 first. The capacity stays the last step
   * before the first failure.
   */
  keepGoing: boolean;
  /** More environment for every step's server (`--server-env KEY=VALUE`), e.g. a setting to compare. */
  serverEnv?: Record<string, string>;
  /** The callers' callQueueTimeoutMs / call_queue_timeout (`--caller-queue-timeout-ms`, 0: none); unset: the SDKs' default. */
  callQueueTimeoutMs?: number;
  /** The callers' maxQueuedCalls / max_queued_calls (`--caller-max-queued-calls N|none`); unset: the SDKs' default. */
  maxQueuedCalls?: number | null;
}

const FULL: CapacityOptions = {
  callers: ["python", "typescript"],
  backends: ["memory", "mysql"],
  warmupMs: 5000,
  durationMs: 15_000,
  graceMs: 5000,
  timeoutMs: 30_000,
  startRuns: 50,
  maxRuns: 12_800,
  keepGoing: false,
};

/** Full size, or a few seconds' worth for `--smoke` (one step and its overload step). */
export const CAPACITY_SIZES: Record<"full" | "smoke", CapacityOptions> = {
  full: FULL,
  smoke: { ...FULL, warmupMs: 200, durationMs: 1000, graceMs: 500, maxRuns: 50 },
};

/** What the Python caller runs on: Debian's Python, gRPC and protobuf, as `npm test` installs them. */
const PYTHON_PACKAGES = ["python3", "python3-grpcio", "python3-protobuf"];
/** npm test's package helper, a plain module (a string, so TypeScript does not look for its types). */
const DEBIAN_PACKAGES: string = "../scripts/test-runner/debian-packages.mjs";

/** Installs the Python caller's packages where missing (CI's bench smoke runs before `npm test`). */
export async function ensurePythonPackages(): Promise<void> {
  const debian = (await import(DEBIAN_PACKAGES)) as {
    hasDpkg(): boolean;
    missingPackages(packages: string[]): string[];
    installPackages(missing: string[]): void;
  };
  if (debian.hasDpkg()) debian.installPackages(debian.missingPackages(PYTHON_PACKAGES));
}

/**
 * Doubling steps from `startRuns` until one fails (or `maxRuns`), then the
 * overload step at twice the capacity, run unless the series reached it.
 */
async function measure(setup: StepSetup, options: CapacityOptions): Promise<CapacityResult> {
  const name = `${setup.caller} ${setup.backend}`;
  const step = async (runs: number) => {
    const figures = await capacityStep(
      setup,
      runs,
      `${setup.caller[0]}${setup.backend[0]}${runs}-${Date.now().toString(36)}`,
    );
    console.error(
      `capacity ${name} ${runs} runs: p99 ${figures.p99Ms.toFixed(1)} ms, ${figures.achievedPerSec.toFixed(0)} of ${figures.offeredPerSec.toFixed(0)} calls/s${figures.passed ? "" : " (fails)"}`,
    );
    return figures;
  };
  const steps: StepFigures[] = [];
  let capacityRuns: number | null = null;
  let keptUpRuns: number | null = null;
  let failed = false;
  let keepingUp = true;
  for (let runs = options.startRuns; runs <= options.maxRuns; runs *= 2) {
    const figures = await step(runs);
    steps.push(figures);
    failed ||= !figures.passed;
    if (!failed) capacityRuns = runs;
    const keptUp = figures.achievedPerSec >= ACHIEVED_SHARE * figures.offeredPerSec;
    keepingUp &&= keptUp;
    if (keepingUp) keptUpRuns = runs;
    if (failed && !(options.keepGoing && keptUp)) break;
  }
  // Twice the capacity; when no step passed, twice the last that kept the rate up.
  const base = capacityRuns ?? keptUpRuns;
  const overload =
    base === null ? null : (steps.find((s) => s.runs === 2 * base) ?? (await step(2 * base)));
  return {
    caller: setup.caller,
    backend: setup.backend,
    steps,
    capacityRuns,
    keptUpRuns,
    overload,
  };
}

/** Every caller × backend, one after the other, on a scratch database for MySQL. */
export async function capacity(options: CapacityOptions): Promise<CapacityResult[]> {
  if (!existsSync("dist/main.js")) throw new Error("capacity: run `npm run build` first");
  if (options.callers.includes("python")) await ensurePythonPackages();
  const scratch = await scratchDatabase(
    `runstore_capacity_${process.pid}`,
    options.backends.includes("mysql"),
  );
  const dbPid = scratch?.dbPid ?? null;
  const results: CapacityResult[] = [];
  try {
    for (const backend of options.backends) {
      for (const caller of options.callers) {
        const serverEnv: Record<string, string> = {
          ...options.serverEnv,
          ...(backend === "mysql" && scratch ? { DATABASE_URL: scratch.url } : {}),
        };
        results.push(await measure({ ...options, caller, backend, serverEnv, dbPid }, options));
      }
    }
    return results;
  } finally {
    await scratch?.drop();
  }
}

/** The bench step: measures, prints the tables, keeps the figures in bench/results. */
export async function capacityBenchStep(smoke: boolean, options?: CapacityOptions): Promise<void> {
  const sized = options ?? CAPACITY_SIZES[smoke ? "smoke" : "full"];
  const results = await capacity(sized);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const lines = [
    "",
    `Capacity (${machine}; steps of ${sized.durationMs} ms after ${sized.warmupMs} ms of warm-up, grace ${sized.graceMs} ms; passing: p99 < ${P99_LIMIT_MS} ms and ≥ ${ACHIEVED_SHARE * 100} % of the offered rate):`,
    "",
    ...summaryTable(results),
  ];
  for (const result of results) {
    lines.push("", `${CALLER_LABELS[result.caller]}, ${result.backend}:`, "", ...stepTable(result));
  }
  console.log(lines.join("\n"));
  mkdirSync("bench/results", { recursive: true });
  const json = (n: unknown) => (typeof n === "number" && !Number.isFinite(n) ? null : n);
  writeFileSync(
    `bench/results/capacity${smoke ? "-smoke" : ""}.json`,
    `${JSON.stringify({ machine, options: sized, results }, (_, v) => json(v), 2)}\n`,
  );
}

/** An integer >= 0 from a flag, or a TypeError naming it. */
function count(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new TypeError(`--${flag}: ${value} is not an integer >= 0`);
  return n;
}

/** `--caller-queue-timeout-ms N` and `--caller-max-queued-calls N|none` as the callers' options. */
function callerBounds(
  queueTimeoutMs: string | undefined,
  maxQueued: string | undefined,
): Pick<CapacityOptions, "callQueueTimeoutMs" | "maxQueuedCalls"> {
  return {
    ...(queueTimeoutMs === undefined
      ? {}
      : { callQueueTimeoutMs: count("caller-queue-timeout-ms", queueTimeoutMs) }),
    ...(maxQueued === undefined
      ? {}
      : {
          maxQueuedCalls: maxQueued === "none" ? null : count("caller-max-queued-calls", maxQueued),
        }),
  };
}

/** `--server-env KEY=VALUE` flags as an environment for every step's server. */
function serverEnvOf(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at < 1) throw new TypeError(`--server-env: ${pair} is not KEY=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

if (process.argv[1]?.endsWith("capacity.ts")) {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      caller: { type: "string" },
      backend: { type: "string" },
      "warmup-ms": { type: "string" },
      "duration-ms": { type: "string" },
      "grace-ms": { type: "string" },
      "timeout-ms": { type: "string" },
      "start-runs": { type: "string" },
      "max-runs": { type: "string" },
      "keep-going": { type: "boolean", default: false },
      "server-env": { type: "string", multiple: true },
      "caller-queue-timeout-ms": { type: "string" },
      "caller-max-queued-calls": { type: "string" },
    },
  });
  const smoke = values.smoke ?? false;
  const base = CAPACITY_SIZES[smoke ? "smoke" : "full"];
  const number = (value: string | undefined, fallback: number) =>
    value === undefined ? fallback : Number(value);
  const oneOf = <T extends string>(flag: string, value: string | undefined, allowed: T[]) => {
    const picked = value?.split(",") ?? allowed;
    for (const v of picked) {
      if (!allowed.includes(v as T))
        throw new TypeError(`--${flag}: ${v} is not one of ${allowed.join(", ")}`);
    }
    return picked as T[];
  };
  await capacityBenchStep(smoke, {
    callers: oneOf("caller", values.caller, base.callers),
    backends: oneOf("backend", values.backend, base.backends),
    warmupMs: number(values["warmup-ms"], base.warmupMs),
    durationMs: number(values["duration-ms"], base.durationMs),
    graceMs: number(values["grace-ms"], base.graceMs),
    timeoutMs: number(values["timeout-ms"], base.timeoutMs),
    startRuns: number(values["start-runs"], base.startRuns),
    maxRuns: number(values["max-runs"], base.maxRuns),
    keepGoing: values["keep-going"] ?? false,
    serverEnv: serverEnvOf(values["server-env"] ?? []),
    ...callerBounds(values["caller-queue-timeout-ms"], values["caller-max-queued-calls"]),
  });
}
