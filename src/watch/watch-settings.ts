import { DEFAULT_WATCH_LOG_MAX } from "../stores/memory-change-feed.js";

/**
 * The WatchRuns settings (docs/operations.md, "Live changes"). MAX_RUN_WATCHERS
 * is a limit (limits.ts); CHANGE_LOG_HOURS belongs to retention (retention-settings.ts).
 */
export interface WatchSettings {
  /** Changes the hub keeps for its live streams; a stream further behind is ABORTED. */
  window: number;
  /** Changes the memory store's log keeps to resume from. */
  logMax: number;
  /** ms without a message after which a stream sends a heartbeat. */
  heartbeatMs: number;
  /** ms between two looks at a MySQL change log while anyone watches. */
  pollMs: number;
}

/** Every setting's default. */
export const DEFAULT_WATCH_SETTINGS: WatchSettings = {
  window: 10_000,
  logMax: DEFAULT_WATCH_LOG_MAX,
  heartbeatMs: 15_000,
  pollMs: 100,
};

/** Name, field, smallest and largest value, meaning: read by config.ts, listed by `--help` and the docs. */
export const WATCH_SETTINGS: readonly (readonly [
  string,
  keyof WatchSettings,
  number,
  number,
  string,
])[] = [
  [
    "WATCH_WINDOW",
    "window",
    10,
    1_000_000,
    "newest changes the server keeps in memory for its WatchRuns streams, 10 to 1000000; " +
      "a stream further behind (a slow reader) ends with ABORTED and resumes from its cursor",
  ],
  [
    "WATCH_LOG_MAX",
    "logMax",
    1,
    100_000_000,
    "changes the in-memory store keeps for WatchRuns to resume from, 1 to 100000000; " +
      "an older cursor is OUT_OF_RANGE",
  ],
  [
    "WATCH_HEARTBEAT_MS",
    "heartbeatMs",
    10,
    3_600_000,
    "ms a WatchRuns stream may go without a message before it sends a heartbeat, 10 to 3600000",
  ],
  [
    "WATCH_POLL_MS",
    "pollMs",
    10,
    60_000,
    "ms between two reads of the MySQL change log while any WatchRuns stream is open, 10 to 60000",
  ],
];

/** The settings from `integer` (a checked integer setting or its default). */
export function watchSettings(
  integer: (name: string, fallback: number, min: number, max: number) => number,
): WatchSettings {
  const settings = { ...DEFAULT_WATCH_SETTINGS };
  for (const [name, key, min, max] of WATCH_SETTINGS) {
    settings[key] = integer(name, DEFAULT_WATCH_SETTINGS[key], min, max);
  }
  return settings;
}
