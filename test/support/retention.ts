import { Writable } from "node:stream";
import { pino } from "pino";
import type { Registry } from "prom-client";
import type { Logger } from "../../src/logger.js";
import type { RetentionSettings } from "../../src/retention-settings.js";

/** A debug-level logger whose lines the test reads back, parsed. */
export function capturingLogger(): {
  logger: Logger;
  lines: { level: number; msg: string; [key: string]: unknown }[];
} {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, sink), lines };
}

/** The log lines of swept sweeps ("retention sweep", info). */
export function sweepLines(lines: { msg: string }[]): { msg: string }[] {
  return lines.filter((line) => line.msg === "retention sweep");
}

/** runstore_runs_deleted_total{reason="retention"} as `registry` reports it; null when absent. */
export async function deletedTotal(registry: Registry): Promise<number | null> {
  const text = await registry.metrics();
  const match = /^runstore_runs_deleted_total\{reason="retention"\} (\d+)$/m.exec(text);
  return match === null ? null : Number(match[1]);
}

/** Retention settings for a test: one day, no change log pruning, a long interval (sweeps are driven by sweepOnce), no pause. */
export function settings(overrides: Partial<RetentionSettings> = {}): RetentionSettings {
  return {
    days: 1,
    changeLogHours: 0,
    intervalMs: 3_600_000,
    batchSize: 500,
    pauseMs: 0,
    ...overrides,
  };
}
