import type { StepFigures } from "./capacity-figures.js";
import type { Backend, CallerKind } from "./capacity-step.js";

// The capacity bench's tables (bench/capacity.ts): one per caller × backend
// with every step, and a summary of capacities and overload steps.

/** One caller × backend: its doubling steps, the last passing one and the overload step. */
export interface CapacityResult {
  caller: CallerKind;
  backend: Backend;
  steps: StepFigures[];
  /** The last passing step's runs; null when the first step failed. */
  capacityRuns: number | null;
  /** The last of the steps from the first on that achieved 95 % of the offered rate, p99 aside. */
  keptUpRuns: number | null;
  /**
   * The step at twice the capacity (the first failing step when the series
   * reached it); with no passing step, at twice `keptUpRuns`; null when neither.
   */
  overload: StepFigures | null;
}

export const CALLER_LABELS: Record<CallerKind, string> = {
  python: "Python GrpcRunStore",
  typescript: "TypeScript RemoteRunStore",
};

const fmt = (n: number, digits = 1) =>
  Number.isNaN(n) ? "—" : Number.isFinite(n) ? n.toFixed(digits) : "∞";
const ms = (n: number) => (Number.isNaN(n) ? "—" : Number.isFinite(n) ? n.toFixed(1) : "> grace");

/** Failed calls per second by code, "—" for none. */
export function refusedText(step: StepFigures): string {
  const parts = Object.entries(step.refusedPerSec).map(([code, rate]) => `${code} ${fmt(rate)}`);
  return parts.length === 0 ? "—" : parts.join(", ");
}

/** Every step of one caller × backend. */
export function stepTable(result: CapacityResult): string[] {
  const lines = [
    "| active runs | offered calls/s | achieved calls/s | p50 ms | p99 ms | admitted p99 ms | failed calls/s by code | unfinished | send lag p99 ms | caller CPU µs/call | server CPU µs/call | db CPU µs/call | machine idle % | step s | passed |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const { overload } = result;
  const rows =
    overload === null || result.steps.includes(overload)
      ? result.steps
      : [...result.steps, overload];
  for (const s of rows) {
    const label = s === overload ? `${s.runs} (overload)` : String(s.runs);
    lines.push(
      `| ${label} | ${fmt(s.offeredPerSec, 0)} | ${fmt(s.achievedPerSec, 0)} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${ms(s.admittedP99Ms)} | ${refusedText(s)} | ${s.unfinished} | ${ms(s.sendLagP99Ms)} | ${fmt(s.callerCpuUsPerCall, 0)} | ${fmt(s.serverCpuUsPerCall, 0)} | ${s.dbCpuUsPerCall === null ? "—" : fmt(s.dbCpuUsPerCall, 0)} | ${fmt(s.machineIdlePct, 0)} | ${fmt(s.stepSeconds, 1)}${s.reported ? "" : " (caller killed)"} | ${s.passed ? "yes" : "no"} |`,
    );
  }
  return lines;
}

/** The summary's overload cells: runs, offered, admitted, failed, admitted p99, on time. */
function overloadCells(o: StepFigures | null): string {
  if (o === null) return "— | — | — | — | — | —";
  const onTime = o.finishedOnTime
    ? `yes (${fmt(o.stepSeconds)} s)`
    : `no (${o.unfinished} unfinished, ${fmt(o.stepSeconds)} s)`;
  return `${o.runs} | ${fmt(o.offeredPerSec, 0)} | ${fmt(o.achievedPerSec, 0)} | ${refusedText(o)} | ${ms(o.admittedP99Ms)} | ${onTime}`;
}

/** One line per caller × backend: capacity, its CPU, and the overload step. */
export function summaryTable(results: readonly CapacityResult[]): string[] {
  const lines = [
    "| caller | backend | active runs sustained | rate kept up to (p99 aside) | calls/s there | p99 ms there | CPU µs/call there: caller / server / db | overload: runs | offered/s | admitted (OK)/s | failed/s by code | admitted p99 ms | finished on time |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    // The capacity's step, else (no step passed) the last that kept the rate up.
    const at = r.steps.find((s) => s.runs === (r.capacityRuns ?? r.keptUpRuns));
    const cpu = at
      ? `${fmt(at.callerCpuUsPerCall, 0)} / ${fmt(at.serverCpuUsPerCall, 0)} / ${at.dbCpuUsPerCall === null ? "—" : fmt(at.dbCpuUsPerCall, 0)}`
      : "—";
    lines.push(
      `| ${CALLER_LABELS[r.caller]} | ${r.backend} | ${r.capacityRuns ?? "< first step"} | ${r.keptUpRuns ?? "< first step"} | ${at ? fmt(at.achievedPerSec, 0) : "—"} | ${at ? ms(at.p99Ms) : "—"} | ${cpu} | ${overloadCells(r.overload)} |`,
    );
  }
  return lines;
}
