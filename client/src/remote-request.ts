import { checkLease, leaseToProto } from "./coordination.js";
import {
  COUNTER_FIELDS,
  type Lease,
  type TimestampInput,
  type TokenCounters,
} from "./run-store.js";
import { parseTimestamp, timestampToProto } from "./timestamp.js";
import { checkCounter, checkOptionalText } from "./validation.js";

// How RemoteRunStore turns a method's arguments into request fields. What
// is refused here is what the wire cannot carry (a non-string, a lone
// surrogate, a name proto3 would read as its default) and what the
// conversion itself must check (counters, leases, usage maps), always with
// the stores' own checks and messages; every other rule is the server's.

/** A string field as sent: null/undefined are left unset. */
export function text(field: string, value: unknown): string | undefined {
  return checkOptionalText(field, value) ?? undefined;
}

/** A Timestamp field as sent: null/undefined are left unset. */
export function optionalTimestamp(value: TimestampInput | null | undefined, field: string) {
  return value === undefined || value === null
    ? undefined
    : timestampToProto(parseTimestamp(value, field));
}

/** An optional int64 count (grace_seconds): null/undefined are left unset. */
export function optionalCount(field: string, value: unknown): bigint | undefined {
  return value === undefined || value === null ? undefined : BigInt(checkCounter(field, value));
}

/** A Lease message: an instant, or a duration for the server's clock. */
export function lease(field: string, value: Lease) {
  return leaseToProto(checkLease(field, value));
}

/** An optional Lease message: null/undefined are left unset (no lease). */
export function optionalLease(field: string, value: Lease | null | undefined) {
  return value === undefined || value === null ? undefined : lease(field, value);
}

/**
 * The counters that are given, as int64 values; an absent one becomes
 * `ifAbsent` (0 for a completion, left out for a progress snapshot).
 */
export function countersToProto(
  source: { [K in keyof TokenCounters]?: number | null },
  ifAbsent: number | undefined,
): Partial<Record<keyof TokenCounters, bigint>> {
  const out: Partial<Record<keyof TokenCounters, bigint>> = {};
  for (const [name, wire] of COUNTER_FIELDS) {
    const value = source[name] ?? ifAbsent;
    if (value !== undefined) out[name] = BigInt(checkCounter(wire, value));
  }
  return out;
}
