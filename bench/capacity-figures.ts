import type { CallerRecords } from "./capacity-caller.js";
import type { CapacitySchedule } from "./capacity-schedule.js";
import { quantile } from "./load-processes.js";

// A capacity step's figures from what its caller recorded (bench/capacity.ts).
// Measured calls are those scheduled in the window [warm-up, warm-up +
// duration). A call's latency counts from its scheduled time, however late it
// was sent (a start, which waits for its put's answer, from that answer); a
// call not answered by the end of the grace counts as infinitely late.

/** The p99 a passing step stays under, milliseconds. */
export const P99_LIMIT_MS = 50;
/** The share of the offered rate a passing step achieves. */
export const ACHIEVED_SHARE = 0.95;

/** CPU (µs) spent in the measured window by each process, and the machine's idle share. */
export interface StepCpu {
  callerUs: number;
  serverUs: number;
  /** Null when the database is not a local process (or for the memory backend). */
  dbUs: number | null;
  machineIdle: number;
}

/** One step, as reported. Latencies in ms; Infinity when past the grace. */
export interface StepFigures {
  runs: number;
  /** Calls scheduled in the window, per second. */
  offeredPerSec: number;
  /** OK answers that arrived during the window, per second (what was admitted and served). */
  achievedPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of the measured calls answered OK. */
  admittedP99Ms: number;
  /** Measured calls that failed, per second, by gRPC status name. */
  refusedPerSec: Record<string, number>;
  /** Calls (any, warm-up included) not answered by the end of the grace. */
  unfinished: number;
  /** p99 of how late calls were sent after their scheduled time: the caller's own lag. */
  sendLagP99Ms: number;
  callerCpuUsPerCall: number;
  serverCpuUsPerCall: number;
  dbCpuUsPerCall: number | null;
  machineIdlePct: number;
  /** From "go" to the caller's last line (or its kill), seconds. */
  stepSeconds: number;
  /** False when the caller was killed before it reported (every call then counts as unfinished). */
  reported: boolean;
  /** Ended within duration + grace with every call answered. */
  finishedOnTime: boolean;
  passed: boolean;
}

/** The latencies (µs) of the measured calls, each with whether it was answered OK. */
function measuredCalls(schedule: CapacitySchedule, records: CallerRecords) {
  const from = schedule.warmupMs;
  const to = schedule.warmupMs + schedule.durationMs;
  const calls: { latencyUs: number; code: string | null }[] = [];
  schedule.events.forEach(([at, , , , , after], i) => {
    if (at < from || at >= to) return;
    const end = records.endUs[i] ?? -1;
    const origin = after >= 0 ? (records.sentUs[i] ?? -1) : at * 1000;
    calls.push({
      latencyUs: end < 0 || origin < 0 ? Number.POSITIVE_INFINITY : end - origin,
      code: end < 0 ? "UNFINISHED" : (records.codes[i] ?? null),
    });
  });
  return calls;
}

/** Answers (OK and all) whose arrival fell in the window. */
function answersInWindow(schedule: CapacitySchedule, records: CallerRecords) {
  const from = schedule.warmupMs * 1000;
  const to = (schedule.warmupMs + schedule.durationMs) * 1000;
  let ok = 0;
  let all = 0;
  records.endUs.forEach((end, i) => {
    if (end < from || end >= to) return;
    all++;
    if (records.codes[i] === undefined) ok++;
  });
  return { ok, all };
}

/** p99 of (sent - scheduled) over the calls sent at their own time, ms. */
function sendLagP99Ms(schedule: CapacitySchedule, records: CallerRecords): number {
  const lags: number[] = [];
  schedule.events.forEach(([at, , , , , after], i) => {
    const sent = records.sentUs[i] ?? -1;
    if (after < 0 && sent >= 0) lags.push(sent - at * 1000);
  });
  return quantileMs(
    lags.sort((a, b) => a - b),
    0.99,
  );
}

/** The `at` quantile of sorted µs values in ms; NaN for none. */
const quantileMs = (sorted: readonly number[], at: number) =>
  sorted.length === 0 ? Number.NaN : quantile(sorted, at) / 1000;

/** The figures of one step. */
export function stepFigures(
  runs: number,
  schedule: CapacitySchedule,
  records: CallerRecords,
  cpu: StepCpu,
  stepSeconds: number,
  reported = true,
): StepFigures {
  const seconds = schedule.durationMs / 1000;
  const calls = measuredCalls(schedule, records);
  const all = calls.map((c) => c.latencyUs).sort((a, b) => a - b);
  const ok = calls
    .filter((c) => c.code === null)
    .map((c) => c.latencyUs)
    .sort((a, b) => a - b);
  const refusedPerSec: Record<string, number> = {};
  for (const { code } of calls) {
    if (code !== null && code !== "UNFINISHED")
      refusedPerSec[code] = (refusedPerSec[code] ?? 0) + 1 / seconds;
  }
  const answered = answersInWindow(schedule, records);
  const perCall = (us: number) => (answered.all === 0 ? Number.NaN : us / answered.all);
  const unfinished = records.endUs.filter((end) => end < 0).length;
  const offeredPerSec = calls.length / seconds;
  const achievedPerSec = answered.ok / seconds;
  const p99Ms = quantileMs(all, 0.99);
  const bound = (schedule.warmupMs + schedule.durationMs + schedule.graceMs) / 1000;
  return {
    runs,
    offeredPerSec,
    achievedPerSec,
    p50Ms: quantileMs(all, 0.5),
    p99Ms,
    admittedP99Ms: quantileMs(ok, 0.99),
    refusedPerSec,
    unfinished,
    sendLagP99Ms: sendLagP99Ms(schedule, records),
    callerCpuUsPerCall: perCall(cpu.callerUs),
    serverCpuUsPerCall: perCall(cpu.serverUs),
    dbCpuUsPerCall: cpu.dbUs === null ? null : perCall(cpu.dbUs),
    machineIdlePct: 100 * cpu.machineIdle,
    stepSeconds,
    reported,
    // One second of slack for the caller's own start and exit around the bound.
    finishedOnTime: unfinished === 0 && stepSeconds <= bound + 1,
    passed: p99Ms < P99_LIMIT_MS && achievedPerSec >= ACHIEVED_SHARE * offeredPerSec,
  };
}
