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
  [
    "CHANGE_LOG_HOURS",
    "24",
    "MySQL: the same sweeper deletes changes of the WatchRuns change log recorded more than this many hours ago, 0 to 8760; 0 keeps every change",
  ],
] as const;

/** How old terminal runs and old changes are swept (retention.ts). */
export interface RetentionSettings {
  /** Terminal runs not updated for this many days are deleted; null: none (RETENTION_DAYS unset). */
  days: number | null;
  /** Changes of the change log older than this many hours are deleted (MySQL); 0: none. */
  changeLogHours: number;
  intervalMs: number;
  batchSize: number;
  pauseMs: number;
}

/**
 * The retention settings from `integer` (a checked integer setting or its
 * default); null when RETENTION_DAYS is unset and CHANGE_LOG_HOURS is 0:
 * nothing is ever deleted. The other settings are checked even then, so a
 * wrong one is refused at start-up rather than when retention is turned on.
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
  const changeLogHours = integer("CHANGE_LOG_HOURS", 24, 0, 8760);
  const days = get("RETENTION_DAYS") === undefined ? null : integer("RETENTION_DAYS", 0, 1, 36500);
  if (days === null && changeLogHours === 0) return null;
  return { days, changeLogHours, ...others };
}
