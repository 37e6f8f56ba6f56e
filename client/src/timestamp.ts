import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { TimestampInput } from "./run-store.js";
import { invalidArgument } from "./validation.js";

// Written by hand rather than with a date library: `Date` keeps only
// milliseconds, and the Temporal polyfill is large and refuses naive strings.
// What we need is small: parse ISO 8601 with any offset or none, keep
// microseconds (truncating finer digits), and print one fixed-width UTC form.

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** The earliest instant every backend holds (MySQL DATETIME starts at year 1000). */
export const MIN_TIMESTAMP = "1000-01-01T00:00:00.000000Z";
/** The latest instant every backend holds. */
export const MAX_TIMESTAMP = "9999-12-31T23:59:59.999999Z";

const MIN_MS = Date.UTC(1000, 0, 1);
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** The last whole second format() printed, and its text up to the seconds. */
let lastSecondMs = Number.NaN;
let lastSecondText = "";

/**
 * Formats a whole second (as epoch milliseconds) plus microseconds within
 * it, fixed-width. The second's text is kept from the call before: a
 * server stamps every write with nowTimestamp(), and building a Date and
 * its ISO string each time was 1–2 % of its CPU (issue 18).
 */
function format(ms: number, micros: number): string {
  if (ms !== lastSecondMs) {
    lastSecondText = new Date(ms).toISOString().slice(0, 19);
    lastSecondMs = ms;
  }
  return `${lastSecondText}.${String(micros).padStart(6, "0")}Z`;
}

function inRange(ms: number): boolean {
  return ms >= MIN_MS && ms <= MAX_MS;
}

/**
 * Parses a caller's instant into the fixed-width UTC form
 * `YYYY-MM-DDTHH:MM:SS.ffffffZ`, truncating below microseconds. Throws
 * InvalidArgument naming `field` when it is not a valid instant in range.
 */
export function parseTimestamp(value: TimestampInput, field: string): string {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!Number.isFinite(ms) || !inRange(ms)) {
      throw invalidArgument(field, "must be a valid date between years 1000 and 9999");
    }
    const wholeSecondMs = Math.floor(ms / 1000) * 1000;
    return format(wholeSecondMs, (ms - wholeSecondMs) * 1000);
  }
  if (typeof value !== "string") {
    throw invalidArgument(field, "must be an ISO 8601 string or a Date");
  }
  const m = ISO.exec(value);
  if (m === null) {
    throw invalidArgument(field, `must be an ISO 8601 timestamp, got ${JSON.stringify(value)}`);
  }
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(local);
  if (
    year < 1000 ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw invalidArgument(field, `is not a valid date and time: ${JSON.stringify(value)}`);
  }
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = m[11] === undefined ? 0 : Number(m[11]);
    if (oh > 23 || om > 59) {
      throw invalidArgument(field, `has an invalid UTC offset: ${JSON.stringify(value)}`);
    }
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = (m[7] ?? "").slice(0, 6).padEnd(6, "0");
  const micros = Number(fraction);
  const utcSecondMs = local - offsetMinutes * 60_000;
  if (!inRange(utcSecondMs)) {
    throw invalidArgument(field, "must lie between years 1000 and 9999 (UTC)");
  }
  return format(utcSecondMs, micros);
}

/** Converts a fixed-width UTC string (as stores return) to a protobuf Timestamp. */
export function timestampToProto(value: string): Timestamp {
  const seconds = Date.parse(`${value.slice(0, 19)}Z`) / 1000;
  const micros = Number(value.slice(20, 26));
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: micros * 1000 });
}

/**
 * Converts a protobuf Timestamp to the fixed-width UTC form, truncating
 * nanoseconds to microseconds. Throws InvalidArgument naming `field` when it
 * is out of range or malformed.
 */
export function timestampFromProto(value: Timestamp, field: string): string {
  const { seconds, nanos } = value;
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw invalidArgument(field, "has nanos outside 0..999999999");
  }
  if (seconds < BigInt(MIN_MS / 1000) || seconds > BigInt(Math.floor(MAX_MS / 1000))) {
    throw invalidArgument(field, "must lie between years 1000 and 9999 (UTC)");
  }
  return format(Number(seconds) * 1000, Math.floor(nanos / 1000));
}

let lastNowMicros = 0;
/** Wall-clock microseconds minus the high-resolution clock's, re-taken when the two drift apart. */
let anchorMicros = Date.now() * 1000 - Math.floor(performance.now() * 1000);

/** One millisecond: the wall clock's resolution, which a reading must stay within. */
const WALL_MS_MICROS = 1000;

/**
 * Now, in the fixed-width UTC form: the high-resolution clock (microseconds
 * that advance steadily) anchored to the wall clock, re-anchored whenever the
 * reading leaves the wall clock's current millisecond (the monotonic clock
 * drifts from wall time over a long uptime, and the wall clock may be
 * stepped). So an instant taken after Date.now() reached a millisecond is in
 * that millisecond or later, and one taken before it moved on is earlier,
 * which the contract cases' marks rely on. Never goes back within one
 * process, so instants taken in order compare in order.
 */
export function nowTimestamp(): string {
  const wall = Date.now() * 1000;
  let sample = anchorMicros + Math.floor(performance.now() * 1000);
  if (sample < wall || sample >= wall + WALL_MS_MICROS) {
    anchorMicros = wall - Math.floor(performance.now() * 1000);
    sample = wall;
  }
  lastNowMicros = Math.max(lastNowMicros, sample);
  const ms = Math.floor(lastNowMicros / 1_000_000) * 1000;
  return format(ms, lastNowMicros - ms * 1000);
}

/**
 * The fixed-width instant `micros` microseconds after (or before, when
 * negative) `value`, held within the range every backend stores: leases and
 * grace periods are computed with it.
 */
export function addMicroseconds(value: string, micros: number): string {
  const total = (Date.parse(`${value.slice(0, 19)}Z`) + Number(value.slice(20, 26)) / 1000) * 1000;
  const target = Math.round(total + micros);
  const clamped = Math.min(Math.max(target, MIN_MS * 1000), MAX_MS * 1000 + 999);
  const ms = Math.floor(clamped / 1_000_000) * 1000;
  return format(ms, clamped - ms * 1000);
}
