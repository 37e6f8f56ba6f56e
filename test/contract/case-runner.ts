import { readdirSync, readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { idempotencyConflict, type RunStore, threadConflict } from "@runstore/client";
import { assert } from "vitest";
import {
  CALLS,
  CASE_METHODS,
  type CaseMethod,
  PART_1_RECORD_KEYS,
  WireForm,
} from "./case-calls.js";
import type { CaseServers } from "./case-servers.js";
import { ADMIN_TOKEN, type CaseTokens, checkCaseTokens, tokenOf } from "./case-tokens.js";
import { type CaseMemory, lookup, mismatches, resolve, substituteIndex } from "./case-values.js";
import { type ExpectFailure, WatchSteps } from "./case-watch.js";
import {
  type Backend,
  checkServerKeys,
  checkWatchStep,
  needsServers,
  newWatchScope,
  WATCH_ACTIONS,
  WATCH_MODIFIERS,
  type WatchScope,
  watchActionOf,
} from "./case-watch-format.js";

/** One rule of docs/contract.md as data: its wording and the store calls that show it. */
export interface ContractCase {
  name: string;
  steps: Step[];
  /**
   * The record keys its results are compared on, set on load: part 1's keys
   * for part 1's files, null (every key) for coordination-*.json.
   */
  recordKeys?: readonly string[] | null;
  /**
   * Only meaningful over the wire (a server feature, such as scoped tokens):
   * in-process stores count the case as not applicable.
   */
  remoteOnly?: boolean;
  /** The bearer tokens its steps call with ("as"); set on load with the file's. */
  tokens?: CaseTokens;
  /** The backends it is run on; undefined: every backend. Set on load with the file's. */
  backends?: Backend[];
  /** Server settings its servers start with (WATCH_WINDOW, …); set on load with the file's. */
  settings?: Record<string, number>;
  /**
   * Its watches must leave unread messages to HTTP/2 flow control (a slow
   * reader); set on load with the file's. Runners whose client reads ahead
   * leave it out (Python: grpcio).
   */
  slowReader?: boolean;
  /**
   * Set on load: it needs servers of its own, owned by the runner (it
   * watches, restarts a server, switches replica or sets settings).
   */
  servers?: boolean;
}

/**
 * One file of cases/: the docs/contract.md section it checks, and its cases.
 * "remoteOnly" and "tokens" given here apply to every case of the file.
 */
export interface CaseFile {
  spec: string;
  cases: ContractCase[];
  remoteOnly?: boolean;
  tokens?: CaseTokens;
  backends?: Backend[];
  settings?: Record<string, number>;
  slowReader?: boolean;
}

/** What a file says for all its cases, checked. */
type CaseScope = Pick<CaseFile, "remoteOnly" | "tokens" | "backends" | "settings" | "slowReader">;

/** A step as written in a case file; cases/README.md lists the forms. */
type Step = Record<string, unknown>;

const CASES_DIRECTORY = new URL("./cases/", import.meta.url);

/** What a step does: call a method, or one of these. Exactly one a step. */
const ACTIONS: readonly string[] = [...CASE_METHODS, "parallel", "mark", "check", ...WATCH_ACTIONS];

/** The keys a step may carry besides its action: a call's, or by action. */
const MODIFIERS: Record<string, readonly string[]> = {
  call: ["expect", "error", "message", "details", "save", "range", "tally", "as"],
  check: ["expect"],
  parallel: [],
  mark: [],
  ...WATCH_MODIFIERS,
};

/** The keys a file and a case may carry. */
const FILE_KEYS: readonly string[] = [
  "spec",
  "cases",
  "remoteOnly",
  "tokens",
  "backends",
  "settings",
  "slowReader",
];
const CASE_KEYS: readonly string[] = [
  "name",
  "steps",
  "remoteOnly",
  "tokens",
  "backends",
  "settings",
  "slowReader",
];

/** "CODE" or "CODE field", as cases/README.md writes an expected error. */
const ERROR_FORMAT = /^[A-Z][A-Z_]*( [^ ]+)?$/;

/** Every case file, in file-name order; a file the runner would misread throws. */
export function loadCaseFiles(): CaseFile[] {
  return readdirSync(CASES_DIRECTORY)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const document: unknown = JSON.parse(readFileSync(new URL(file, CASES_DIRECTORY), "utf8"));
      checkCaseFile(document, `test/contract/cases/${file}`);
      const recordKeys = isPart1File(file) ? PART_1_RECORD_KEYS : null;
      for (const contractCase of document.cases) contractCase.recordKeys = recordKeys;
      return document;
    });
}

/**
 * Part 1's files compare records on part 1's keys; part 2's (coordination
 * between workers), part 3's (history) and the scoped-token files compare
 * whole records.
 */
function isPart1File(file: string): boolean {
  return !["coordination-", "history-", "scoped-", "watch-"].some((prefix) =>
    file.startsWith(prefix),
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Refuses a file whose keys the runner would skip over (a typo such as
 * "expcet" would otherwise pass as "did not throw") and a case that asserts
 * nothing, naming the file, the case and the step. Gives each case the
 * file's "remoteOnly" and "tokens" (a case's own tokens add to the file's).
 */
export function checkCaseFile(document: unknown, file: string): asserts document is CaseFile {
  if (!isObject(document) || typeof document.spec !== "string" || !Array.isArray(document.cases)) {
    throw new Error(`${file}: needs "spec" (a string) and "cases" (a list)`);
  }
  checkKeys(document, FILE_KEYS, file);
  if (document.remoteOnly !== undefined && typeof document.remoteOnly !== "boolean") {
    throw new Error(`${file}: "remoteOnly" must be a boolean`);
  }
  if (document.tokens !== undefined) checkCaseTokens(document.tokens, file);
  for (const [i, contractCase] of (document.cases as unknown[]).entries()) {
    const where = `${file}: case ${i + 1}${isObject(contractCase) ? ` "${contractCase.name}"` : ""}`;
    if (
      !isObject(contractCase) ||
      typeof contractCase.name !== "string" ||
      !Array.isArray(contractCase.steps) ||
      contractCase.steps.length === 0
    ) {
      throw new Error(`${where}: needs "name" (a string) and "steps" (a list of steps)`);
    }
    checkKeys(contractCase, CASE_KEYS, where);
    inheritScope(contractCase, document as CaseScope, where);
    const tokens = contractCase.tokens as CaseTokens | undefined;
    const watches = newWatchScope();
    let assertions = 0;
    for (const [j, step] of (contractCase.steps as unknown[]).entries()) {
      assertions += checkStep(step, { tokens, watches }, `${where}, step ${j + 1}`);
    }
    if (assertions === 0) throw new Error(`${where}: asserts nothing (no expect, error or check)`);
    checkServerKeys(contractCase, watches, where);
    const steps = contractCase.steps as Record<string, unknown>[];
    contractCase.servers = needsServers(steps, contractCase.settings);
  }
}

function checkKeys(value: Record<string, unknown>, allowed: readonly string[], where: string) {
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw new Error(`${where}: unknown key "${unknown}" (allowed: ${allowed.join(", ")})`);
  }
}

/**
 * Sets a case's "remoteOnly" and "tokens" from its own and its file's
 * (checked already), and checks them: tokens need a server, so a case with
 * tokens is remote only.
 */
function inheritScope(contractCase: Record<string, unknown>, file: CaseScope, where: string) {
  const remoteOnly = contractCase.remoteOnly ?? file.remoteOnly ?? false;
  if (typeof remoteOnly !== "boolean") throw new Error(`${where}: "remoteOnly" must be a boolean`);
  contractCase.remoteOnly = remoteOnly;
  contractCase.backends ??= file.backends;
  contractCase.settings ??= file.settings;
  contractCase.slowReader ??= file.slowReader;
  if (contractCase.tokens !== undefined) checkCaseTokens(contractCase.tokens, where);
  if (file.tokens === undefined && contractCase.tokens === undefined) return;
  contractCase.tokens = { ...file.tokens, ...(contractCase.tokens as CaseTokens | undefined) };
  if (!remoteOnly) {
    throw new Error(
      `${where}: a case with "tokens" needs "remoteOnly": true (tokens need a server)`,
    );
  }
}

/** What the checks of one case's steps share: its tokens, and the watches it opened. */
interface StepScope {
  tokens: CaseTokens | undefined;
  /** Undefined inside a parallel, where watch steps are refused. */
  watches: WatchScope | undefined;
}

/** Checks one step (and the steps of a parallel); returns how many assertions they hold. */
function checkStep(step: unknown, scope: StepScope, where: string): number {
  const fail = (problem: string): never => {
    throw new Error(`${where}: ${problem} in ${JSON.stringify(step)}`);
  };
  if (!isObject(step)) return fail("a step must be an object");
  const actions = Object.keys(step).filter((key) => ACTIONS.includes(key));
  if (actions.length !== 1) {
    fail(
      `needs one action (a store method, parallel, mark, check or a watch step), not ${actions.length}`,
    );
  }
  const { tokens } = scope;
  const action = actions[0] as string;
  const isCall = (CASE_METHODS as readonly string[]).includes(action);
  const allowed = MODIFIERS[isCall ? "call" : action] as readonly string[];
  for (const key of Object.keys(step)) {
    if (key !== action && !allowed.includes(key)) {
      fail(`unknown key "${key}" (next to ${action}: ${allowed.join(", ") || "none"})`);
    }
  }
  if ("error" in step && (typeof step.error !== "string" || !ERROR_FORMAT.test(step.error))) {
    fail('"error" must be a string "CODE" or "CODE field"');
  }
  if ("error" in step && ("expect" in step || "save" in step)) {
    fail('"error" is for a call that fails: it has no result to expect or save');
  }
  if ("details" in step && !("error" in step)) fail('"details" goes with an "error"');
  if ("message" in step && (typeof step.message !== "string" || !("error" in step))) {
    fail('"message" (a string) goes with an "error"');
  }
  if ("as" in step && !(typeof step.as === "string" && tokens !== undefined && step.as in tokens)) {
    fail(`"as" must name a token of the case (${Object.keys(tokens ?? {}).join(", ") || "none"})`);
  }
  if ("tally" in step && (typeof step.tally !== "string" || "expect" in step || "error" in step)) {
    fail('"tally" must be a string, on a call with no "expect" or "error" (check it later)');
  }
  if ("save" in step && typeof step.save !== "string") fail('"save" must be a string');
  if ("range" in step && !(Number.isInteger(step.range) && (step.range as number) > 0)) {
    fail('"range" must be a positive integer');
  }
  if (action === "mark" && typeof step.mark !== "string") fail('"mark" must be a string');
  if (action === "check" && (typeof step.check !== "string" || !("expect" in step))) {
    fail('"check" must be a string, with an "expect"');
  }
  const watchAction = watchActionOf(step);
  if (watchAction !== undefined) {
    if (scope.watches === undefined) fail("watch steps run one at a time, not in a parallel");
    return checkWatchStep(step, watchAction, scope.watches as WatchScope, fail);
  }
  if (action === "parallel") {
    if (!Array.isArray(step.parallel) || step.parallel.length === 0) {
      fail('"parallel" must be a list of steps');
    }
    return (step.parallel as unknown[]).reduce<number>(
      (sum, inner, k) =>
        sum + checkStep(inner, { tokens, watches: undefined }, `${where}.${k + 1}`),
      0,
    );
  }
  if (isCall && !isObject(step[action])) fail(`the arguments of ${action} must be an object`);
  return "expect" in step || "error" in step ? 1 : 0;
}

function expectMatch(actual: unknown, expected: unknown, memory: CaseMemory, where: string) {
  const problems = mismatches(actual, expected, memory);
  if (problems.length > 0) assert.fail(`${where}:\n  ${problems.join("\n  ")}`);
}

/** "ALREADY_EXISTS" for Code.AlreadyExists. */
function codeName(code: Code): string {
  return camelToUpperSnake(Code[code]);
}

function camelToUpperSnake(name: string): string {
  return name.replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
}

/**
 * The typed detail of a conflict, in wire form: a thread conflict as
 * {thread_id, conflicting_run_id}, an idempotency conflict as the record
 * holding the key; null when the error carries none.
 */
function conflictDetails(error: ConnectError, wire: WireForm, at: string): unknown {
  if (error.code === Code.Aborted) {
    const conflict = threadConflict(error);
    return conflict === null
      ? null
      : { thread_id: conflict.threadId, conflicting_run_id: conflict.conflictingRunId };
  }
  if (error.code === Code.AlreadyExists) return wire.record(idempotencyConflict(error));
  return assert.fail(
    `${at}: only ABORTED and ALREADY_EXISTS carry details, got ${codeName(error.code)}`,
  );
}

function expectError(
  error: ConnectError | undefined,
  step: Step,
  context: Pick<StepContext, "wire" | "memory">,
  at: string,
) {
  const expected = step.error as string;
  if (error === undefined) assert.fail(`${at}: expected ${expected}, but the call succeeded`);
  const [code = "", field] = expected.split(" ");
  assert.strictEqual(codeName(error.code), code, `${at}: status code (${error.rawMessage})`);
  if (field !== undefined && !error.rawMessage.startsWith(`${field} `)) {
    assert.fail(`${at}: the message should name ${field}: "${error.rawMessage}"`);
  }
  if ("message" in step) assert.strictEqual(error.rawMessage, step.message, `${at}: message`);
  if ("details" in step) {
    const details = conflictDetails(error, context.wire, at);
    expectMatch(details, step.details, context.memory, `${at} details`);
  }
}

/** Appends a call's outcome to a tally: its result in wire form, or {"error": "CODE"}. */
function tally(memory: CaseMemory, name: string, outcome: unknown) {
  const list = (memory.saved.get(name) as unknown[] | undefined) ?? [];
  list.push(outcome);
  memory.saved.set(name, list);
}

async function runCall(step: Step, context: StepContext, where: string) {
  const method = Object.keys(step).find((key) => ACTIONS.includes(key)) as CaseMethod;
  const call = CALLS[method];
  const args = resolve(step[method], context.memory) as Record<string, unknown>;
  const store = context.stores(step.as as string | undefined);
  const outcome = await call.invoke(store, args).then(
    (result) => ({ result, error: undefined, thrown: undefined }),
    (thrown: unknown) => ({ result: undefined, error: ConnectError.from(thrown), thrown }),
  );
  const at = `${where} (${method})`;
  const { memory, wire } = context;
  if (typeof step.tally === "string") {
    // Only a store's refusal is an outcome; anything else (a TypeError) is a failure.
    if (outcome.thrown !== undefined && !(outcome.thrown instanceof ConnectError)) {
      throw outcome.thrown;
    }
    const value =
      outcome.error === undefined
        ? call.toWire(outcome.result, wire)
        : { error: codeName(outcome.error.code) };
    tally(memory, step.tally, value);
    return;
  }
  if (typeof step.error === "string") return expectError(outcome.error, step, context, at);
  if (outcome.error !== undefined) throw outcome.error;
  const result = call.toWire(outcome.result, wire);
  if (typeof step.save === "string") memory.saved.set(step.save, result);
  if ("expect" in step) expectMatch(result, step.expect, memory, at);
}

/**
 * A mark: waits until the wall clock's millisecond moves on, then records it.
 * Every timestamp written before the mark is then earlier than it, and every
 * one written after is at or after it (at millisecond granularity, which the
 * server's and this process's clocks share). The wait is the clock's
 * granularity, at most 1 ms, not a synchronisation sleep.
 */
async function takeMark(): Promise<string> {
  const start = Date.now();
  while (Date.now() <= start) await new Promise((resolve) => setImmediate(resolve));
  return new Date(Date.now()).toISOString().slice(0, 23);
}

/**
 * The store a step calls: without "as", the case's store; with "as", that
 * store as seen through the named token of the case (remote runners only).
 */
export type CaseStores = (token: string | undefined) => RunStore;

/** What the steps of one case share. */
interface StepContext {
  memory: CaseMemory;
  wire: WireForm;
  stores: CaseStores;
  /** The watch steps' state; undefined for a case without servers of its own. */
  watch: WatchSteps | undefined;
}

async function runStep(step: Step, context: StepContext, where: string) {
  const { memory } = context;
  const watchAction = watchActionOf(step);
  if (watchAction !== undefined) {
    if (context.watch === undefined) throw new Error(`${where}: a watch step needs CaseServers`);
    await context.watch.run(step, watchAction, where);
  } else if (typeof step.mark === "string") {
    memory.marks.set(step.mark, await takeMark());
  } else if (Array.isArray(step.parallel)) {
    const steps = step.parallel as Step[];
    await Promise.all(steps.map((s, i) => runStep(s, context, `${where}.${i + 1}`)));
  } else if (typeof step.range === "number") {
    const { range, ...single } = step;
    const width = String(range - 1).length;
    const copies = Array.from({ length: range }, (_, i) =>
      substituteIndex(single, String(i).padStart(width, "0")),
    ) as Step[];
    await runStep({ parallel: copies }, context, where);
  } else if (typeof step.check === "string") {
    expectMatch(lookup(memory, step.check), step.expect, memory, `${where} (${step.check})`);
  } else {
    await runCall(step, context, where);
  }
}

/**
 * Runs a case's steps in order; the first mismatch fails the test. `stores`
 * gives the store each step calls: a RunStore alone serves a case without
 * tokens; a case that needs servers of its own (watch steps) gets
 * CaseServers, through which its calls go to the replica of the moment.
 */
export async function runCase(
  stores: RunStore | CaseStores | CaseServers,
  contractCase: ContractCase,
): Promise<void> {
  const memory: CaseMemory = { marks: new Map(), saved: new Map() };
  const wire = new WireForm(contractCase.recordKeys ?? null);
  const context: StepContext = { memory, wire, stores: () => stores as RunStore, watch: undefined };
  if (typeof stores === "function") context.stores = stores;
  if (isCaseServers(stores)) {
    const tokenOf = caseTokenOf(contractCase);
    const expectFailure: ExpectFailure = (error, step, at) => expectError(error, step, context, at);
    const watch = new WatchSteps({ servers: stores, memory, wire, tokenOf, expectFailure });
    context.watch = watch;
    context.stores = (name) => stores.store(watch.replica, tokenOf(name));
  }
  try {
    for (const [i, step] of contractCase.steps.entries()) {
      await runStep(step, context, `step ${i + 1}`);
    }
  } finally {
    context.watch?.closeAll();
  }
}

function isCaseServers(stores: RunStore | CaseStores | CaseServers): stores is CaseServers {
  return typeof stores === "object" && "urlOf" in stores;
}

/**
 * The bearer token of a step of a case with servers of its own: its "as"
 * token's, else the unscoped admin token when the case has tokens (its
 * servers require them), else none.
 */
function caseTokenOf(contractCase: ContractCase): (name: string | undefined) => string | undefined {
  const tokens = contractCase.tokens;
  return (name) => {
    if (tokens === undefined) return undefined;
    const scope = name === undefined ? undefined : tokens[name];
    return scope === undefined ? ADMIN_TOKEN : tokenOf(scope);
  };
}
