import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  actionFromProto,
  actionToProto,
  kindFromProto,
  kindToProto,
  usageMapFromProto,
  usageMapToProto,
} from "./coordination.js";
import {
  type AggregateTokensByThreadResponse,
  type AggregateTokensByThreadResponseSchema,
  MultitaskStrategy as PbMultitaskStrategy,
  RunStatus as PbRunStatus,
  type Run,
  RunSchema,
} from "./gen/runstore/v1/run_store_pb.js";
import type { MultitaskStrategy, RunRecord, RunStatus, ThreadTokenUsage } from "./run-store.js";
import { timestampFromProto, timestampToProto } from "./timestamp.js";
import { invalidArgument } from "./validation.js";

// The one place that maps records to and from proto messages, shared by the
// server's service and RemoteRunStore so the two sides cannot drift apart.

const STATUS_TO_PROTO: Record<RunStatus, PbRunStatus> = {
  pending: PbRunStatus.PENDING,
  running: PbRunStatus.RUNNING,
  success: PbRunStatus.SUCCESS,
  error: PbRunStatus.ERROR,
  timeout: PbRunStatus.TIMEOUT,
  interrupted: PbRunStatus.INTERRUPTED,
};

const STRATEGY_TO_PROTO: Record<MultitaskStrategy, PbMultitaskStrategy> = {
  reject: PbMultitaskStrategy.REJECT,
  interrupt: PbMultitaskStrategy.INTERRUPT,
  rollback: PbMultitaskStrategy.ROLLBACK,
  enqueue: PbMultitaskStrategy.ENQUEUE,
};

const STATUS_FROM_PROTO = new Map<number, RunStatus>(
  Object.entries(STATUS_TO_PROTO).map(([name, value]) => [value, name as RunStatus]),
);

const STRATEGY_FROM_PROTO = new Map<number, MultitaskStrategy>(
  Object.entries(STRATEGY_TO_PROTO).map(([name, value]) => [value, name as MultitaskStrategy]),
);

/** A status name as its proto enum value; unknown names are InvalidArgument. */
export function statusToProto(field: string, status: RunStatus): PbRunStatus {
  const value = Object.hasOwn(STATUS_TO_PROTO, status) ? STATUS_TO_PROTO[status] : undefined;
  if (value === undefined) {
    throw invalidArgument(field, `must be one of ${Object.keys(STATUS_TO_PROTO).join(", ")}`);
  }
  return value;
}

/** A strategy name as its proto enum value; unknown names are InvalidArgument. */
export function strategyToProto(field: string, strategy: MultitaskStrategy): PbMultitaskStrategy {
  const value = Object.hasOwn(STRATEGY_TO_PROTO, strategy)
    ? STRATEGY_TO_PROTO[strategy]
    : undefined;
  if (value === undefined) {
    throw invalidArgument(field, `must be one of ${Object.keys(STRATEGY_TO_PROTO).join(", ")}`);
  }
  return value;
}

/**
 * A proto status as its name. UNSPECIFIED gives `ifUnspecified`, or is
 * InvalidArgument when the field is required; unknown numbers are
 * InvalidArgument.
 */
export function statusFromProto(
  field: string,
  value: PbRunStatus,
  ifUnspecified?: RunStatus,
): RunStatus {
  if (value === PbRunStatus.UNSPECIFIED && ifUnspecified !== undefined) return ifUnspecified;
  const status = STATUS_FROM_PROTO.get(value);
  if (status === undefined) {
    throw invalidArgument(
      field,
      value === PbRunStatus.UNSPECIFIED ? "is required" : `has unknown value ${value}`,
    );
  }
  return status;
}

/** A proto strategy as its name; UNSPECIFIED means reject. */
export function strategyFromProto(field: string, value: PbMultitaskStrategy): MultitaskStrategy {
  if (value === PbMultitaskStrategy.UNSPECIFIED) return "reject";
  const strategy = STRATEGY_FROM_PROTO.get(value);
  if (strategy === undefined) throw invalidArgument(field, `has unknown value ${value}`);
  return strategy;
}

/** A record as a proto Run. */
export function runToProto(record: RunRecord): Run {
  return create(RunSchema, {
    runId: record.runId,
    threadId: record.threadId,
    assistantId: record.assistantId ?? undefined,
    userId: record.userId ?? undefined,
    modelName: record.modelName ?? undefined,
    status: STATUS_TO_PROTO[record.status],
    multitaskStrategy: STRATEGY_TO_PROTO[record.multitaskStrategy],
    metadata: record.metadata,
    kwargs: record.kwargs,
    error: record.error ?? undefined,
    createdAt: timestampToProto(record.createdAt),
    updatedAt: timestampToProto(record.updatedAt),
    totalInputTokens: BigInt(record.totalInputTokens),
    totalOutputTokens: BigInt(record.totalOutputTokens),
    totalTokens: BigInt(record.totalTokens),
    llmCallCount: BigInt(record.llmCallCount),
    leadAgentTokens: BigInt(record.leadAgentTokens),
    subagentTokens: BigInt(record.subagentTokens),
    middlewareTokens: BigInt(record.middlewareTokens),
    messageCount: BigInt(record.messageCount),
    lastAiMessage: record.lastAiMessage ?? undefined,
    firstHumanMessage: record.firstHumanMessage ?? undefined,
    operationKind: kindToProto(record.operationKind),
    stopReason: record.stopReason ?? undefined,
    ownerWorkerId: record.ownerWorkerId ?? undefined,
    leaseExpiresAt: optionalTimestampToProto(record.leaseExpiresAt),
    cancelAction: actionToProto(record.cancelAction),
    cancelRequestedAt: optionalTimestampToProto(record.cancelRequestedAt),
    idempotencyKey: record.idempotencyKey ?? undefined,
    followUpToRunId: record.followUpToRunId ?? undefined,
    tokenUsageByModel: usageMapToProto(record.tokenUsageByModel),
    queued: record.queued,
  });
}

function optionalTimestampToProto(value: string | null) {
  return value === null ? undefined : timestampToProto(value);
}

/** A server's answer that breaks the contract: the client cannot map it. */
function badResponse(what: string): ConnectError {
  return new ConnectError(`server answered ${what}`, Code.Internal);
}

/** A proto Run (from a server) as a record. */
export function runFromProto(run: Run): RunRecord {
  const status = STATUS_FROM_PROTO.get(run.status);
  const strategy = STRATEGY_FROM_PROTO.get(run.multitaskStrategy);
  if (status === undefined) throw badResponse(`an unknown run status ${run.status}`);
  if (strategy === undefined) throw badResponse(`an unknown strategy ${run.multitaskStrategy}`);
  if (run.createdAt === undefined || run.updatedAt === undefined) {
    throw badResponse("a run without timestamps");
  }
  return {
    runId: run.runId,
    threadId: run.threadId,
    assistantId: run.assistantId ?? null,
    userId: run.userId ?? null,
    modelName: run.modelName ?? null,
    status,
    multitaskStrategy: strategy,
    metadata: run.metadata ?? {},
    kwargs: run.kwargs ?? {},
    error: run.error ?? null,
    createdAt: timestampFromProto(run.createdAt, "created_at"),
    updatedAt: timestampFromProto(run.updatedAt, "updated_at"),
    totalInputTokens: Number(run.totalInputTokens),
    totalOutputTokens: Number(run.totalOutputTokens),
    totalTokens: Number(run.totalTokens),
    llmCallCount: Number(run.llmCallCount),
    leadAgentTokens: Number(run.leadAgentTokens),
    subagentTokens: Number(run.subagentTokens),
    middlewareTokens: Number(run.middlewareTokens),
    messageCount: Number(run.messageCount),
    lastAiMessage: run.lastAiMessage ?? null,
    firstHumanMessage: run.firstHumanMessage ?? null,
    operationKind: kindFromProto("operation_kind", run.operationKind),
    stopReason: run.stopReason ?? null,
    ownerWorkerId: run.ownerWorkerId ?? null,
    leaseExpiresAt:
      run.leaseExpiresAt === undefined
        ? null
        : timestampFromProto(run.leaseExpiresAt, "lease_expires_at"),
    cancelAction: actionFromProto("cancel_action", run.cancelAction),
    cancelRequestedAt:
      run.cancelRequestedAt === undefined
        ? null
        : timestampFromProto(run.cancelRequestedAt, "cancel_requested_at"),
    idempotencyKey: run.idempotencyKey ?? null,
    followUpToRunId: run.followUpToRunId ?? null,
    tokenUsageByModel: usageMapFromProto(run.tokenUsageByModel),
    queued: run.queued,
  };
}

/** Token usage as the AggregateTokensByThread response. */
export function usageToProto(
  usage: ThreadTokenUsage,
): MessageInitShape<typeof AggregateTokensByThreadResponseSchema> {
  // fromEntries defines own properties, so a model named "__proto__" stays a key.
  const byModel = Object.fromEntries(
    Object.entries(usage.byModel).map(([model, { tokens, runs }]) => [
      model,
      { tokens: BigInt(tokens), runs: BigInt(runs) },
    ]),
  );
  return {
    totalTokens: BigInt(usage.totalTokens),
    totalInputTokens: BigInt(usage.totalInputTokens),
    totalOutputTokens: BigInt(usage.totalOutputTokens),
    totalRuns: BigInt(usage.totalRuns),
    byModel,
    byCaller: {
      leadAgent: BigInt(usage.byCaller.leadAgent),
      subagent: BigInt(usage.byCaller.subagent),
      middleware: BigInt(usage.byCaller.middleware),
    },
  };
}

/** The AggregateTokensByThread response as token usage. */
export function usageFromProto(response: AggregateTokensByThreadResponse): ThreadTokenUsage {
  const byModel = Object.fromEntries(
    Object.entries(response.byModel).map(([model, { tokens, runs }]) => [
      model,
      { tokens: Number(tokens), runs: Number(runs) },
    ]),
  );
  return {
    totalTokens: Number(response.totalTokens),
    totalInputTokens: Number(response.totalInputTokens),
    totalOutputTokens: Number(response.totalOutputTokens),
    totalRuns: Number(response.totalRuns),
    byModel,
    byCaller: {
      leadAgent: Number(response.byCaller?.leadAgent ?? 0n),
      subagent: Number(response.byCaller?.subagent ?? 0n),
      middleware: Number(response.byCaller?.middleware ?? 0n),
    },
  };
}
