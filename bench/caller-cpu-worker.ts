import { readFileSync } from "node:fs";

// One measurement of bench/caller-cpu.ts: argv is the client module
// (client/src/index.ts of the build measured), the server URL, the rate
// (calls/s; 0: idle) and the window in seconds. Prints one JSON line:
// {cpuUs, calls, failed} over the window. The calls follow a run's life as
// the capacity bench plays it: put, start (updateStatus), progress
// snapshots, completion; mostly snapshots.

const [clientPath, url, rateArg, secondsArg] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
];
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const WARMUP_MS = Number(process.env.CALLER_WARMUP_MS ?? 2000);
const SNAPSHOTS = 20;

type Store = import("@runstore/client").RemoteRunStore;

/** Call number `n` of the sequence: run n / (SNAPSHOTS + 3), then its step. */
function call(store: Store, n: number): Promise<unknown> {
  const runId = `r${process.pid}-${Math.floor(n / (SNAPSHOTS + 3))}`;
  const step = n % (SNAPSHOTS + 3);
  if (step === 0) return store.put(runId, { threadId: "t1", metadata: { source: "bench" } });
  if (step === 1) return store.updateStatus(runId, "running");
  if (step === SNAPSHOTS + 2) {
    return store.updateRunCompletion(runId, { status: "success", totalTokens: 100 * step });
  }
  return store.updateRunProgress(runId, { totalTokens: 100 * step, lastAiMessage: `step ${step}` });
}

/** The machine's CPU ticks from /proc/stat: all of them, and the idle ones. */
function machineTicks(): { total: number; idle: number } {
  const fields =
    readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1) ?? [];
  const ticks = fields.map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  return { total, idle: (ticks[3] ?? 0) + (ticks[4] ?? 0) };
}

/** The share of the machine's CPU left idle between two readings, in %. */
function idleShare(a: { total: number; idle: number }, b: { total: number; idle: number }): number {
  return Math.round((100 * (b.idle - a.idle)) / Math.max(1, b.total - a.total));
}

/**
 * With CALLER_CPU_PROFILE=<file>, a V8 CPU profile of the window alone
 * (not the start-up's module loading), to open in Chrome's DevTools.
 */
async function startProfile(file: string | undefined): Promise<() => Promise<void>> {
  if (file === undefined) return async () => {};
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
  };
}

async function main(): Promise<void> {
  const { RemoteRunStore } = (await import(clientPath)) as typeof import("@runstore/client");
  const store = new RemoteRunStore({ baseUrl: url, timeoutMs: 30_000 });
  let n = 0;
  await call(store, n++);
  let calls = 0;
  let failed = 0;
  let measuring = false;
  const t0 = performance.now();
  const fire = () => {
    // Counted when answered within the window, as the capacity bench counts.
    call(store, n++).then(
      () => {
        if (measuring) calls++;
      },
      (error: unknown) => {
        if (measuring) failed++;
        if (failed <= 3) console.error(String(error));
      },
    );
  };
  // Open loop: at each tick, every call due by now is sent.
  let sent = 0;
  const tick = () => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sent < due; sent++) fire();
    timer = setTimeout(tick, Math.max(0, ((sent + 1) / rate) * 1000 - (performance.now() - t0)));
  };
  let timer: NodeJS.Timeout | undefined = rate > 0 ? setTimeout(tick, 0) : undefined;
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const profile = await startProfile(process.env.CALLER_CPU_PROFILE);
  const before = process.cpuUsage();
  const machineBefore = machineTicks();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = process.cpuUsage(before);
  const machineAfter = machineTicks();
  measuring = false;
  await profile();
  clearTimeout(timer);
  process.stdout.write(
    `${JSON.stringify({ cpuUs: used.user + used.system, calls, failed, idle: idleShare(machineBefore, machineAfter) })}\n`,
    () => process.exit(0),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
