/**
 * What one caller may take of the server, so that no caller (with or
 * without a token) can take it down: connections, streams, time and
 * answer size. Every value has a setting (src/config.ts) and a line in
 * docs/operations.md.
 */
export interface ServerLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: open calls per HTTP/2 connection. */
  maxConcurrentStreams: number;
  /** Open connections; one more is closed as it arrives. */
  maxConnections: number;
  /** A connection (or TLS handshake) that sends no whole request within it is closed. */
  firstRequestTimeoutMs: number;
  /** A connection with no call open for this long is closed (GOAWAY on HTTP/2). */
  idleTimeoutMs: number;
  /** A request whose body is not complete within it is cancelled. */
  bodyTimeoutMs: number;
  /** An answer the client does not take within it (a closed receive window) is cancelled. */
  sendTimeoutMs: number;
  /** Largest answer, in protobuf bytes; a larger one is RESOURCE_EXHAUSTED, never built. */
  maxResponseBytes: number;
  /** Health Watch streams open at once on one connection; one more is RESOURCE_EXHAUSTED. */
  maxWatchStreamsPerConnection: number;
  /** WatchRuns streams open at once in the server; one more is RESOURCE_EXHAUSTED. */
  maxRunWatchers: number;
}

/** The ceiling of maxResponseBytes whatever is configured. */
export const MAX_RESPONSE_BYTES_CEILING = 256 * 1024 * 1024;

/** Defaults for a store serving a few gateways; the settings' defaults. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxConcurrentStreams: 100,
  maxConnections: 1000,
  firstRequestTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  bodyTimeoutMs: 30_000,
  sendTimeoutMs: 30_000,
  maxResponseBytes: 64 * 1024 * 1024,
  maxWatchStreamsPerConnection: 10,
  maxRunWatchers: 1000,
};

/**
 * The settings of the limits: name, field, smallest and largest value,
 * meaning (src/config.ts reads them; `--help` and docs/operations.md list them).
 */
export const LIMIT_SETTINGS: readonly (readonly [
  string,
  keyof ServerLimits,
  number,
  number,
  string,
])[] = [
  [
    "MAX_CONCURRENT_STREAMS",
    "maxConcurrentStreams",
    1,
    10_000,
    "calls open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS), 1 to 10000",
  ],
  [
    "MAX_CONNECTIONS",
    "maxConnections",
    1,
    1_000_000,
    "open connections; one more is closed as it arrives (logged), 1 to 1000000",
  ],
  [
    "FIRST_REQUEST_TIMEOUT_MS",
    "firstRequestTimeoutMs",
    100,
    600_000,
    "ms a new connection (TLS handshake included) has to send a whole request before it is closed, 100 to 600000",
  ],
  [
    "IDLE_TIMEOUT_MS",
    "idleTimeoutMs",
    100,
    86_400_000,
    "ms a connection may stay open with no call before it is closed (HTTP/2: GOAWAY), 100 to 86400000",
  ],
  [
    "BODY_TIMEOUT_MS",
    "bodyTimeoutMs",
    100,
    3_600_000,
    "ms a request body may make no progress before the call is cancelled, 100 to 3600000",
  ],
  [
    "SEND_TIMEOUT_MS",
    "sendTimeoutMs",
    100,
    3_600_000,
    "ms a client may take none of an answer (a closed receive window) before the call is cancelled, 100 to 3600000",
  ],
  [
    "MAX_RESPONSE_BYTES",
    "maxResponseBytes",
    1024,
    MAX_RESPONSE_BYTES_CEILING,
    "largest answer in protobuf bytes, 1024 to 268435456; a larger one is RESOURCE_EXHAUSTED, never built",
  ],
  [
    "MAX_WATCH_STREAMS_PER_CONNECTION",
    "maxWatchStreamsPerConnection",
    1,
    1000,
    "health Watch streams open at once on one connection (1000 in the whole server), 1 to 1000, " +
      "and as many WatchRuns streams, counted apart; one more is RESOURCE_EXHAUSTED",
  ],
  [
    "MAX_RUN_WATCHERS",
    "maxRunWatchers",
    1,
    1_000_000,
    "WatchRuns streams open at once in the server, 1 to 1000000; one more is RESOURCE_EXHAUSTED",
  ],
];
