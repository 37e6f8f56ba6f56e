import { MAX_SWEEP_BATCH } from "./stores/check-retention.js";

/** The RETENTION_* rows of config.ts's SETTINGS (the `--help` and docs table). */
export const RETENTION_SETTINGS = [
  [
    "RETENTION_DAYS",
    "(unset)",
    "when set, 1 to 36500: a background sweeper deletes terminal runs whose updated_at is older than this many days; unset keeps every run",
  ],
  [
    "RETENTION_INTERVAL_S",
    "600",
    "seconds between two sweeps, 1 to 86400; with several replicas on one database one of them sweeps each time",
  ],
  ["RETENTION_BATCH_SIZE", "500", "runs deleted by one statement of a sweep, 1 to 10000"],
  ["RETENTION_PAUSE_MS", "100", "ms between two batches of a sweep, 0 to 60000"],
] as const;

/** How old terminal runs are swept (retention.ts). */
export interface RetentionSettings {
  days: number;
  intervalMs: number;
  batchSize: number;
  pauseMs: number;
}

/**
 * The retention settings from `integer` (a checked integer setting or its
 * default); null when RETENTION_DAYS is unset: nothing is ever deleted.
 * The other settings are checked even then, so a wrong one is refused at
 * start-up rather than when retention is turned on.
 */
export function retentionSettings(
  get: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
): RetentionSettings | null {
  const others = {
    intervalMs: integer("RETENTION_INTERVAL_S", 600, 1, 86400) * 1000,
    batchSize: integer("RETENTION_BATCH_SIZE", 500, 1, MAX_SWEEP_BATCH),
    pauseMs: integer("RETENTION_PAUSE_MS", 100, 0, 60000),
  };
  if (get("RETENTION_DAYS") === undefined) return null;
  return { days: integer("RETENTION_DAYS", 0, 1, 36500), ...others };
}
