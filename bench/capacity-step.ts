import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import type { CallerRecords, CallerSpec } from "./capacity-caller.js";
import { type StepFigures, stepFigures } from "./capacity-figures.js";
import { buildSchedule, type CapacitySchedule } from "./capacity-schedule.js";
import { cpuWindow, idleWindow } from "./load-processes.js";
import { NODE, type Served, serve } from "./serve.js";

// One step of the capacity bench (bench/capacity.ts): a fresh server (so a
// backlog left by an earlier step cannot slow this one), the step's schedule
// written to a file, one caller process playing it, and the CPU of caller,
// server and database read from /proc over the measured window, bracketed by
// the caller's "measuring" / "measured" lines. The step ends at the latest
// KILL_MARGIN_MS after its duration and grace: a caller still running then
// is killed and its calls count as unfinished.

/** The two callers: Python's GrpcRunStore and TypeScript's RemoteRunStore. */
export type CallerKind = "python" | "typescript";
export type Backend = "memory" | "mysql";

/** Past warm-up + duration + grace, how long a caller may take to report before it is killed. */
const KILL_MARGIN_MS = 10_000;
/** How long seeding the initial runs may take before the step is abandoned. */
const SEED_LIMIT_MS = 300_000;

/** What every step of one measurement shares. */
export interface StepSetup {
  caller: CallerKind;
  backend: Backend;
  /** The server's environment (DATABASE_URL for MySQL). */
  serverEnv: Record<string, string>;
  /** The local MariaDB's pid, for its CPU; null when not local or not used. */
  dbPid: number | null;
  warmupMs: number;
  durationMs: number;
  graceMs: number;
  /** The callers' per-call timeout. */
  timeoutMs: number;
  /** The callers' bound on a call's wait for a place on the wire, ms (0: none); unset: the SDKs' default. */
  callQueueTimeoutMs?: number;
  /** The callers' bound on the calls waiting for a place (null: any number); unset: the SDKs' default. */
  maxQueuedCalls?: number | null;
}

/** The command line of one caller process. */
function callerCommand(kind: CallerKind, spec: CallerSpec): { command: string; args: string[] } {
  const json = JSON.stringify(spec);
  if (kind === "python")
    return { command: "/usr/bin/python3", args: ["bench/capacity_caller.py", json] };
  return { command: NODE[0] as string, args: [...NODE.slice(1), "bench/capacity-caller.ts", json] };
}

/** A caller's lines as promises: ready, the window's bounds, the records. */
function watchCaller(kind: CallerKind, spec: CallerSpec) {
  const { command, args } = callerCommand(kind, spec);
  const child = spawn(command, args, {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, PYTHONPATH: resolve("python") },
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const exited = new Promise<number | null>((done) => child.once("exit", done));
  const line = (want: (text: string) => boolean) =>
    new Promise<string>((done, fail) => {
      lines.on("line", (text) => {
        if (want(text)) done(text);
      });
      exited.then((code) => fail(new Error(`${kind} caller exited ${code}`)));
    });
  return {
    child,
    ready: line((t) => t === "ready"),
    measuring: line((t) => t === "measuring"),
    measured: line((t) => t === "measured"),
    records: line((t) => t.startsWith("{")).then((t) => JSON.parse(t) as CallerRecords),
  };
}

/** Resolves with `promise`, or with `fallback` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((done) => {
    timer = setTimeout(() => done(fallback), ms);
  });
  return Promise.race([promise.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

/** CPU windows over the caller, server and database, and the machine's idle share. */
function windows(pids: { caller: number; server: number; db: number | null }) {
  const caller = cpuWindow([pids.caller]);
  const server = cpuWindow([pids.server]);
  const db = cpuWindow(pids.db === null ? [] : [pids.db]);
  const machine = idleWindow();
  const all = [caller, server, db, machine];
  const guarded = (f: () => void) => {
    try {
      f();
    } catch {
      // A process gone before the window closed: its figure stays 0.
    }
  };
  return {
    start: () => {
      for (const w of all) guarded(w.start);
    },
    end: () => {
      for (const w of all) guarded(w.end);
    },
    cpu: () => ({
      callerUs: caller.micros(),
      serverUs: server.micros(),
      dbUs: pids.db === null ? null : db.micros(),
      machineIdle: machine.share(),
    }),
  };
}

/** Plays one schedule through one caller against `server`; never outlives its bound. */
async function play(setup: StepSetup, server: Served, schedule: CapacitySchedule, file: string) {
  const caller = watchCaller(setup.caller, {
    target: server.url,
    scheduleFile: file,
    timeoutMs: setup.timeoutMs,
    seedConcurrency: 32,
    ...(setup.callQueueTimeoutMs === undefined
      ? {}
      : { callQueueTimeoutMs: setup.callQueueTimeoutMs }),
    ...(setup.maxQueuedCalls === undefined ? {} : { maxQueuedCalls: setup.maxQueuedCalls }),
  });
  try {
    if ((await within(caller.ready, SEED_LIMIT_MS, null)) === null) {
      throw new Error(`${setup.caller} caller did not seed within ${SEED_LIMIT_MS} ms`);
    }
    const bracket = windows({
      caller: caller.child.pid as number,
      server: server.child.pid as number,
      db: setup.backend === "mysql" ? setup.dbPid : null,
    });
    caller.measuring.then(bracket.start, () => {});
    caller.measured.then(bracket.end, () => {});
    const began = performance.now();
    caller.child.stdin?.end("go\n");
    const bound = schedule.warmupMs + schedule.durationMs + schedule.graceMs + KILL_MARGIN_MS;
    const none: CallerRecords = {
      sentUs: schedule.events.map(() => -1),
      endUs: schedule.events.map(() => -1),
      codes: {},
    };
    const records = await within(caller.records, bound, none);
    const seconds = (performance.now() - began) / 1000;
    return { records, seconds, cpu: bracket.cpu(), reported: records !== none };
  } finally {
    caller.child.kill("SIGKILL");
  }
}

/** One step at `runs` active runs: its own server, schedule and caller. */
export async function capacityStep(
  setup: StepSetup,
  runs: number,
  tag: string,
): Promise<StepFigures> {
  const schedule = buildSchedule({
    runs,
    warmupMs: setup.warmupMs,
    durationMs: setup.durationMs,
    graceMs: setup.graceMs,
    tag,
    seed: runs,
  });
  const file = join(tmpdir(), `runstore-capacity-${process.pid}-${tag}.json`);
  writeFileSync(file, JSON.stringify(schedule));
  const server = await serve(`runstore-${setup.backend}`, ["dist/main.js"], setup.serverEnv);
  try {
    const { records, seconds, cpu, reported } = await play(setup, server, schedule, file);
    await printRefusals(server, runs);
    return stepFigures(runs, schedule, records, cpu, seconds, reported);
  } finally {
    server.child.kill("SIGKILL");
    rmSync(file, { force: true });
  }
}

/**
 * With METRICS_PORT in the server's environment (`--server-env
 * METRICS_PORT=0`): the server's refusals by the setting that refused them,
 * one line per step, to tell which bound shed the load. Off by default: the
 * metrics interceptor costs every call some CPU.
 */
async function printRefusals(server: Served, runs: number): Promise<void> {
  const url = /"url":"(http:\/\/[^"]+\/metrics)"/.exec(server.output())?.[1];
  if (url === undefined) return;
  const text = await (await fetch(url)).text();
  const refused = [...text.matchAll(/^runstore_calls_refused_total\{reason="(\w+)"\} (\d+)/gm)]
    .filter((m) => m[2] !== "0")
    .map((m) => `${m[1]} ${m[2]}`);
  console.log(`capacity ${runs} runs: server refused ${refused.join(", ") || "none"}`);
}
