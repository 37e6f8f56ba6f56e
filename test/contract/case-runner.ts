import { readdirSync, readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import type { PutFields, RunCompletion, RunStatus, RunStore } from "@runstore/client";
import { assert } from "vitest";
import { type CaseMemory, lookup, mismatches, resolve, substituteIndex } from "./case-values.js";

/** One rule of docs/contract.md as data: its wording and the store calls that show it. */
export interface ContractCase {
  name: string;
  steps: Step[];
}

/** One file of cases/: the docs/contract.md section it checks, and its cases. */
export interface CaseFile {
  spec: string;
  cases: ContractCase[];
}

/** A step as written in a case file; cases/README.md lists the forms. */
type Step = Record<string, unknown>;

const CASES_DIRECTORY = new URL("./cases/", import.meta.url);

/**
 * The store methods a step may call, by their contract names: every method
 * of the contract, including those this runner cannot call yet (CALLS below
 * says which it can). python/tests/contract/case_runner.py keeps the same list.
 */
const CASE_METHODS = [
  "put",
  "get",
  "list_by_thread",
  "update_status",
  "delete",
  "update_model_name",
  "update_run_completion",
  "update_run_progress",
  "list_pending",
  "list_inflight",
  "aggregate_tokens_by_thread",
  "create_thread_operation",
  "start_run",
  "renew_lease",
  "update_lease",
  "request_cancel",
  "finalize_if_not_cancelled",
  "claim_for_takeover",
  "list_inflight_with_expired_lease",
  "claim_next_run",
  "delete_thread_operation",
  "get_many_by_thread",
  "list_successful_regenerate_sources",
  "list_edit_regenerate_runs",
] as const;

type CaseMethod = (typeof CASE_METHODS)[number];

/** What a step does: call a method, or one of these. Exactly one a step. */
const ACTIONS: readonly string[] = [...CASE_METHODS, "parallel", "mark", "check"];

/** The keys a step may carry besides its action: a call's, or by action. */
const MODIFIERS: Record<string, readonly string[]> = {
  call: ["expect", "error", "save", "range"],
  check: ["expect"],
  parallel: [],
  mark: [],
};

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
      return document;
    });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Refuses a file whose keys the runner would skip over (a typo such as
 * "expcet" would otherwise pass as "did not throw") and a case that asserts
 * nothing, naming the file, the case and the step.
 */
function checkCaseFile(document: unknown, file: string): asserts document is CaseFile {
  if (!isObject(document) || typeof document.spec !== "string" || !Array.isArray(document.cases)) {
    throw new Error(`${file}: needs "spec" (a string) and "cases" (a list)`);
  }
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
    let assertions = 0;
    for (const [j, step] of (contractCase.steps as unknown[]).entries()) {
      assertions += checkStep(step, `${where}, step ${j + 1}`);
    }
    if (assertions === 0) throw new Error(`${where}: asserts nothing (no expect, error or check)`);
  }
}

/** Checks one step (and the steps of a parallel); returns how many assertions they hold. */
function checkStep(step: unknown, where: string): number {
  const fail = (problem: string): never => {
    throw new Error(`${where}: ${problem} in ${JSON.stringify(step)}`);
  };
  if (!isObject(step)) return fail("a step must be an object");
  const actions = Object.keys(step).filter((key) => ACTIONS.includes(key));
  if (actions.length !== 1) {
    fail(`needs one action (a store method, parallel, mark or check), not ${actions.length}`);
  }
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
  if ("save" in step && typeof step.save !== "string") fail('"save" must be a string');
  if ("range" in step && !(Number.isInteger(step.range) && (step.range as number) > 0)) {
    fail('"range" must be a positive integer');
  }
  if (action === "mark" && typeof step.mark !== "string") fail('"mark" must be a string');
  if (action === "check" && (typeof step.check !== "string" || !("expect" in step))) {
    fail('"check" must be a string, with an "expect"');
  }
  if (action === "parallel") {
    if (!Array.isArray(step.parallel) || step.parallel.length === 0) {
      fail('"parallel" must be a list of steps');
    }
    return (step.parallel as unknown[]).reduce<number>(
      (sum, inner, k) => sum + checkStep(inner, `${where}.${k + 1}`),
      0,
    );
  }
  if (isCall && !isObject(step[action])) fail(`the arguments of ${action} must be an object`);
  return "expect" in step || "error" in step ? 1 : 0;
}

type Args = Record<string, unknown>;

function snakeToCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The top-level keys in the other spelling; values (metadata, model names) untouched. */
function renameKeys(value: object, rename: (name: string) => string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [rename(key), item]));
}

/** A call's options object: wire names in the interface's spelling. */
function camel(args: Args): Record<string, never> {
  return renameKeys(args, snakeToCamel) as Record<string, never>;
}

function recordToWire(record: unknown): unknown {
  return record === null ? null : renameKeys(record as object, camelToSnake);
}

function recordsToWire(records: unknown): unknown {
  return (records as object[]).map(recordToWire);
}

function usageToWire(usage: unknown): unknown {
  const wire = renameKeys(usage as object, camelToSnake);
  return { ...wire, by_caller: renameKeys(wire.by_caller as object, camelToSnake) };
}

/** The methods that return nothing: the call must resolve to undefined. */
const VOID = (result: unknown) => {
  assert.strictEqual(result, undefined, "a method that returns nothing returned something");
  return null;
};

interface Call {
  invoke(store: RunStore, args: Args): Promise<unknown>;
  toWire(result: unknown): unknown;
}

/* The wire arguments of a case as the TypeScript interface takes them. The
 * values are handed over as they are, a wrong type included: the store must
 * refuse it as the server would, so the casts below only quiet the compiler. */
const CALLS: Partial<Record<CaseMethod, Call>> = {
  put: {
    invoke: (s, { run_id, ...rest }) =>
      s.put(run_id as string, camel(rest) as unknown as PutFields),
    toWire: VOID,
  },
  get: {
    invoke: (s, { run_id, ...rest }) => s.get(run_id as string, camel(rest)),
    toWire: recordToWire,
  },
  list_by_thread: {
    invoke: (s, { thread_id, ...rest }) => s.listByThread(thread_id as string, camel(rest)),
    toWire: recordsToWire,
  },
  update_status: {
    invoke: (s, { run_id, status, ...rest }) =>
      s.updateStatus(run_id as string, status as RunStatus, camel(rest)),
    toWire: (result) => result,
  },
  delete: {
    invoke: (s, { run_id, ...rest }) => s.delete(run_id as string, camel(rest)),
    toWire: VOID,
  },
  update_model_name: {
    invoke: (s, { run_id, model_name }) =>
      s.updateModelName(run_id as string, model_name as string | null),
    toWire: VOID,
  },
  update_run_completion: {
    invoke: (s, { run_id, ...rest }) =>
      s.updateRunCompletion(run_id as string, camel(rest) as unknown as RunCompletion),
    toWire: (result) => result,
  },
  update_run_progress: {
    invoke: (s, { run_id, ...rest }) => s.updateRunProgress(run_id as string, camel(rest)),
    toWire: VOID,
  },
  list_pending: {
    invoke: (s, args) => s.listPending(camel(args)),
    toWire: recordsToWire,
  },
  list_inflight: {
    invoke: (s, args) => s.listInflight(camel(args)),
    toWire: recordsToWire,
  },
  aggregate_tokens_by_thread: {
    invoke: (s, { thread_id, ...rest }) =>
      s.aggregateTokensByThread(thread_id as string, camel(rest)),
    toWire: usageToWire,
  },
};

function expectMatch(actual: unknown, expected: unknown, memory: CaseMemory, where: string) {
  const problems = mismatches(actual, expected, memory);
  if (problems.length > 0) assert.fail(`${where}:\n  ${problems.join("\n  ")}`);
}

/** "INVALID_ARGUMENT" → Code.InvalidArgument. */
function codeNamed(name: string): Code {
  const camel = name
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase());
  const code = Code[camel as keyof typeof Code];
  if (code === undefined) throw new Error(`unknown status code ${name}`);
  return code;
}

async function runCall(store: RunStore, step: Step, memory: CaseMemory, where: string) {
  const method = Object.keys(step).find((key) => ACTIONS.includes(key)) as CaseMethod;
  const call = CALLS[method];
  if (call === undefined) throw new Error(`${where}: this runner cannot call ${method} yet`);
  const args = resolve(step[method]) as Args;
  const outcome = await call.invoke(store, args).then(
    (result) => ({ result }),
    (error: unknown) => ({ error: ConnectError.from(error) }),
  );
  const at = `${where} (${method})`;
  if (typeof step.error === "string") {
    const [codeName = "", field] = step.error.split(" ");
    if (!("error" in outcome)) assert.fail(`${at}: expected ${step.error}, but the call succeeded`);
    assert.strictEqual(Code[outcome.error.code], Code[codeNamed(codeName)], `${at}: status code`);
    if (field !== undefined && !outcome.error.rawMessage.startsWith(`${field} `)) {
      assert.fail(`${at}: the message should name ${field}: "${outcome.error.rawMessage}"`);
    }
    return;
  }
  if ("error" in outcome) throw outcome.error;
  const result = call.toWire(outcome.result);
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

async function runStep(store: RunStore, step: Step, memory: CaseMemory, where: string) {
  if (typeof step.mark === "string") {
    memory.marks.set(step.mark, await takeMark());
  } else if (Array.isArray(step.parallel)) {
    const steps = step.parallel as Step[];
    await Promise.all(steps.map((s, i) => runStep(store, s, memory, `${where}.${i + 1}`)));
  } else if (typeof step.range === "number") {
    const { range, ...single } = step;
    const width = String(range - 1).length;
    const copies = Array.from({ length: range }, (_, i) =>
      substituteIndex(single, String(i).padStart(width, "0")),
    ) as Step[];
    await runStep(store, { parallel: copies }, memory, where);
  } else if (typeof step.check === "string") {
    expectMatch(lookup(memory, step.check), step.expect, memory, `${where} (${step.check})`);
  } else {
    await runCall(store, step, memory, where);
  }
}

/** Runs a case's steps in order against `store`; the first mismatch fails the test. */
export async function runCase(store: RunStore, contractCase: ContractCase): Promise<void> {
  const memory: CaseMemory = { marks: new Map(), saved: new Map() };
  for (const [i, step] of contractCase.steps.entries()) {
    await runStep(store, step, memory, `step ${i + 1}`);
  }
}
