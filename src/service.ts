import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type ServiceImpl } from "@connectrpc/connect";
import type { RunStore, RunStoreService, TokenCounters } from "@runstore/client";
import {
  COUNTER_FIELDS,
  checkCounter,
  kindFromProto,
  type pb,
  runToProto,
  statusFromProto,
  strategyFromProto,
  usageMapFromProto,
  usageToProto,
} from "@runstore/client/internal";
import { principalKey } from "./auth/principal-key.js";
import { ScopedRunStore } from "./auth/scoped-run-store.js";
import { withBoundedDetails } from "./bounded-details.js";
import { boundedStore } from "./bounded-store.js";
import { type FollowsCallSignal, followsCallSignal } from "./call-signal.js";
import { CallerShare, callerKey, defaultShare } from "./caller-share.js";
import { DEFAULT_LIMITS } from "./limits.js";
import { Overload } from "./overload.js";
import { defaultOverloadLimits } from "./overload-settings.js";
import { honoursResponseBudget, ResponseBudget } from "./response-budget.js";
import * as coordination from "./service-coordination.js";
import * as history from "./service-history.js";
import { noChangeLog, watchRuns } from "./service-watch.js";
import { honoursOwners } from "./stores/owners.js";
import type { WatchHub } from "./watch/watch-hub.js";
import { optionalTimestamp } from "./wire-values.js";

type Impl = ServiceImpl<typeof RunStoreService>;

/** What a method needs of Connect's HandlerContext: the call's signal. */
interface CallContext {
  readonly signal: AbortSignal;
  /** Set by the interceptors: the caller's principal (auth/principal-key.ts). */
  readonly values?: ContextValues;
}

/**
 * RunStoreService over any RunStore: turns each request into the store call
 * and the result into the response. Wire-only rules (enum values, Timestamp
 * ranges, int64 counters) are checked here; every other rule is checked by
 * the store itself, before it touches any data, so in-process callers get
 * the same InvalidArgument errors as remote ones. Answers that list runs
 * are held to a response budget (RESOURCE_EXHAUSTED past `maxResponseBytes`).
 */
export class RunStoreServiceImpl implements Impl {
  private readonly follows: (RunStore & FollowsCallSignal) | null;
  private readonly budget: ResponseBudget;
  private readonly share: CallerShare | null;
  private readonly overload: Overload;
  private readonly watch: ServiceWatch | null;

  /**
   * `callerShare`: store calls one caller may have open; default half a pool
   * (caller-share.ts). `watch`: the server's watch hub over the store's
   * change log (src/watch/); without one WatchRuns is UNIMPLEMENTED.
   */
  constructor(
    private readonly store: RunStore,
    options: {
      maxResponseBytes?: number;
      callerShare?: number | null;
      /** The server's bounds of store calls (overload.ts); default: defaultOverloadLimits(store). */
      overload?: Overload;
      watch?: ServiceWatch | null;
    } = {},
  ) {
    this.watch = options.watch ?? null;
    this.follows = followsCallSignal(store) ? store : null;
    this.budget = new ResponseBudget(options.maxResponseBytes ?? DEFAULT_LIMITS.maxResponseBytes);
    this.overload = options.overload ?? new Overload(defaultOverloadLimits(store));
    const share = options.callerShare ?? defaultShare(store);
    this.share = share === null ? null : new CallerShare(share, this.overload);
  }

  /**
   * The store for one call: bound to its signal when the store can follow
   * it, held to its caller's share of the store (the caller: its token, or
   * its address without one; src/call-context.ts) and to the server's
   * bounds of calls running and waiting (overload.ts), and seen through the
   * caller's users when its token is bound to some.
   */
  private storeFor(context: CallContext | undefined): RunStore {
    const signalled =
      this.follows !== null && context !== undefined
        ? this.follows.withCallSignal(context.signal)
        : this.store;
    // The budget reaches the database read: a list too large is refused before its rows are loaded.
    const bound = honoursResponseBudget(signalled)
      ? signalled.withResponseBudget(this.budget.maxBytes)
      : signalled;
    const principal = context?.values?.get(principalKey) ?? null;
    const users = principal?.users ?? null;
    const owned = users === null ? bound : ownedBy(bound, users);
    const caller = context?.values?.get(callerKey) ?? null;
    const shared = this.share === null || caller === null ? null : { share: this.share, caller };
    const store =
      context === undefined ? owned : boundedStore(owned, this.overload, context, shared);
    return users === null ? store : new ScopedRunStore(store, users);
  }

  async put(
    req: pb.PutRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.PutResponseSchema>> {
    const put = this.storeFor(context).put(req.runId, {
      threadId: req.threadId,
      assistantId: req.assistantId ?? null,
      userId: req.userId ?? null,
      modelName: req.modelName ?? null,
      status: statusFromProto("status", req.status, "pending"),
      multitaskStrategy: strategyFromProto("multitask_strategy", req.multitaskStrategy),
      metadata: req.metadata ?? null,
      kwargs: req.kwargs ?? null,
      error: req.error ?? null,
      createdAt: optionalTimestamp(req.createdAt, "created_at"),
      operationKind: kindFromProto("operation_kind", req.operationKind),
      stopReason: req.stopReason ?? null,
      ownerWorkerId: req.ownerWorkerId ?? null,
      leaseExpiresAt: optionalTimestamp(req.leaseExpiresAt, "lease_expires_at"),
      idempotencyKey: req.idempotencyKey ?? null,
      followUpToRunId: req.followUpToRunId ?? null,
    });
    await withBoundedDetails(put);
    return {};
  }

  async get(
    req: pb.GetRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.GetResponseSchema>> {
    const record = await this.storeFor(context).get(req.runId, { userId: req.userId ?? null });
    return record === null ? {} : { run: runToProto(record) };
  }

  async listByThread(req: pb.ListByThreadRequest, context?: CallContext) {
    const page = history.pageOf(req);
    if (page !== null) {
      return history.listByThreadPage(this.storeFor(context), req, page, this.budget);
    }
    const records = await this.storeFor(context).listByThread(req.threadId, {
      userId: req.userId ?? null,
      limit: req.limit,
    });
    return this.budget.runs(records);
  }

  async updateStatus(
    req: pb.UpdateStatusRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.UpdateStatusResponseSchema>> {
    const updated = await this.storeFor(context).updateStatus(
      req.runId,
      statusFromProto("status", req.status),
      { error: req.error ?? null, stopReason: req.stopReason ?? null, guarded: req.guarded },
    );
    return { updated: updated ?? undefined };
  }

  async delete(
    req: pb.DeleteRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.DeleteResponseSchema>> {
    await this.storeFor(context).delete(req.runId, { userId: req.userId ?? null });
    return {};
  }

  async updateModelName(
    req: pb.UpdateModelNameRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.UpdateModelNameResponseSchema>> {
    await this.storeFor(context).updateModelName(req.runId, req.modelName ?? null);
    return {};
  }

  async updateRunCompletion(
    req: pb.UpdateRunCompletionRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.UpdateRunCompletionResponseSchema>> {
    const updated = await this.storeFor(context).updateRunCompletion(req.runId, {
      status: statusFromProto("status", req.status),
      ...countersFromProto(req),
      lastAiMessage: req.lastAiMessage ?? null,
      firstHumanMessage: req.firstHumanMessage ?? null,
      error: req.error ?? null,
      tokenUsageByModel: usageMapFromProto(req.tokenUsageByModel),
      guarded: req.guarded,
    });
    return { updated: updated ?? undefined };
  }

  async updateRunProgress(
    req: pb.UpdateRunProgressRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.UpdateRunProgressResponseSchema>> {
    await this.storeFor(context).updateRunProgress(req.runId, {
      ...countersFromProto(req),
      lastAiMessage: req.lastAiMessage ?? null,
      firstHumanMessage: req.firstHumanMessage ?? null,
      tokenUsageByModel:
        req.tokenUsageByModel === undefined
          ? null
          : usageMapFromProto(req.tokenUsageByModel.models),
    });
    return {};
  }

  async listPending(req: pb.ListPendingRequest, context?: CallContext) {
    const page = history.pageOf(req);
    if (page !== null) {
      return history.listPendingPage(this.storeFor(context), req, page, this.budget);
    }
    return this.budget.runs(
      await this.storeFor(context).listPending({ before: optionalTimestamp(req.before, "before") }),
    );
  }

  async listInflight(req: pb.ListInflightRequest, context?: CallContext) {
    const page = history.pageOf(req);
    if (page !== null) {
      return history.listInflightPage(this.storeFor(context), req, page, this.budget);
    }
    return this.budget.runs(
      await this.storeFor(context).listInflight({
        before: optionalTimestamp(req.before, "before"),
      }),
    );
  }

  async aggregateTokensByThread(
    req: pb.AggregateTokensByThreadRequest,
    context?: CallContext,
  ): Promise<MessageInitShape<typeof pb.AggregateTokensByThreadResponseSchema>> {
    const usage = await this.storeFor(context).aggregateTokensByThread(req.threadId, {
      includeActive: req.includeActive,
    });
    return usageToProto(usage);
  }

  // Coordination between workers: see service-coordination.ts.

  createThreadOperation(req: pb.CreateThreadOperationRequest, context?: CallContext) {
    return coordination.createThreadOperation(this.storeFor(context), req);
  }

  startRun(req: pb.StartRunRequest, context?: CallContext) {
    return coordination.startRun(this.storeFor(context), req);
  }

  renewLease(req: pb.RenewLeaseRequest, context?: CallContext) {
    return coordination.renewLease(this.storeFor(context), req);
  }

  requestCancel(req: pb.RequestCancelRequest, context?: CallContext) {
    return coordination.requestCancel(this.storeFor(context), req);
  }

  finalizeIfNotCancelled(req: pb.FinalizeIfNotCancelledRequest, context?: CallContext) {
    return coordination.finalizeIfNotCancelled(this.storeFor(context), req);
  }

  claimForTakeover(req: pb.ClaimForTakeoverRequest, context?: CallContext) {
    return coordination.claimForTakeover(this.storeFor(context), req);
  }

  listInflightWithExpiredLease(req: pb.ListInflightWithExpiredLeaseRequest, context?: CallContext) {
    const page = history.pageOf(req);
    if (page !== null) {
      return history.listInflightWithExpiredLeasePage(
        this.storeFor(context),
        req,
        page,
        this.budget,
      );
    }
    return coordination.listInflightWithExpiredLease(this.storeFor(context), req, this.budget);
  }

  claimNextRun(req: pb.ClaimNextRunRequest, context?: CallContext) {
    return coordination.claimNextRun(this.storeFor(context), req);
  }

  getManyByThread(req: pb.GetManyByThreadRequest, context?: CallContext) {
    return coordination.getManyByThread(this.storeFor(context), req, this.budget);
  }

  listSuccessfulRegenerateSources(
    req: pb.ListSuccessfulRegenerateSourcesRequest,
    context?: CallContext,
  ) {
    return coordination.listSuccessfulRegenerateSources(this.storeFor(context), req);
  }

  listEditRegenerateRuns(req: pb.ListEditRegenerateRunsRequest, context?: CallContext) {
    return coordination.listEditRegenerateRuns(this.storeFor(context), req, this.budget);
  }

  // History, accounting and retention: see service-history.ts.

  searchRuns(req: pb.SearchRunsRequest, context?: CallContext) {
    return history.searchRuns(this.storeFor(context), req, this.budget);
  }

  getRunStats(req: pb.GetRunStatsRequest, context?: CallContext) {
    return history.getRunStats(this.storeFor(context), req);
  }

  listThreads(req: pb.ListThreadsRequest, context?: CallContext) {
    return history.listThreads(this.storeFor(context), req);
  }

  deleteThread(req: pb.DeleteThreadRequest, context?: CallContext) {
    return history.deleteThread(this.storeFor(context), req);
  }

  // Live changes: see service-watch.ts and src/watch/.

  async *watchRuns(req: pb.WatchRunsRequest, context?: CallContext) {
    if (this.watch === null) throw noChangeLog();
    // Connect always passes a context; in-process callers without one watch unscoped, never cancelled.
    const call = context ?? { signal: new AbortController().signal };
    yield* watchRuns(this.watch.hub, req, call, this.watch.heartbeatMs);
  }
}

/** WatchRuns' part of the service: the server's hub and WATCH_HEARTBEAT_MS. */
export interface ServiceWatch {
  hub: WatchHub;
  heartbeatMs: number;
}

/**
 * `store`'s view whose writes carry the owner condition for `users`
 * (src/stores/owners.ts), which ScopedRunStore relies on: a store that
 * cannot give one serves no user-bound caller.
 */
function ownedBy(store: RunStore, users: ReadonlySet<string>): RunStore {
  if (!honoursOwners(store)) {
    throw new ConnectError(
      "this store cannot check a run's owner inside its writes: user-bound tokens need the memory or MySQL store",
      Code.Unimplemented,
    );
  }
  return store.withOwners(users);
}

/**
 * The counters present on the request as numbers. int64 values beyond
 * 2^53-1 cannot be held exactly, so they are refused rather than rounded.
 */
function countersFromProto(
  req: {
    [K in keyof TokenCounters]?: bigint;
  },
): Partial<TokenCounters> {
  const out: Partial<TokenCounters> = {};
  for (const [name, wire] of COUNTER_FIELDS) {
    const value = req[name];
    if (value !== undefined) out[name] = checkCounter(wire, Number(value));
  }
  return out;
}
