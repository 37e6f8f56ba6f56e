/**
 * The value language of cases/*.json (cases/README.md): generators that build
 * values too long or too odd to write literally, and matchers for results
 * that cannot be literal. python/tests/contract/case_values.py is the same
 * language in Python; a change here is a change there.
 */

/** What the matchers read: the marks and saved results of earlier steps. */
export interface CaseMemory {
  /** Mark name → the mark's millisecond, fixed width without the zone ("…T00:00:00.123"). */
  marks: Map<string, string>;
  /** Save name → the result of the step that saved it, in wire form. */
  saved: Map<string, unknown>;
}

/** Fixed-width UTC with microseconds, as docs/contract.md "Timestamps" prescribes. */
const TIMESTAMP_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

type Special = Record<string, unknown>;

/** A generator or matcher: an object whose every key starts with "$" (data never is). */
function isSpecial(value: unknown): value is Special {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((key) => key.startsWith("$"));
}

/** `{"level": … {"leaf": true}}`, `levels` objects deep. */
function nest(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < levels; i++) value = { level: value };
  return value;
}

const GENERATORS: Record<string, (argument: unknown) => unknown> = {
  $repeat: (argument) => {
    const [text, times] = argument as [string, number];
    return text.repeat(times);
  },
  $concat: (argument) => (argument as unknown[]).map((part) => resolve(part)).join(""),
  $nest: (argument) => nest(argument as number),
  $number: (argument) => Number(argument as string),
  $list: (argument) => {
    const [pattern, count] = argument as [string, number];
    return Array.from({ length: count }, (_, n) => pattern.replaceAll("{n}", String(n)));
  },
  $entries: (argument) =>
    Object.fromEntries(
      (argument as [unknown, unknown][]).map(([key, value]) => [resolve(key), resolve(value)]),
    ),
};

/**
 * The value a case means: generators replaced by what they generate, and
 * given `memory` (a call's arguments), {"$saved": "name.path"} by that saved
 * value (the previous page's next_page_token). Objects are rebuilt with
 * Object.fromEntries, so a "__proto__" key stays an own key.
 */
export function resolve(value: unknown, memory?: CaseMemory): unknown {
  if (Array.isArray(value)) return value.map((item) => resolve(item, memory));
  if (typeof value !== "object" || value === null) return value;
  if (isSpecial(value)) {
    const [[key, argument]] = Object.entries(value) as [[string, unknown]];
    if (key === "$saved" && memory !== undefined) return lookup(memory, argument as string);
    const generate = GENERATORS[key];
    if (generate === undefined) throw new Error(`${key} is a matcher, not a value`);
    return generate(argument);
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, resolve(item, memory)]),
  );
}

/** Every string in `value` with "{i}" replaced by `index` (a "range" step's copies). */
export function substituteIndex(value: unknown, index: string): unknown {
  if (typeof value === "string") return value.replaceAll("{i}", index);
  if (Array.isArray(value)) return value.map((item) => substituteIndex(item, index));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, substituteIndex(item, index)]),
  );
}

/** A saved result or a part of it: "name", "name.field", "name.0.run_id". */
export function lookup(memory: CaseMemory, path: string): unknown {
  const [name = "", ...parts] = path.split(".");
  if (!memory.saved.has(name)) throw new Error(`nothing was saved as "${name}"`);
  let value = memory.saved.get(name);
  for (const part of parts) value = (value as Record<string, unknown>)[part];
  return value;
}

/** The millisecond of a fixed-width timestamp: the clock granularity marks compare at. */
function millisecond(value: unknown): string | undefined {
  return typeof value === "string" && TIMESTAMP_FORMAT.test(value) ? value.slice(0, 23) : undefined;
}

/**
 * A bound for $atOrAfter / $before: mark "m", or ["m", ms], the mark plus
 * that many milliseconds (a lease the store computed from a duration).
 */
function mark(memory: CaseMemory, bound: unknown): string {
  const [name, offset = 0] = Array.isArray(bound) ? bound : [bound];
  const at = memory.marks.get(name as string);
  if (at === undefined) throw new Error(`no mark "${String(name)}" before this step`);
  if (offset === 0) return at;
  return new Date(Date.parse(`${at}Z`) + (offset as number)).toISOString().slice(0, 23);
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withoutKeys(value: unknown, keys: string[]): unknown {
  if (!isRecord(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !keys.includes(key)));
}

/** How `actual` differs from `fields` on the keys of `fields`. */
function eachField(
  actual: Record<string, unknown>,
  fields: Record<string, unknown>,
  memory: CaseMemory,
  path: string,
): string[] {
  return Object.entries(fields).flatMap(([key, expected]) =>
    Object.hasOwn(actual, key)
      ? mismatches(actual[key], expected, memory, `${path}.${key}`)
      : [`${path}.${key}: missing`],
  );
}

type Matcher = (actual: unknown, argument: unknown, memory: CaseMemory, path: string) => string[];

const MATCHERS: Record<string, Matcher> = {
  $timestamp: (actual, _, __, path) =>
    millisecond(actual) === undefined
      ? [`${path}: expected a fixed-width UTC timestamp, got ${show(actual)}`]
      : [],
  $atOrAfter: (actual, name, memory, path) => {
    const at = millisecond(actual);
    const bound = mark(memory, name);
    return at !== undefined && at >= bound
      ? []
      : [`${path}: expected at or after mark ${show(name)} (${bound}), got ${show(actual)}`];
  },
  $before: (actual, name, memory, path) => {
    const at = millisecond(actual);
    const bound = mark(memory, name);
    return at !== undefined && at < bound
      ? []
      : [`${path}: expected before mark ${show(name)} (${bound}), got ${show(actual)}`];
  },
  $saved: (actual, name, memory, path) =>
    mismatches(actual, lookup(memory, name as string), memory, path),
  $fields: (actual, fields, memory, path) =>
    isRecord(actual)
      ? eachField(actual, fields as Record<string, unknown>, memory, path)
      : [`${path}: expected an object, got ${show(actual)}`],
  $runIds: (actual, ids, memory, path) => {
    if (!Array.isArray(actual)) return [`${path}: expected a list, got ${show(actual)}`];
    const runIds = actual.map((row) => (isRecord(row) ? row.run_id : row));
    return mismatches(runIds, ids, memory, `${path}[*].run_id`);
  },
  $nonEmpty: (actual, _, __, path) =>
    typeof actual === "string" && actual.length > 0
      ? []
      : [`${path}: expected a non-empty string, got ${show(actual)}`],
  $length: (actual, length, _, path) =>
    Array.isArray(actual) && actual.length === length
      ? []
      : [`${path}: expected ${String(length)} items, got ${show(actual)}`],
  $anyOrder: (actual, items, memory, path) => {
    const expected = items as unknown[];
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${path}: expected ${expected.length} items in any order, got ${show(actual)}`];
    }
    return pairUp(actual, expected, memory, path)
      ? []
      : [`${path}: expected ${show(expected)} in any order, got ${show(actual)}`];
  },
  $oneOf: (actual, alternatives, memory, path) =>
    (alternatives as unknown[]).some((option) => mismatches(actual, option, memory).length === 0)
      ? []
      : [`${path}: expected one of ${show(alternatives)}, got ${show(actual)}`],
};

/**
 * Whether each expected item matches a different actual item (both lists of
 * one length): a search over the assignments, small lists only.
 */
function pairUp(actual: unknown[], expected: unknown[], memory: CaseMemory, path: string): boolean {
  const fits = expected.map((item) =>
    actual.map((value) => mismatches(value, item, memory, path).length === 0),
  );
  const taken = actual.map(() => false);
  const assign = (i: number): boolean => {
    if (i === expected.length) return true;
    return actual.some((_, j) => {
      if (taken[j] || !fits[i]?.[j]) return false;
      taken[j] = true;
      if (assign(i + 1)) return true;
      taken[j] = false;
      return false;
    });
  };
  return assign(0);
}

/**
 * How `actual` (a result in wire form) differs from `expected` (a case's
 * value, matchers allowed); empty when it matches. Objects match with the
 * same own keys; a matcher object applies each of its matchers.
 */
export function mismatches(
  actual: unknown,
  expected: unknown,
  memory: CaseMemory,
  path = "$",
): string[] {
  if (isSpecial(expected)) {
    if (Object.keys(expected).some((key) => key in GENERATORS)) {
      return mismatches(actual, resolve(expected), memory, path);
    }
    if ("$ignoring" in expected) {
      const keys = expected.$ignoring as string[];
      const saved = withoutKeys(lookup(memory, expected.$saved as string), keys);
      return mismatches(withoutKeys(actual, keys), saved, memory, path);
    }
    return Object.entries(expected).flatMap(([key, argument]) => {
      const matcher = MATCHERS[key];
      if (matcher === undefined) throw new Error(`${path}: unknown matcher ${key}`);
      return matcher(actual, argument, memory, path);
    });
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${path}: expected ${show(expected)}, got ${show(actual)}`];
    }
    return expected.flatMap((item, i) => mismatches(actual[i], item, memory, `${path}[${i}]`));
  }
  if (isRecord(expected)) {
    if (!isRecord(actual)) return [`${path}: expected ${show(expected)}, got ${show(actual)}`];
    const extra = Object.keys(actual).filter((key) => !Object.hasOwn(expected, key));
    return [
      ...extra.map((key) => `${path}.${key}: not expected, got ${show(actual[key])}`),
      ...eachField(actual, expected, memory, path),
    ];
  }
  return Object.is(actual, expected)
    ? []
    : [`${path}: expected ${show(expected)}, got ${show(actual)}`];
}
