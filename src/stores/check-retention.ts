import { invalidArgument, parseTimestamp } from "@runstore/client/internal";

// The argument checks of the retention methods both backends implement
// (claimSweep, sweepTerminal; retention.ts calls them): the server's own
// calls, still refused with the field named rather than run with a value
// that would delete the wrong rows.

/** The longest sweep holder name the MySQL lease table stores. */
export const MAX_HOLDER_LENGTH = 255;

/** The longest sweep lease: two days, past RETENTION_INTERVAL_S's maximum (a day) and a sweep's margin. */
export const MAX_LEASE_MS = 86_400_000 * 2;

/** The most rows one sweepTerminal call may delete (RETENTION_BATCH_SIZE's maximum). */
export const MAX_SWEEP_BATCH = 10_000;

function checkInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Checks claimSweep's arguments. */
export function checkClaimSweep(
  holder: unknown,
  leaseMs: unknown,
): { holder: string; leaseMs: number } {
  if (typeof holder !== "string" || holder.length === 0 || holder.length > MAX_HOLDER_LENGTH) {
    throw invalidArgument("holder", `must be a string of 1 to ${MAX_HOLDER_LENGTH} characters`);
  }
  return { holder, leaseMs: checkInteger("lease_ms", leaseMs, 1, MAX_LEASE_MS) };
}

/** Checks sweepTerminal's arguments; the cutoff comes back in the stores' fixed-width form. */
export function checkSweepTerminal(
  cutoff: unknown,
  limit: unknown,
): { cutoff: string; limit: number } {
  return {
    cutoff: parseTimestamp(cutoff as string, "cutoff"),
    limit: checkInteger("limit", limit, 1, MAX_SWEEP_BATCH),
  };
}
