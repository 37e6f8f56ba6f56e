import { addMicroseconds, type LeaseInput } from "@runstore/client/internal";

// Lease time on MemoryRunStore's clock (docs/contract.md, "Lease time"): the
// process's nowTimestamp(), taken once per call, plays the database clock.

/** The instant a lease ends: an absolute one as given, a relative one from `now`. */
export function leaseExpiry(lease: LeaseInput, now: string): string {
  return "expiresAt" in lease ? lease.expiresAt : addMicroseconds(now, lease.durationMs * 1000);
}

/** "Expired past grace": no lease at all, or one that ended more than `graceSeconds` before `now`. */
export function expiredPastGrace(
  leaseExpiresAt: string | null,
  now: string,
  graceSeconds: number,
): boolean {
  return (
    leaseExpiresAt === null || leaseExpiresAt < addMicroseconds(now, -graceSeconds * 1_000_000)
  );
}
