import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { CancelAction, Lease, RunRecord } from "@runstore/client";
import {
  actionFromProto,
  invalidArgument,
  leaseFromProto,
  type pb,
  runToProto,
  timestampFromProto,
} from "@runstore/client/internal";

// The wire-only rules the service's handlers share: what a proto request can
// say that a store argument cannot (an unset message, an UNSPECIFIED enum, an
// int64). Every other rule is the store's.

/** A list response; every message that lists runs has this shape. */
export function runs(records: RunRecord[]): { runs: pb.Run[] } {
  return { runs: records.map(runToProto) };
}

/** An optional Timestamp field as the store takes it: unset is null. */
export function optionalTimestamp(value: Timestamp | undefined, field: string): string | null {
  return value === undefined ? null : timestampFromProto(value, field);
}

/**
 * An optional int64 as a number for the store to check. Beyond 2^53-1 the
 * number is no longer exact, but it is then also beyond every limit a store
 * accepts, so it is refused rather than misread.
 */
export function optionalInteger(value: bigint | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** An optional Lease: unset is none; a Lease with neither field set is refused. */
export function optionalLease(field: string, lease: pb.Lease | undefined): Lease | null {
  if (lease === undefined) return null;
  const value = leaseFromProto(field, lease);
  if (value === null) throw invalidArgument(field, "must have one of expires_at and duration");
  return value;
}

/** A Lease the call cannot do without. */
export function requiredLease(field: string, lease: pb.Lease | undefined): Lease {
  const value = optionalLease(field, lease);
  if (value === null) throw invalidArgument(field, "is required");
  return value;
}

/** A CancelAction the call cannot do without: UNSPECIFIED is refused. */
export function requiredAction(field: string, value: pb.CancelAction): CancelAction {
  const action = actionFromProto(field, value);
  if (action === null) throw invalidArgument(field, "is required: interrupt or rollback");
  return action;
}
