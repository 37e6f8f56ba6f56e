// The watch steps of the cases (cases/README.md, "Watch steps"): what a
// step that opens, reads, resumes or closes a WatchRuns stream, or restarts
// the case's server or switches replica, may say, and the case keys that go
// with them ("backends", "settings"). Checked on load, so a typo fails the
// load naming the file, the case and the step.
// python/tests/contract/case_watch_format.py is the same in Python; a change
// here is a change there.

/** The actions of the watch steps, next to the store methods, parallel, mark and check. */
export const WATCH_ACTIONS = [
  "watch",
  "expectChanges",
  "closeWatch",
  "resumeWatch",
  "restartServer",
  "stopServer",
  "startServer",
  "replica",
] as const;

/** A watch step's action. */
export type WatchAction = (typeof WATCH_ACTIONS)[number];

/** The keys each watch action may carry besides itself. */
export const WATCH_MODIFIERS: Record<WatchAction, readonly string[]> = {
  watch: ["filter", "as", "error", "message", "save"],
  expectChanges: ["changes", "error", "message"],
  closeWatch: [],
  resumeWatch: ["as", "error", "message"],
  restartServer: [],
  stopServer: [],
  startServer: [],
  replica: [],
};

/** The backends a case may be limited to ("backends"). */
export const BACKENDS = ["memory", "mysql"] as const;

/** A backend a remote runner serves. */
export type Backend = (typeof BACKENDS)[number];

/**
 * The server settings a case may give its servers ("settings"): positive
 * integers, environment variable names as docs/operations.md lists them.
 */
export const CASE_SETTINGS: readonly string[] = [
  "WATCH_WINDOW",
  "WATCH_HEARTBEAT_MS",
  "WATCH_POLL_MS",
  "WATCH_LOG_MAX",
  "MAX_RUN_WATCHERS",
];

/** The keys of a watch step's "filter": WatchRunsRequest's, wire names. */
const FILTER_KEYS: readonly string[] = [
  "user_id",
  "thread_id",
  "statuses",
  "active_only",
  "operation_kinds",
  "cursor",
];

/** The keys of an expected change; kind and run are required. */
const CHANGE_KEYS: readonly string[] = ["kind", "run", "left_filter"];

const CHANGE_KINDS: readonly string[] = ["created", "updated", "deleted"];

/** The replica names a case may switch to: "a" (every case starts on it) and "b". */
const REPLICAS: readonly string[] = ["a", "b"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** True when the step is a watch step (one of WATCH_ACTIONS is a key of it). */
export function watchActionOf(step: Record<string, unknown>): WatchAction | undefined {
  return WATCH_ACTIONS.find((action) => action in step);
}

/**
 * How many changes an "expectChanges" step reads: the length of its list,
 * or the `$length` (or the `$anyOrder` list's length) of its matcher.
 */
export function expectedCount(changes: unknown): number | undefined {
  if (Array.isArray(changes)) return changes.length;
  if (!isObject(changes)) return undefined;
  if (Number.isInteger(changes.$length)) return changes.$length as number;
  return Array.isArray(changes.$anyOrder) ? changes.$anyOrder.length : undefined;
}

type Fail = (problem: string) => never;

function checkFilter(filter: unknown, fail: Fail) {
  if (!isObject(filter)) fail('"filter" must be an object of WatchRunsRequest fields');
  const unknown = Object.keys(filter as object).find((key) => !FILTER_KEYS.includes(key));
  if (unknown !== undefined) {
    fail(`unknown filter key "${unknown}" (allowed: ${FILTER_KEYS.join(", ")})`);
  }
}

function checkChange(change: unknown, fail: Fail, index: number) {
  const at = `change ${index + 1}`;
  if (!isObject(change) || !("kind" in change) || !("run" in change)) {
    fail(`${at} needs "kind" and "run"`);
  }
  const record = change as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => !CHANGE_KEYS.includes(key));
  if (unknown !== undefined) {
    fail(`${at}: unknown key "${unknown}" (allowed: ${CHANGE_KEYS.join(", ")})`);
  }
  if (!CHANGE_KINDS.includes(record.kind as string)) {
    fail(`${at}: "kind" must be one of ${CHANGE_KINDS.join(", ")}`);
  }
  if ("left_filter" in record && typeof record.left_filter !== "boolean") {
    fail(`${at}: "left_filter" must be a boolean`);
  }
}

function checkExpectChanges(step: Record<string, unknown>, fail: Fail) {
  if ("error" in step) {
    if ("changes" in step)
      fail('"changes" and "error" do not go together: the error ends the read');
    return;
  }
  if (!("changes" in step)) fail('"expectChanges" needs "changes" (or an "error")');
  const { changes } = step;
  if (Array.isArray(changes)) {
    for (const [i, change] of changes.entries()) checkChange(change, fail, i);
  } else if (expectedCount(changes) === undefined) {
    fail('"changes" must be a list of changes, or a matcher with "$length" or "$anyOrder"');
  }
}

/**
 * What one case's watch steps have said so far: the watches opened (a later
 * step may only name one of them) and whether a replica was named.
 */
export interface WatchScope {
  watches: Set<string>;
  usesReplica: boolean;
  usesWatch: boolean;
}

/** A fresh scope for the steps of one case. */
export function newWatchScope(): WatchScope {
  return { watches: new Set(), usesReplica: false, usesWatch: false };
}

/**
 * Checks a watch step's own rules (its modifiers are checked by the
 * caller); returns how many assertions it holds. A watch, resumeWatch or
 * expectChanges step asserts (the first message is a heartbeat; these
 * changes and then a heartbeat; or the error).
 */
export function checkWatchStep(
  step: Record<string, unknown>,
  action: WatchAction,
  scope: WatchScope,
  fail: Fail,
): number {
  const value = step[action];
  if (action === "watch") {
    if (typeof value !== "string" || value === "") fail('"watch" must name the watch (a string)');
    if ("filter" in step) checkFilter(step.filter, fail);
    if ("save" in step && typeof step.save !== "string") fail('"save" must be a string');
    scope.watches.add(value as string);
    scope.usesWatch = true;
    return 1;
  }
  if (action === "expectChanges" || action === "closeWatch" || action === "resumeWatch") {
    if (typeof value !== "string" || !scope.watches.has(value)) {
      fail(`"${action}" must name a watch opened by an earlier step`);
    }
    if (action === "expectChanges") checkExpectChanges(step, fail);
    return action === "closeWatch" ? 0 : 1;
  }
  if (action === "replica") {
    if (!REPLICAS.includes(value as string))
      fail(`"replica" must be one of ${REPLICAS.join(", ")}`);
    scope.usesReplica = true;
    return 0;
  }
  if (value !== true) fail(`"${action}" must be true`);
  return 0;
}

/**
 * Checks a case's "backends" and "settings" (its own, or its file's) and
 * that its watch steps fit them: watch steps need a server (remoteOnly),
 * and a second replica needs a store two servers share (MySQL only).
 */
export function checkServerKeys(
  contractCase: Record<string, unknown>,
  scope: WatchScope,
  where: string,
) {
  const { backends, settings, slowReader } = contractCase;
  if (slowReader !== undefined && typeof slowReader !== "boolean") {
    throw new Error(`${where}: "slowReader" must be a boolean`);
  }
  if (backends !== undefined) {
    if (
      !Array.isArray(backends) ||
      backends.length === 0 ||
      backends.some((b) => !(BACKENDS as readonly unknown[]).includes(b))
    ) {
      throw new Error(`${where}: "backends" must be a non-empty list of ${BACKENDS.join(", ")}`);
    }
  }
  if (settings !== undefined) {
    if (!isObject(settings)) throw new Error(`${where}: "settings" must be an object`);
    for (const [name, setting] of Object.entries(settings)) {
      if (!CASE_SETTINGS.includes(name)) {
        throw new Error(
          `${where}: unknown setting "${name}" (allowed: ${CASE_SETTINGS.join(", ")})`,
        );
      }
      if (!(Number.isInteger(setting) && (setting as number) > 0)) {
        throw new Error(`${where}: setting "${name}" must be a positive integer`);
      }
    }
  }
  if ((scope.usesWatch || settings !== undefined) && contractCase.remoteOnly !== true) {
    throw new Error(
      `${where}: a case with watch steps or "settings" needs "remoteOnly": true (a server feature)`,
    );
  }
  const mysqlOnly = Array.isArray(backends) && backends.length === 1 && backends[0] === "mysql";
  if (scope.usesReplica && !mysqlOnly) {
    throw new Error(
      `${where}: a case with "replica" needs "backends": ["mysql"] (two servers share one database)`,
    );
  }
}

/** True when the case needs servers of its own: it watches, restarts, switches replica or sets settings. */
export function needsServers(
  steps: readonly Record<string, unknown>[],
  settings: unknown,
): boolean {
  return settings !== undefined || steps.some((step) => watchActionOf(step) !== undefined);
}
