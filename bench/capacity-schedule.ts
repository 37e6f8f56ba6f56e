// The capacity bench's schedule (bench/capacity.ts), fixed before a step
// starts so that no caller can slow its own offered load (no coordinated
// omission): N active runs, each sending one progress snapshot a second at
// its own random phase; at each of a run's ticks, with probability CHURN, it
// completes instead and a new run takes its place (put, then start once the
// put is answered), continuing on the same phase. Both callers
// (bench/capacity-caller.ts, bench/capacity_caller.py) play the same file.

import { random } from "./seed.js";

/** Share of the active runs that finish (and are replaced) each second. */
export const CHURN_PER_SECOND = 0.05;
/** Milliseconds between two snapshots of one run. */
export const TICK_MS = 1000;

/**
 * What one event calls: "progress" UpdateRunProgress, "complete"
 * UpdateRunCompletion (success), "put" Put (pending), "start" UpdateStatus
 * running, sent when its `after` event (the put) is answered.
 */
export type CapacityOp = "progress" | "complete" | "put" | "start";

/**
 * One call: [at ms from the start, op, run id, thread id, total tokens, after].
 * `after` is the index of the event whose answer sends this one (-1: sent at `at`).
 */
export type CapacityEvent = [
  at: number,
  op: CapacityOp,
  runId: string,
  threadId: string,
  tokens: number,
  after: number,
];

/** A step's whole schedule, as the caller reads it from a JSON file. */
export interface CapacitySchedule {
  /** The runs active before the start, put and started while seeding: [run id, thread id]. */
  initial: [runId: string, threadId: string][];
  /** Every call, ordered by `at` (a start right after its put). */
  events: CapacityEvent[];
  /** Markers: the measured window is [warmupMs, warmupMs + durationMs). */
  warmupMs: number;
  durationMs: number;
  /** After the window, how long outstanding calls may still be answered. */
  graceMs: number;
}

/** What a step offers: how many runs, for how long, and what names its ids. */
export interface ScheduleSpec {
  runs: number;
  warmupMs: number;
  durationMs: number;
  graceMs: number;
  /** Prefix of every run and thread id (unique per step: the database is shared). */
  tag: string;
  seed: number;
}

/** The schedule of one step: every run's ticks over warm-up and window. */
export function buildSchedule(spec: ScheduleSpec): CapacitySchedule {
  const next = random(spec.seed);
  const endMs = spec.warmupMs + spec.durationMs;
  const initial: CapacitySchedule["initial"] = [];
  const unordered: { event: CapacityEvent; start?: CapacityEvent }[] = [];
  for (let slot = 0; slot < spec.runs; slot++) {
    const threadId = `${spec.tag}-t${slot}`;
    let generation = 0;
    let runId = `${spec.tag}-r${slot}-0`;
    let snapshots = 0;
    initial.push([runId, threadId]);
    for (let at = next() * TICK_MS; at < endMs; at += TICK_MS) {
      const when = Math.round(at * 1000) / 1000;
      if (next() >= CHURN_PER_SECOND) {
        snapshots++;
        unordered.push({ event: [when, "progress", runId, threadId, snapshots * 100, -1] });
        continue;
      }
      unordered.push({ event: [when, "complete", runId, threadId, (snapshots + 1) * 100, -1] });
      generation++;
      snapshots = 0;
      runId = `${spec.tag}-r${slot}-${generation}`;
      unordered.push({
        event: [when, "put", runId, threadId, 0, -1],
        start: [when, "start", runId, threadId, 0, -1],
      });
    }
  }
  unordered.sort((a, b) => a.event[0] - b.event[0]);
  const events: CapacityEvent[] = [];
  for (const { event, start } of unordered) {
    events.push(event);
    if (start !== undefined)
      events.push([start[0], start[1], start[2], start[3], 0, events.length - 1]);
  }
  return {
    initial,
    events,
    warmupMs: spec.warmupMs,
    durationMs: spec.durationMs,
    graceMs: spec.graceMs,
  };
}
