import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  type LeaseSchema,
  type ModelUsageSchema,
  CancelAction as PbCancelAction,
  type Lease as PbLease,
  type ModelUsage as PbModelUsage,
  OperationKind as PbOperationKind,
} from "./gen/runstore/v1/run_store_pb.js";
import {
  CANCEL_ACTIONS,
  type CancelAction,
  type Lease,
  type ModelUsage,
  OPERATION_KINDS,
  type OperationKind,
} from "./run-store.js";
import { parseTimestamp, timestampFromProto, timestampToProto } from "./timestamp.js";
import { checkCounter, checkString, invalidArgument } from "./validation.js";

// Part 2's field rules and proto mapping (docs/contract.md, "Coordination"),
// shared by the stores, the service and RemoteRunStore like validation.ts.

/** The longest lease a caller may ask for: a year. */
export const MAX_LEASE_MS = 366 * 24 * 3600 * 1000;

/** The default grace past a lease's expiry, in seconds. */
export const DEFAULT_GRACE_SECONDS = 10;

const KIND_TO_PROTO: Record<OperationKind, PbOperationKind> = {
  run: PbOperationKind.RUN,
  checkpoint_write: PbOperationKind.CHECKPOINT_WRITE,
  artifact_write: PbOperationKind.ARTIFACT_WRITE,
  delete: PbOperationKind.DELETE,
};

const ACTION_TO_PROTO: Record<CancelAction, PbCancelAction> = {
  interrupt: PbCancelAction.INTERRUPT,
  rollback: PbCancelAction.ROLLBACK,
};

/** Checks one of `names`: a string equal to one of them, case and all. */
function checkName<T extends string>(field: string, value: unknown, names: readonly T[]): T {
  if (typeof value !== "string" || !(names as readonly string[]).includes(value)) {
    throw invalidArgument(field, `must be one of ${names.join(", ")}`);
  }
  return value as T;
}

/** Checks an operation kind name. */
export function checkOperationKind(field: string, value: unknown): OperationKind {
  return checkName(field, value, OPERATION_KINDS);
}

/** Checks a cancel action name. */
export function checkCancelAction(field: string, value: unknown): CancelAction {
  return checkName(field, value, CANCEL_ACTIONS);
}

/** Checks grace_seconds: an integer ≥ 0; null/undefined is the default. */
export function checkGraceSeconds(field: string, value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_GRACE_SECONDS;
  return checkCounter(field, value);
}

/** A checked lease: an instant, or a duration for the store's clock. */
export type LeaseInput = { expiresAt: string } | { durationMs: number };

/** Checks a lease: exactly one of expiresAt (a timestamp) or durationMs (0 .. a year). */
export function checkLease(field: string, value: unknown): LeaseInput {
  if (value === null || typeof value !== "object") {
    throw invalidArgument(field, "must be an object with expiresAt or durationMs");
  }
  const lease = value as Partial<{ expiresAt: unknown; durationMs: unknown }>;
  const hasInstant = lease.expiresAt !== undefined && lease.expiresAt !== null;
  const hasDuration = lease.durationMs !== undefined && lease.durationMs !== null;
  if (hasInstant === hasDuration) {
    throw invalidArgument(field, "must have exactly one of expiresAt and durationMs");
  }
  if (hasInstant) {
    return { expiresAt: parseTimestamp(lease.expiresAt as string, `${field}.expires_at`) };
  }
  const ms = lease.durationMs;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_LEASE_MS) {
    throw invalidArgument(`${field}.duration`, `must be 0 to ${MAX_LEASE_MS} ms`);
  }
  return { durationMs: ms };
}

/** The counters of one model's usage; anything else is refused, not dropped. */
const USAGE_KEYS: readonly string[] = [
  "inputTokens",
  "outputTokens",
  "totalTokens",
  "cacheReadTokens",
];

/** Checks a token-usage-by-model map: model names 1–128 characters, counters as part 1's. */
export function checkUsageMap(field: string, value: unknown): Record<string, ModelUsage> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument(field, "must be an object keyed by model name");
  }
  const out: Record<string, ModelUsage> = {};
  for (const [model, usage] of Object.entries(value)) {
    checkString(`${field} key`, model, 1, 128);
    if (model === "__proto__") {
      throw invalidArgument(`${field} key`, 'must not be "__proto__"');
    }
    if (usage === null || typeof usage !== "object") {
      throw invalidArgument(`${field}.${model}`, "must be an object of counters");
    }
    const unknown = Object.keys(usage).filter((key) => !USAGE_KEYS.includes(key));
    if (unknown.length > 0) {
      throw invalidArgument(
        `${field}.${model}`,
        `has ${unknown.join(", ")}, which is not a usage counter (${USAGE_KEYS.join(", ")})`,
      );
    }
    const u = usage as Partial<Record<keyof ModelUsage, unknown>>;
    const checked: ModelUsage = {
      inputTokens: checkCounter(`${field}.input_tokens`, u.inputTokens ?? 0),
      outputTokens: checkCounter(`${field}.output_tokens`, u.outputTokens ?? 0),
      totalTokens: checkCounter(`${field}.total_tokens`, u.totalTokens ?? 0),
    };
    if (u.cacheReadTokens !== undefined && u.cacheReadTokens !== null) {
      checked.cacheReadTokens = checkCounter(`${field}.cache_read_tokens`, u.cacheReadTokens);
    }
    Object.defineProperty(out, model, { value: checked, enumerable: true, writable: true });
  }
  return out;
}

/** An operation kind as its proto value. */
export function kindToProto(kind: OperationKind): PbOperationKind {
  return KIND_TO_PROTO[kind];
}

/** A proto operation kind as its name; UNSPECIFIED means run. */
export function kindFromProto(field: string, value: PbOperationKind): OperationKind {
  if (value === PbOperationKind.UNSPECIFIED) return "run";
  const found = OPERATION_KINDS.find((kind) => KIND_TO_PROTO[kind] === value);
  if (found === undefined) throw invalidArgument(field, `has unknown value ${value}`);
  return found;
}

/** A cancel action (or none) as its proto value. */
export function actionToProto(action: CancelAction | null): PbCancelAction {
  return action === null ? PbCancelAction.UNSPECIFIED : ACTION_TO_PROTO[action];
}

/** A proto cancel action as its name; UNSPECIFIED is none. */
export function actionFromProto(field: string, value: PbCancelAction): CancelAction | null {
  if (value === PbCancelAction.UNSPECIFIED) return null;
  const found = CANCEL_ACTIONS.find((action) => ACTION_TO_PROTO[action] === value);
  if (found === undefined) throw invalidArgument(field, `has unknown value ${value}`);
  return found;
}

/** A lease as the proto message. */
export function leaseToProto(lease: LeaseInput): MessageInitShape<typeof LeaseSchema> {
  if ("expiresAt" in lease) {
    return { lease: { case: "expiresAt", value: timestampToProto(lease.expiresAt) } };
  }
  const micros = BigInt(Math.round(lease.durationMs * 1000));
  const duration: Duration = create(DurationSchema, {
    seconds: micros / 1_000_000n,
    nanos: Number(micros % 1_000_000n) * 1000,
  });
  return { lease: { case: "duration", value: duration } };
}

/** A proto lease as a lease (unchecked: hand the result to checkLease). */
export function leaseFromProto(field: string, lease: PbLease | undefined): Lease | null {
  switch (lease?.lease.case) {
    case "expiresAt":
      return { expiresAt: timestampFromProto(lease.lease.value, `${field}.expires_at`) };
    case "duration": {
      const { seconds, nanos } = lease.lease.value;
      return { durationMs: Number(seconds) * 1000 + Math.trunc(nanos / 1000) / 1000 };
    }
    default:
      return null;
  }
}

/** A usage map as proto ModelUsage entries. */
export function usageMapToProto(
  map: Record<string, ModelUsage>,
): Record<string, MessageInitShape<typeof ModelUsageSchema>> {
  return Object.fromEntries(
    Object.entries(map).map(([model, u]) => [
      model,
      {
        inputTokens: BigInt(u.inputTokens),
        outputTokens: BigInt(u.outputTokens),
        totalTokens: BigInt(u.totalTokens),
        ...(u.cacheReadTokens === undefined ? {} : { cacheReadTokens: BigInt(u.cacheReadTokens) }),
      },
    ]),
  );
}

/** Proto ModelUsage entries as a usage map. */
export function usageMapFromProto(map: Record<string, PbModelUsage>): Record<string, ModelUsage> {
  return Object.fromEntries(
    Object.entries(map).map(([model, u]) => {
      const usage: ModelUsage = {
        inputTokens: Number(u.inputTokens),
        outputTokens: Number(u.outputTokens),
        totalTokens: Number(u.totalTokens),
      };
      if (u.cacheReadTokens !== undefined) usage.cacheReadTokens = Number(u.cacheReadTokens);
      return [model, usage];
    }),
  );
}
