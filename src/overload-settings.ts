import type { OverloadLimits } from "./overload.js";
import { type ReportsPoolStats, reportsPoolStats } from "./pool-stats.js";

/** The server's MAX_INFLIGHT_REQUESTS when unset (an embedded startServer: unbounded). */
export const DEFAULT_MAX_INFLIGHT_REQUESTS = 1024;
/** The server's OVERLOAD_LAG_MS when unset (an embedded startServer: off). */
export const DEFAULT_OVERLOAD_LAG_MS = 50;

/** The overload rows of config.ts's SETTINGS (the `--help` and docs table). */
export const OVERLOAD_SETTINGS = [
  [
    "MAX_INFLIGHT_CALLS",
    "(unset)",
    "store calls the server runs at once, 1 to 100000 (unset: 2 × DB_POOL_SIZE on MySQL, 256 in memory); " +
      "more wait for a place (MAX_QUEUED_CALLS, QUEUE_TIMEOUT_MS)",
  ],
  [
    "MAX_QUEUED_CALLS",
    "(unset)",
    "store calls that may wait for a place, those waiting for their caller's DB_CALLER_SHARE included, " +
      "0 to 1000000 (unset: 4 × MAX_INFLIGHT_CALLS); one more is refused at once with UNAVAILABLE and a retry hint",
  ],
  [
    "QUEUE_TIMEOUT_MS",
    "200",
    "ms a store call may wait for a place among MAX_INFLIGHT_CALLS before it is refused with UNAVAILABLE and a retry hint, 1 to 600000",
  ],
  [
    "MAX_INFLIGHT_REQUESTS",
    String(DEFAULT_MAX_INFLIGHT_REQUESTS),
    "RunStoreService requests (WatchRuns excepted) between arrival and answer, 0 to 1000000 (0: unbounded); " +
      "one more is refused as it arrives, unread, with UNAVAILABLE and a retry hint",
  ],
  [
    "OVERLOAD_LAG_MS",
    String(DEFAULT_OVERLOAD_LAG_MS),
    "event loop delay in ms from which new RunStoreService requests (WatchRuns excepted) are refused as they arrive, " +
      "unread, with UNAVAILABLE and a retry hint, 0 to 60000 (0: off)",
  ],
] as const;

/** The overload settings as given: null where the store's default applies. */
export interface OverloadSettings {
  maxInflightCalls: number | null;
  maxQueuedCalls: number | null;
  queueTimeoutMs: number;
  /** 0: unbounded. */
  maxInflightRequests: number;
  /** 0: off. */
  overloadLagMs: number;
}

/** The settings' default for MAX_INFLIGHT_CALLS on a store without a pool. */
export const MEMORY_MAX_INFLIGHT_CALLS = 256;

/** The overload settings from `integer` (a checked integer setting or its default); `get` tells unset ones. */
export function overloadSettings(
  get: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
): OverloadSettings {
  const optional = (name: string, min: number, max: number) =>
    get(name) === undefined ? null : integer(name, 0, min, max);
  return {
    maxInflightCalls: optional("MAX_INFLIGHT_CALLS", 1, 100_000),
    maxQueuedCalls: optional("MAX_QUEUED_CALLS", 0, 1_000_000),
    queueTimeoutMs: integer("QUEUE_TIMEOUT_MS", 200, 1, 600_000),
    maxInflightRequests: integer(
      "MAX_INFLIGHT_REQUESTS",
      DEFAULT_MAX_INFLIGHT_REQUESTS,
      0,
      1_000_000,
    ),
    overloadLagMs: integer("OVERLOAD_LAG_MS", DEFAULT_OVERLOAD_LAG_MS, 0, 60_000),
  };
}

/**
 * The bounds for `store`: the settings given, the rest by default: twice
 * the pool (a call waits for a connection at most one query long, and the
 * pool never idles between two), 256 calls without a pool; four times as
 * many waiting; 200 ms of waiting. The request-level bounds are off unless
 * given (the server binary gives them: overloadSettings' defaults).
 */
export function defaultOverloadLimits(
  store: object,
  settings: Partial<OverloadSettings> = {},
): OverloadLimits {
  const maxInflightCalls =
    settings.maxInflightCalls ??
    (reportsPoolStats(store) ? 2 * poolSize(store) : MEMORY_MAX_INFLIGHT_CALLS);
  return {
    maxInflightCalls,
    maxQueuedCalls: settings.maxQueuedCalls ?? 4 * maxInflightCalls,
    queueTimeoutMs: settings.queueTimeoutMs ?? 200,
    maxInflightRequests: settings.maxInflightRequests ?? 0,
    overloadLagMs: settings.overloadLagMs ?? 0,
  };
}

function poolSize(store: ReportsPoolStats): number {
  const size = store.poolStats().size;
  return Number.isFinite(size) && size > 0 ? size : 10;
}
