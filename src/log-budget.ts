import type { Logger } from "./logger.js";

/** Warn lines a budget lets through per window by default. */
export const LOG_LINES_PER_WINDOW = 20;
/** The default window of a budget. */
export const LOG_WINDOW_MS = 60_000;

/** How many lines a budget lets through, and per how long. */
export interface LogBudgetSettings {
  linesPerWindow: number;
  windowMs: number;
}

/** Lines left in the current window, and the events that found none. */
export interface LogBudget {
  /** True when this event may be logged; false when it is only counted. */
  take(): boolean;
  /** Ends the window timer (its server has closed); nothing more is summed up. */
  stop(): void;
}

/**
 * A budget for warn lines that anyone who can reach the port can cause as
 * fast as they can connect (refused calls, dropped connections, refused
 * certificates): at most linesPerWindow a window, so a flood cannot fill
 * the log or, with a synchronous logger, slow the server down. Events past
 * that are counted and reported in one warn line `summary` with
 * `{ suppressed, windowMs }` when the window ends; a window within budget
 * ends silently.
 */
export function logBudget(
  logger: Logger,
  summary: string,
  settings: LogBudgetSettings = { linesPerWindow: LOG_LINES_PER_WINDOW, windowMs: LOG_WINDOW_MS },
): LogBudget {
  const { linesPerWindow, windowMs } = settings;
  let left = linesPerWindow;
  let suppressed = 0;
  let timer: NodeJS.Timeout | undefined;
  const endWindow = () => {
    timer = undefined;
    if (suppressed > 0) logger.warn({ suppressed, windowMs }, summary);
    left = linesPerWindow;
    suppressed = 0;
  };
  return {
    take() {
      if (timer === undefined) timer = setTimeout(endWindow, windowMs).unref();
      if (left > 0) {
        left--;
        return true;
      }
      suppressed++;
      return false;
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
