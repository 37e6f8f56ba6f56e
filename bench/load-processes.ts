import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import type { LoadResult, LoadSpec } from "./load.js";
import { NODE } from "./serve.js";

// Driving bench/load.ts processes and reading CPU time from /proc, shared by
// the bench's orchestrators (run.ts, galera.ts).

const CLOCK_TICK_US =
  1_000_000 / Number((await promisify(execFile)("getconf", ["CLK_TCK"])).stdout.trim() || 100);

/** What one measurement over several load processes gives. */
export interface LoadFigures {
  ops: number;
  rpcs: number;
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  loadCpuUs: number;
  /** Share of the machine's CPU left idle while measuring (0..1). */
  machineIdle: number;
}

/** User + system CPU of a process so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US;
}

/** The machine's idle and busy CPU time so far (all cores, clock ticks), from /proc/stat. */
function machineTicks(): { idle: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { idle, total: fields.reduce((a, b) => a + b, 0) };
}

/** The share (0..1) of the machine's CPU left idle between `start()` and `end()`. */
export function idleWindow() {
  let before = machineTicks();
  let share = 0;
  return {
    start: () => {
      before = machineTicks();
    },
    end: () => {
      const after = machineTicks();
      share = (after.idle - before.idle) / (after.total - before.total || 1);
    },
    share: () => share,
  };
}

/** CPU the processes `pids` spend between `start()` and `end()`, in microseconds (0 for none). */
export function cpuWindow(pids: readonly number[]) {
  const total = () => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  let before = 0;
  let used = 0;
  return {
    start: () => {
      before = total();
    },
    end: () => {
      used = total() - before;
    },
    micros: () => used,
  };
}

/**
 * Runs the spec split over several load processes: all seed, then all start
 * together; `window` brackets the measured part (for the server's CPU).
 */
export async function runLoadProcesses(
  spec: LoadSpec,
  loaders: number,
  window: { start(): void; end(): void },
  nodeFlags: readonly string[] = [],
): Promise<LoadFigures> {
  const count = Math.max(1, Math.min(loaders, spec.concurrency));
  const children = Array.from({ length: count }, (_, k) => {
    const share = Math.floor(spec.concurrency / count) + (k < spec.concurrency % count ? 1 : 0);
    const child = spawn(
      NODE[0] as string,
      [
        ...nodeFlags,
        ...NODE.slice(1),
        "bench/load.ts",
        JSON.stringify({ ...spec, concurrency: share, tag: `${spec.tag}-${k}` }),
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const ready = new Promise<void>((resolve, reject) => {
      lines.once("line", (line) => (line === "ready" ? resolve() : reject(new Error(line))));
      child.once("exit", (code) => reject(new Error(`load process exited ${code}`)));
    });
    const result = new Promise<LoadResult>((resolve, reject) => {
      lines.on("line", (line) => {
        if (line.startsWith("{")) resolve(JSON.parse(line) as LoadResult);
      });
      child.once("exit", (code) => reject(new Error(`load process exited ${code}`)));
    });
    return { child, ready, result };
  });
  await Promise.all(children.map((c) => c.ready));
  const machine = idleWindow();
  machine.start();
  window.start();
  for (const c of children) c.child.stdin?.end("go\n");
  const results = await Promise.all(children.map((c) => c.result));
  window.end();
  machine.end();
  const latencies = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  return {
    ops: results.reduce((n, r) => n + r.ops, 0),
    rpcs: results.reduce((n, r) => n + r.rpcs, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    seconds: Math.max(...results.map((r) => r.seconds)),
    p50Ms: quantile(latencies, 0.5) / 1000,
    p99Ms: quantile(latencies, 0.99) / 1000,
    loadCpuUs: results.reduce((n, r) => n + r.cpuUs, 0),
    machineIdle: machine.share(),
  };
}

/** The `at` quantile (0..1) of sorted values. */
export const quantile = (sorted: readonly number[], at: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(at * sorted.length))] ?? 0;

export const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
