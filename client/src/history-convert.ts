import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { kindFromProto, kindToProto } from "./coordination.js";
import {
  type GetRunStatsResponse,
  type GetRunStatsResponseSchema,
  ThreadStatus as PbThreadStatus,
  type ThreadSummary as PbThreadSummary,
  type TokenTotals as PbTokenTotals,
  type SearchRunsRequestSchema,
  type ThreadSummarySchema,
  type TokenTotalsSchema,
} from "./gen/runstore/v1/run_store_pb.js";
import {
  type MetadataFilter,
  type RunSearch,
  type RunStats,
  THREAD_STATUSES,
  type ThreadStatus,
  type ThreadSummary,
  type TokenTotals,
} from "./history.js";
import { statusFromProto, statusToProto } from "./proto-convert.js";
import type { RunStatus } from "./run-store.js";
import { parseTimestamp, timestampFromProto, timestampToProto } from "./timestamp.js";
import { invalidArgument } from "./validation.js";

// The history records ↔ their proto messages (docs/contract.md, "History"),
// shared by the service and RemoteRunStore like proto-convert.ts.

const THREAD_STATUS_TO_PROTO: Record<ThreadStatus, PbThreadStatus> = {
  idle: PbThreadStatus.IDLE,
  busy: PbThreadStatus.BUSY,
  interrupted: PbThreadStatus.INTERRUPTED,
  error: PbThreadStatus.ERROR,
};

/** A search as its request fields (the page fields are the caller's). */
export function searchToProto(
  search: RunSearch,
): Omit<MessageInitShape<typeof SearchRunsRequestSchema>, "pageSize" | "pageToken" | "$typeName"> {
  return {
    userId: search.userId ?? undefined,
    threadId: search.threadId ?? undefined,
    statuses: (search.statuses ?? []).map((status, i) => statusToProto(`statuses[${i}]`, status)),
    assistantId: search.assistantId ?? undefined,
    modelName: search.modelName ?? undefined,
    operationKinds: (search.operationKinds ?? []).map(kindToProto),
    createdAfter: optionalInstant(search.createdAfter, "created_after"),
    createdBefore: optionalInstant(search.createdBefore, "created_before"),
    metadata: search.metadata == null ? undefined : (search.metadata as JsonObject),
  };
}

/** The filters of a SearchRuns request as a search; UNSPECIFIED enum values are refused. */
export function searchFromProto(req: {
  userId?: string;
  threadId?: string;
  statuses: number[];
  assistantId?: string;
  modelName?: string;
  operationKinds: number[];
  createdAfter?: Parameters<typeof timestampFromProto>[0];
  createdBefore?: Parameters<typeof timestampFromProto>[0];
  metadata?: JsonObject;
}): RunSearch {
  return {
    userId: req.userId ?? null,
    threadId: req.threadId ?? null,
    statuses: elementsFromProto("statuses", req.statuses, statusFromProto),
    assistantId: req.assistantId ?? null,
    modelName: req.modelName ?? null,
    operationKinds: elementsFromProto("operation_kinds", req.operationKinds, kindFromProto),
    createdAfter:
      req.createdAfter === undefined ? null : timestampFromProto(req.createdAfter, "created_after"),
    createdBefore:
      req.createdBefore === undefined
        ? null
        : timestampFromProto(req.createdBefore, "created_before"),
    metadata: (req.metadata ?? null) as MetadataFilter | null,
  };
}

/** A repeated enum's values, each named by its index; UNSPECIFIED is no value in a list. */
function elementsFromProto<T>(
  field: string,
  values: number[],
  convert: (field: string, value: number) => T,
): T[] {
  return values.map((value, i) => {
    if (value === 0) throw invalidArgument(`${field}[${i}]`, "must not be UNSPECIFIED");
    return convert(`${field}[${i}]`, value);
  });
}

function optionalInstant(value: RunSearch["createdAfter"], field: string) {
  return value == null ? undefined : timestampToProto(parseTimestamp(value, field));
}

/** Token totals as their message. */
export function totalsToProto(totals: TokenTotals): MessageInitShape<typeof TokenTotalsSchema> {
  return {
    runs: BigInt(totals.runs),
    inputTokens: BigInt(totals.inputTokens),
    outputTokens: BigInt(totals.outputTokens),
    totalTokens: BigInt(totals.totalTokens),
    cacheReadTokens: BigInt(totals.cacheReadTokens),
  };
}

/** A totals message as token totals (unset: zeros). */
export function totalsFromProto(totals: PbTokenTotals | undefined): TokenTotals {
  return {
    runs: Number(totals?.runs ?? 0n),
    inputTokens: Number(totals?.inputTokens ?? 0n),
    outputTokens: Number(totals?.outputTokens ?? 0n),
    totalTokens: Number(totals?.totalTokens ?? 0n),
    cacheReadTokens: Number(totals?.cacheReadTokens ?? 0n),
  };
}

/** A by-model map; fromEntries keeps a model named "__proto__" an own key. */
function mapTotals<A, B>(map: Record<string, A>, convert: (totals: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(map).map(([model, totals]) => [model, convert(totals)]));
}

/** Run statistics as the GetRunStats response. */
export function statsToProto(stats: RunStats): MessageInitShape<typeof GetRunStatsResponseSchema> {
  return {
    totalRuns: BigInt(stats.totalRuns),
    byStatus: Object.entries(stats.byStatus).map(([status, runs]) => ({
      status: statusToProto("status", status as RunStatus),
      runs: BigInt(runs ?? 0),
    })),
    activeRuns: BigInt(stats.activeRuns),
    failedRuns: BigInt(stats.failedRuns),
    tokens: totalsToProto(stats.tokens),
    byModel: mapTotals(stats.byModel, totalsToProto),
    days: stats.days.map((day) => ({
      date: day.date,
      tokens: totalsToProto(day.tokens),
      byModel: mapTotals(day.byModel, totalsToProto),
    })),
  };
}

/** The GetRunStats response as run statistics. */
export function statsFromProto(response: GetRunStatsResponse): RunStats {
  const byStatus: Partial<Record<RunStatus, number>> = {};
  for (const { status, runs } of response.byStatus) {
    byStatus[statusFromProto("by_status.status", status)] = Number(runs);
  }
  return {
    totalRuns: Number(response.totalRuns),
    byStatus,
    activeRuns: Number(response.activeRuns),
    failedRuns: Number(response.failedRuns),
    tokens: totalsFromProto(response.tokens),
    byModel: mapTotals(response.byModel, totalsFromProto),
    days: response.days.map((day) => ({
      date: day.date,
      tokens: totalsFromProto(day.tokens),
      byModel: mapTotals(day.byModel, totalsFromProto),
    })),
  };
}

/** A thread summary as its message. */
export function threadToProto(thread: ThreadSummary): MessageInitShape<typeof ThreadSummarySchema> {
  return {
    threadId: thread.threadId,
    runCount: BigInt(thread.runCount),
    latestRunId: thread.latestRunId,
    latestRunStatus: statusToProto("latest_run_status", thread.latestRunStatus),
    latestRunUpdatedAt: timestampToProto(thread.latestRunUpdatedAt),
    lastActivityAt: timestampToProto(thread.lastActivityAt),
    totalTokens: BigInt(thread.totalTokens),
    status: THREAD_STATUS_TO_PROTO[thread.status],
  };
}

/** A thread summary message as the record. */
export function threadFromProto(thread: PbThreadSummary): ThreadSummary {
  const status = THREAD_STATUSES[thread.status - 1];
  if (status === undefined) throw invalidArgument("status", `has unknown value ${thread.status}`);
  return {
    threadId: thread.threadId,
    runCount: Number(thread.runCount),
    latestRunId: thread.latestRunId,
    latestRunStatus: statusFromProto("latest_run_status", thread.latestRunStatus),
    latestRunUpdatedAt: instantFromProto(thread.latestRunUpdatedAt, "latest_run_updated_at"),
    lastActivityAt: instantFromProto(thread.lastActivityAt, "last_activity_at"),
    totalTokens: Number(thread.totalTokens),
    status,
  };
}

function instantFromProto(value: PbThreadSummary["lastActivityAt"], field: string): string {
  if (value === undefined) throw invalidArgument(field, "is required");
  return timestampFromProto(value, field);
}
