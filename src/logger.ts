import { type Logger, pino } from "pino";

export type { Logger };

/** Log levels an operator may choose with LOG_LEVEL. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * The server's structured JSON logger (one object per line on stdout). Info
 * and above carry start/stop/error events only; per-request lines are debug.
 * Nothing logs a token or a message body: the auth interceptor logs only the
 * procedure and the reason, and request logs only procedure, code and time.
 */
export function createLogger(level: (typeof LOG_LEVELS)[number] = "info"): Logger {
  // Synchronous writes: the lines before a process.exit (stopped, fatal)
  // must not be lost in an async buffer, as they were under load.
  return pino(
    { level, base: { service: "runstore" }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
