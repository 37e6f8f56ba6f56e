import type { ServerOptions } from "../../src/server.js";
import { WATCH_SETTINGS, type WatchSettings } from "../../src/watch/watch-settings.js";

// The settings of the servers of cases that need their own (cases/README.md,
// "Watch steps"): the runners' defaults, a case's "settings" over them, and
// the same as startServer options for the TypeScript runners (the Python
// runner hands them to its server processes as environment variables).
// python/tests/contract/case_watch.py keeps the same defaults.

/**
 * Every case server's settings unless its case says otherwise: heartbeats
 * every 100 ms, so that "no further change is pending" (a heartbeat after
 * the expected changes) is quick to show, and MySQL's change log looked at
 * every 10 ms, well within a heartbeat, so a committed change reaches the
 * stream before the heartbeat that would say there is none.
 */
export const CASE_SERVER_DEFAULTS: Readonly<Record<string, number>> = {
  WATCH_HEARTBEAT_MS: 100,
  WATCH_POLL_MS: 10,
};

/** A case's settings over the defaults. */
export function caseSettings(settings: Record<string, number> | undefined): Record<string, number> {
  return { ...CASE_SERVER_DEFAULTS, ...settings };
}

/**
 * The startServer options of these settings: the WATCH_* settings as the
 * server reads them (watch-settings.ts), MAX_RUN_WATCHERS as a limit.
 * WATCH_LOG_MAX is the memory store's (the runner passes it to the store).
 */
export function serverSettings(settings: Record<string, number>): Partial<ServerOptions> {
  const watch: Partial<WatchSettings> = {};
  for (const [name, key] of WATCH_SETTINGS) {
    const value = settings[name];
    if (value !== undefined) watch[key] = value;
  }
  const options: Partial<ServerOptions> = { watch };
  const maxRunWatchers = settings.MAX_RUN_WATCHERS;
  if (maxRunWatchers !== undefined) options.limits = { maxRunWatchers };
  return options;
}
