import { Code, ConnectError } from "@connectrpc/connect";
import {
  MULTITASK_STRATEGIES,
  type MultitaskStrategy,
  RUN_STATUSES,
  type RunStatus,
} from "./run-store.js";

// The field checks every store and the client share, so that a bad value is
// refused with the same message in-process and over the wire. Field names
// are the wire (snake_case) names of the proto and docs/contract.md.

/** The largest counter value: every client language holds it exactly. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** The largest `limit` of listByThread. */
export const MAX_LIMIT = 10_000;

/** An InvalidArgument error whose message starts with the offending field. */
export function invalidArgument(field: string, problem: string): ConnectError {
  return new ConnectError(`${field} ${problem}`, Code.InvalidArgument);
}

/** Counts Unicode code points, the way Python's len() and MySQL's CHAR_LENGTH do. */
export function codePointLength(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++, n++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const d = value.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/** Checks that `value` is a string of min..max code points. */
export function checkString(field: string, value: unknown, min: number, max: number): string {
  if (typeof value !== "string") {
    throw invalidArgument(field, `must be a string, got ${value === null ? "null" : typeof value}`);
  }
  // A lone surrogate cannot be encoded as UTF-8: the wire and MySQL would
  // store U+FFFD instead, silently making a different value.
  if (!value.isWellFormed()) {
    throw invalidArgument(field, "must be valid Unicode (it has a lone surrogate)");
  }
  // UTF-16 length bounds the code point count from above, so most strings skip the count.
  const length = value.length <= max && value.length >= min ? value.length : codePointLength(value);
  if (length < min || length > max) {
    throw invalidArgument(
      field,
      min === 0
        ? `must be at most ${max} characters, got ${length}`
        : `must be ${min} to ${max} characters, got ${length}`,
    );
  }
  return value;
}

/** Checks a required id (run_id, thread_id, user_id): 1 to 64 characters. */
export function checkId(field: string, value: unknown): string {
  return checkString(field, value, 1, 64);
}

/** Checks an optional id: null/undefined mean absent. */
export function checkOptionalId(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : checkId(field, value);
}

/** Checks an optional free-text field: null/undefined mean absent. */
export function checkOptionalText(field: string, value: unknown): string | null {
  return value === undefined || value === null
    ? null
    : checkString(field, value, 0, Number.POSITIVE_INFINITY);
}

/** Checks a counter: an integer in 0..2^53-1. */
export function checkCounter(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalidArgument(field, `must be an integer, got ${String(value)}`);
  }
  if (value < 0) {
    throw invalidArgument(field, `must be >= 0, got ${value}`);
  }
  if (value > MAX_COUNTER) {
    throw invalidArgument(field, `must be <= ${MAX_COUNTER}, got ${value}`);
  }
  return value;
}

/** Checks a status name. */
export function checkStatus(field: string, value: unknown): RunStatus {
  if (!RUN_STATUSES.includes(value as RunStatus)) {
    throw invalidArgument(field, `must be one of ${RUN_STATUSES.join(", ")}, got ${String(value)}`);
  }
  return value as RunStatus;
}

/** Checks a multitask strategy name. */
export function checkStrategy(field: string, value: unknown): MultitaskStrategy {
  if (!MULTITASK_STRATEGIES.includes(value as MultitaskStrategy)) {
    throw invalidArgument(
      field,
      `must be one of ${MULTITASK_STRATEGIES.join(", ")}, got ${String(value)}`,
    );
  }
  return value as MultitaskStrategy;
}

/** Checks a boolean flag. */
export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== "boolean")
    throw invalidArgument(field, `must be a boolean, got ${typeof value}`);
  return value;
}

/** Checks listByThread's limit: an integer in 0..10000; absent means 100. */
export function checkLimit(field: string, value: unknown): number {
  if (value === undefined || value === null) return 100;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalidArgument(field, `must be an integer, got ${String(value)}`);
  }
  if (value < 0 || value > MAX_LIMIT) {
    throw invalidArgument(field, `must be between 0 and ${MAX_LIMIT}, got ${value}`);
  }
  return value;
}
