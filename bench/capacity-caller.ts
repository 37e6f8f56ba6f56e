import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { RemoteRunStore } from "@runstore/client";
import type { CapacityEvent, CapacitySchedule } from "./capacity-schedule.js";

// The capacity bench's TypeScript caller: one process, one RemoteRunStore,
// playing a step's schedule (bench/capacity-schedule.ts) open-loop. The
// protocol, shared with bench/capacity_caller.py: argv[2] is the spec
// (CallerSpec, JSON); the caller seeds the initial runs and prints "ready",
// starts on the first line of stdin, prints "measuring" and "measured" at
// the window's bounds (the orchestrator reads CPU there), and once every
// call is answered or the grace has passed prints one JSON line
// (CallerRecords) and exits, whatever is still outstanding.

/** What the orchestrator (bench/capacity.ts) passes as argv[2]. */
export interface CallerSpec {
  /** The server, http://host:port. */
  target: string;
  /** Path of the step's CapacitySchedule as JSON. */
  scheduleFile: string;
  /** The store's per-call timeout (its retries of UNAVAILABLE stay the SDK's default). */
  timeoutMs: number;
  /** Calls in flight while seeding the initial runs. */
  seedConcurrency: number;
  /** The SDK's bound on a call's wait for a place on the wire, ms (0: none); unset: the SDK's default. */
  callQueueTimeoutMs?: number;
  /** The SDK's bound on the calls waiting for a place (null: any number); unset: the SDK's default. */
  maxQueuedCalls?: number | null;
}

/** What the caller prints at the end: one entry per schedule event. */
export interface CallerRecords {
  /** When each call was sent, µs from the start; -1: never sent. */
  sentUs: number[];
  /** When each call was answered, µs from the start; -1: not answered in time. */
  endUs: number[];
  /** The gRPC status name of each failed call, by event index. */
  codes: Record<string, string>;
}

/** A failure's gRPC status name (RESOURCE_EXHAUSTED, …), or the error's class name. */
function codeName(error: unknown): string {
  if (error instanceof ConnectError) {
    return (Code[error.code] ?? String(error.code))
      .replace(/([a-z])([A-Z])/g, "$1_$2")
      .toUpperCase();
  }
  return error instanceof Error ? error.name : "UNKNOWN";
}

/** One event's call on the store. */
function call(store: RemoteRunStore, event: CapacityEvent): Promise<unknown> {
  const [, op, runId, threadId, tokens] = event;
  switch (op) {
    case "progress":
      return store.updateRunProgress(runId, {
        totalTokens: tokens,
        lastAiMessage: `step ${tokens / 100}`,
      });
    case "complete":
      return store.updateRunCompletion(runId, { status: "success", totalTokens: tokens });
    case "put":
      return store.put(runId, { threadId, metadata: { source: "bench", step: 0 } });
    case "start":
      return store.updateStatus(runId, "running");
  }
}

/** Puts and starts the initial runs, `concurrency` at a time. */
async function seed(store: RemoteRunStore, schedule: CapacitySchedule, concurrency: number) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < schedule.initial.length; i = next++) {
      const [runId, threadId] = schedule.initial[i] as [string, string];
      await store.put(runId, { threadId, metadata: { source: "bench", step: 0 } });
      await store.updateStatus(runId, "running");
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Plays the schedule from `t0`; resolves with the records once done or the grace has passed. */
function play(store: RemoteRunStore, schedule: CapacitySchedule): Promise<CallerRecords> {
  const { events } = schedule;
  const sentUs = new Array<number>(events.length).fill(-1);
  const endUs = new Array<number>(events.length).fill(-1);
  const codes: Record<string, string> = {};
  const chained = new Map<number, number>();
  events.forEach((e, i) => {
    if (e[5] >= 0) chained.set(e[5], i);
  });
  const t0 = performance.now();
  const now = () => Math.round((performance.now() - t0) * 1000);
  const windowEnd = schedule.warmupMs + schedule.durationMs;
  let outstanding = 0;
  // The step ends once the window is over, every call fired and answered (or the grace passed).
  let windowOver = false;
  let allFired = false;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const endIfDone = () => {
    if (windowOver && allFired && outstanding === 0) finish();
  };
  const fire = (i: number) => {
    outstanding++;
    sentUs[i] = now();
    const settle = (code?: string) => {
      endUs[i] = now();
      if (code !== undefined) codes[i] = code;
      outstanding--;
      const next = chained.get(i);
      if (next !== undefined) fire(next);
      else endIfDone();
    };
    call(store, events[i] as CapacityEvent).then(
      () => settle(),
      (error: unknown) => settle(codeName(error)),
    );
  };
  let i = 0;
  const tick = () => {
    const at = now() / 1000;
    for (; i < events.length && (events[i] as CapacityEvent)[0] <= at; i++) {
      if ((events[i] as CapacityEvent)[5] < 0) fire(i);
    }
    if (i < events.length) {
      setTimeout(tick, Math.max(0, (events[i] as CapacityEvent)[0] - now() / 1000));
      return;
    }
    allFired = true;
    endIfDone();
  };
  tick();
  setTimeout(() => process.stdout.write("measuring\n"), schedule.warmupMs);
  setTimeout(() => {
    process.stdout.write("measured\n");
    windowOver = true;
    endIfDone();
  }, windowEnd);
  setTimeout(finish, windowEnd + schedule.graceMs);
  return finished.then(() => ({ sentUs, endUs, codes }));
}

async function main(spec: CallerSpec): Promise<void> {
  const schedule = JSON.parse(readFileSync(spec.scheduleFile, "utf8")) as CapacitySchedule;
  const store = new RemoteRunStore({
    baseUrl: spec.target,
    timeoutMs: spec.timeoutMs,
    ...(spec.callQueueTimeoutMs === undefined
      ? {}
      : { callQueueTimeoutMs: spec.callQueueTimeoutMs }),
    ...(spec.maxQueuedCalls === undefined
      ? {}
      : { maxQueuedCalls: spec.maxQueuedCalls ?? Number.POSITIVE_INFINITY }),
  });
  await seed(store, schedule, spec.seedConcurrency);
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const records = await play(store, schedule);
  // Outstanding calls are abandoned: the process ends with them.
  process.stdout.write(`${JSON.stringify(records)}\n`, () => process.exit(0));
}

main(JSON.parse(process.argv[2] ?? "{}") as CallerSpec).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
