import { setMaxListeners } from "node:events";
import {
  type Client,
  Code,
  type CallOptions as ConnectCallOptions,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { CallGate } from "./call-gate.js";
import { CallSignals } from "./call-signals.js";
import { idempotencyConflictError } from "./conflicts.js";
import { calmedStream, streamCalmed } from "./connection-errors.js";
import { actionFromProto, checkOperationKind, kindToProto } from "./coordination.js";
import { checkBaseUrls, type FailoverOptions } from "./endpoints.js";
import { RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
import type {
  DeleteThreadOptions,
  Page,
  PageRequest,
  RunSearch,
  RunStats,
  RunStatsOptions,
  ThreadSummary,
} from "./history.js";
import { toJsonObject } from "./json-object.js";
import { runFromProto, statusToProto, strategyToProto, usageFromProto } from "./proto-convert.js";
import { openConnections, type RemoteConnections } from "./remote-connections.js";
import {
  actionRequest,
  admissionFromProto,
  admissionRequest,
  finalizationFromProto,
  leaseCallRequest,
  referencedConflictRow,
  renewalFromProto,
  runIdsRequest,
  takeoverRequest,
  usageMapRequest,
  usageSnapshotRequest,
} from "./remote-coordination.js";
import { RemoteHistory, type RpcName } from "./remote-history.js";
import {
  countersToProto,
  lease as leaseRequest,
  optionalTimestamp,
  text,
} from "./remote-request.js";
import { watchRuns } from "./remote-watch.js";
import {
  isIdempotent,
  type RetryOptions,
  type RetryPolicy,
  retryPolicy,
  withRetry,
} from "./retry.js";
import type {
  Admission,
  CancelAction,
  ExpiredLeaseOptions,
  Lease,
  LeaseRenewal,
  ListByThreadOptions,
  OwnerOptions,
  PutFields,
  RecoveryOptions,
  RunCompletion,
  RunProgress,
  RunRecord,
  RunStatus,
  RunStore,
  StatusFinalization,
  TakeoverOptions,
  ThreadOperationFields,
  ThreadTokenUsage,
  UpdateStatusOptions,
} from "./run-store.js";
import { keepByteOrderMarks } from "./text-encoding.js";
import { asRefusedCertificate, refusalsSoFar } from "./tls-errors.js";
import { tracedCall } from "./tracing.js";
import { checkBoolean } from "./validation.js";
import type { RunWatchEvent, WatchRunsFilter } from "./watch.js";

export { DEFAULT_KEEPALIVE_INTERVAL_MS, DEFAULT_MAX_REQUEST_BYTES } from "./remote-connections.js";

/** The wire protocols a RemoteRunStore can speak; all three reach the same server. */
export type RemoteProtocol = "grpc" | "grpc-web" | "connect";

/** How to reach a RunStore server. */
export interface RemoteRunStoreOptions {
  /**
   * e.g. `http://127.0.0.1:50051`. Required unless `transport` is given. A
   * list of URLs (same scheme) reaches several replicas of one store: each
   * call goes to the next healthy one (round robin), and an attempt failing
   * with UNAVAILABLE, a lost connection or its deadline leaves that replica
   * out for a while (option `failover`), so a retry goes to another one.
   * Retries keep their rules (`retry`); a call whose connection could not
   * be opened moves to the next replica at once, whatever the RPC, since
   * nothing was sent. docs/topologies.md says when to list replicas here
   * and when to put a load balancer in front of them.
   */
  baseUrl?: string | readonly string[];
  /** How long a replica that failed is left out; only used with several base URLs. */
  failover?: FailoverOptions;
  /** Any Connect transport (e.g. `createRouterTransport` in tests); overrides baseUrl. */
  transport?: Transport;
  /** Default "grpc". */
  protocol?: RemoteProtocol;
  /** Default "2" (HTTP/2 with prior knowledge for http:// URLs). */
  httpVersion?: "1.1" | "2";
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Default per-call timeout in milliseconds; none when unset. */
  timeoutMs?: number;
  /** Extra interceptors for the transport built from baseUrl. */
  interceptors?: Interceptor[];
  /**
   * Retries of UNAVAILABLE within each call's deadline (see `withRetry`);
   * applies to every method of the store, whatever the transport, but not to
   * the raw `client`. startRun, claimNextRun, finalizeIfNotCancelled and
   * claimForTakeover are repeated only after the server's overload refusal
   * (UNAVAILABLE with a RetryInfo detail: refused before running); after any
   * other UNAVAILABLE they are made once (their answer to a repeat is not
   * their first answer: see SINGLE_ATTEMPT_RPCS). A refusal's retry_delay
   * is slept at the least. The store's own refusal of a call that got no
   * place on the wire (maxQueuedCalls, callQueueTimeoutMs) is never
   * repeated. `false` makes exactly one attempt. Default: 4 attempts, backoff bound
   * 50 ms doubling up to 2000 ms, full jitter.
   */
  retry?: RetryOptions | false;
  /**
   * TLS for an https:// baseUrl (without it Node's defaults apply); mTLS
   * when cert and key are given. Refused for http://. Unused with `transport`.
   */
  tls?: RemoteTlsOptions;
  /**
   * HTTP/2 PING interval (gRPC's keepalive time), so a connection a NAT or
   * load balancer dropped silently is noticed in seconds rather than at the
   * next call's timeout. PINGs go out only while calls are open; an idle
   * connection is verified before reuse. 0 turns PINGs off. Default 30000.
   * HTTP/2 only; unused with `transport`.
   */
  keepAliveIntervalMs?: number;
  /**
   * Largest request this client sends, default 4 MiB (the server's default
   * limit). A larger one fails here with RESOURCE_EXHAUSTED instead of being
   * sent: a server that refuses a large body stops reading it, and Node's
   * HTTP/2 client then buffers the rest until the whole connection fails.
   */
  maxRequestBytes?: number;
  /**
   * Calls on the wire at once, default 100 (the server's default
   * MAX_CONCURRENT_STREAMS); more wait in this store, in order, within
   * their deadline (client/src/call-gate.ts). Watches are not counted.
   */
  maxConcurrentCalls?: number;
  /**
   * Calls that may wait for a place among maxConcurrentCalls, default 1000
   * (Infinity: any number). One more fails at once with UNAVAILABLE ("no
   * place on the wire: … waiting (maxQueuedCalls)"), never sent, and
   * `retry` does not repeat it: past what the connection carries the excess
   * fails fast instead of queueing here until deadlines expire
   * (client/src/call-gate.ts).
   */
  maxQueuedCalls?: number;
  /**
   * How long a call may wait for a place among maxConcurrentCalls, ms;
   * default 0: as long as its deadline. Past it the call fails as one past
   * maxQueuedCalls does ("no place on the wire within …"): for a caller
   * with a latency budget, at the cost of refusing part of a burst when the
   * server is slow.
   */
  callQueueTimeoutMs?: number;
}

/**
 * The TLS settings of an https:// connection, a subset of Node's
 * `tls.ConnectionOptions` that works for HTTP/2 and HTTP/1.1 alike.
 */
export interface RemoteTlsOptions {
  /** PEM CA certificate(s) to trust instead of Node's bundled roots (private CAs). */
  ca?: string | Buffer;
  /** PEM client certificate for mTLS; needs `key`. */
  cert?: string | Buffer;
  /** PEM private key of `cert`. */
  key?: string | Buffer;
  /** Name to verify the server certificate against (and SNI), when the URL host differs. */
  servername?: string;
  /** Default true. false accepts any certificate: for local testing only. */
  rejectUnauthorized?: boolean;
}

/** Per-call options, given as the last argument of any RemoteRunStore method. */
export interface RemoteCallOptions {
  /** Cancels the call, a pending retry included; it then rejects with code Canceled. */
  signal?: AbortSignal;
  /**
   * Overrides the default timeout for this call. It bounds all attempts and
   * the sleeps between them together; <= 0 means none, as in Connect.
   */
  timeoutMs?: number;
}

/**
 * The RunStore interface over a Connect / gRPC / gRPC-Web transport, so a
 * TypeScript service can swap an in-process store for the shared server
 * without changing a line. Errors are ConnectErrors with the server's code;
 * UNAVAILABLE is retried first (option `retry`), within the call's deadline,
 * except by the four calls whose answer is not idempotent (SINGLE_ATTEMPT_RPCS),
 * which are retried only after an overload refusal (see `withRetry`).
 */
export class RemoteRunStore implements RunStore {
  /**
   * The raw generated client, for callers who want the proto messages. It
   * shares the store's transport but none of the store's own behaviour: no
   * retries, token, default timeout or close() guard (after close() it
   * reconnects). Wrap its calls in `withRetry` to get the retries. Its
   * answers keep a leading U+FEFF (see `keepByteOrderMarks`).
   */
  readonly client: Client<typeof RunStoreService>;
  /** What this store opened from its base URL(s); none with `transport`. */
  private readonly connections: RemoteConnections | undefined;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number | undefined;
  private readonly retry: RetryPolicy;
  private readonly history: RemoteHistory;
  // One listener per watch in flight: many concurrent watches are normal, not a leak.
  private readonly closed = unlimitedListeners(new AbortController());
  /** The unary calls in flight, ended by close() (kept off `closed`: see CallSignals). */
  private readonly calls = new CallSignals();
  /** At most maxConcurrentCalls attempts on the wire; the rest wait their turn. */
  private readonly gate: CallGate;

  constructor(options: RemoteRunStoreOptions) {
    keepByteOrderMarks();
    this.headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    this.timeoutMs = options.timeoutMs;
    this.retry = retryPolicy(options.retry);
    this.gate = new CallGate(
      checkMaxConcurrentCalls(options.maxConcurrentCalls),
      checkCallQueueTimeoutMs(options.callQueueTimeoutMs),
      checkMaxQueuedCalls(options.maxQueuedCalls),
    );
    let transport = options.transport;
    if (transport === undefined) {
      if (options.baseUrl === undefined) {
        throw new TypeError("RemoteRunStore needs a baseUrl or a transport");
      }
      this.connections = openConnections(options, checkBaseUrls(options.baseUrl));
      transport = this.connections.transport;
    }
    this.client = createClient(RunStoreService, transport);
    this.history = new RemoteHistory(this.client, (name, rpc, call) =>
      this.invoke(name, rpc, call),
    );
  }

  /**
   * Closes the HTTP/2 connections (or this store's own HTTP/1.1 agent's
   * connections) this store opened and ends every call of
   * the store, in flight or sleeping before a retry, with CANCELED; later
   * calls fail the same way. Without this guard the session manager would
   * quietly reconnect on the next call and keep the process alive.
   */
  close(): void {
    const reason = new ConnectError("RemoteRunStore is closed", Code.Canceled);
    this.closed.abort(reason);
    this.calls.abortAll(reason);
    this.connections?.close(reason);
  }

  async put(runId: string, fields: PutFields, call?: RemoteCallOptions): Promise<void> {
    const request = {
      runId: text("run_id", runId),
      threadId: text("thread_id", fields.threadId),
      assistantId: text("assistant_id", fields.assistantId),
      userId: text("user_id", fields.userId),
      modelName: text("model_name", fields.modelName),
      status: statusToProto("status", fields.status ?? "pending"),
      multitaskStrategy: strategyToProto(
        "multitask_strategy",
        fields.multitaskStrategy ?? "reject",
      ),
      metadata: toJsonObject("metadata", fields.metadata),
      kwargs: toJsonObject("kwargs", fields.kwargs),
      error: text("error", fields.error),
      createdAt: optionalTimestamp(fields.createdAt, "created_at"),
      operationKind: kindToProto(
        checkOperationKind("operation_kind", fields.operationKind ?? "run"),
      ),
      stopReason: text("stop_reason", fields.stopReason),
      ownerWorkerId: text("owner_worker_id", fields.ownerWorkerId),
      leaseExpiresAt: optionalTimestamp(fields.leaseExpiresAt, "lease_expires_at"),
      idempotencyKey: text("idempotency_key", fields.idempotencyKey),
      followUpToRunId: text("follow_up_to_run_id", fields.followUpToRunId),
    };
    await this.keyed(
      this.invoke("put", (options) => this.client.put(request, options), call),
      call,
    );
  }

  async get(
    runId: string,
    options?: OwnerOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord | null> {
    const request = { runId: text("run_id", runId), userId: text("user_id", options?.userId) };
    const response = await this.invoke("get", (o) => this.client.get(request, o), call);
    return response.run === undefined ? null : runFromProto(response.run);
  }

  async listByThread(
    threadId: string,
    options?: ListByThreadOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord[]> {
    return this.history.listByThread(threadId, options, call);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: UpdateStatusOptions,
    call?: RemoteCallOptions,
  ): Promise<boolean | null> {
    const request = {
      runId: text("run_id", runId),
      status: statusToProto("status", status),
      error: text("error", options?.error),
      stopReason: text("stop_reason", options?.stopReason),
      guarded: checkBoolean("guarded", options?.guarded ?? false),
    };
    const response = await this.invoke(
      "updateStatus",
      (o) => this.client.updateStatus(request, o),
      call,
    );
    return response.updated ?? null;
  }

  async delete(runId: string, options?: OwnerOptions, call?: RemoteCallOptions): Promise<void> {
    const request = { runId: text("run_id", runId), userId: text("user_id", options?.userId) };
    await this.invoke("delete", (o) => this.client.delete(request, o), call);
  }

  async updateModelName(
    runId: string,
    modelName: string | null,
    call?: RemoteCallOptions,
  ): Promise<void> {
    const request = { runId: text("run_id", runId), modelName: text("model_name", modelName) };
    await this.invoke("updateModelName", (o) => this.client.updateModelName(request, o), call);
  }

  async updateRunCompletion(
    runId: string,
    completion: RunCompletion,
    call?: RemoteCallOptions,
  ): Promise<boolean | null> {
    const request = {
      runId: text("run_id", runId),
      status: statusToProto("status", completion.status),
      ...countersToProto(completion, 0),
      lastAiMessage: text("last_ai_message", completion.lastAiMessage),
      firstHumanMessage: text("first_human_message", completion.firstHumanMessage),
      error: text("error", completion.error),
      tokenUsageByModel: usageMapRequest(completion.tokenUsageByModel),
      guarded: checkBoolean("guarded", completion.guarded ?? false),
    };
    const response = await this.invoke(
      "updateRunCompletion",
      (o) => this.client.updateRunCompletion(request, o),
      call,
    );
    return response.updated ?? null;
  }

  async updateRunProgress(
    runId: string,
    progress: RunProgress,
    call?: RemoteCallOptions,
  ): Promise<void> {
    const request = {
      runId: text("run_id", runId),
      ...countersToProto(progress, undefined),
      lastAiMessage: text("last_ai_message", progress.lastAiMessage),
      firstHumanMessage: text("first_human_message", progress.firstHumanMessage),
      tokenUsageByModel: usageSnapshotRequest(progress.tokenUsageByModel),
    };
    await this.invoke("updateRunProgress", (o) => this.client.updateRunProgress(request, o), call);
  }

  async listPending(options?: RecoveryOptions, call?: RemoteCallOptions): Promise<RunRecord[]> {
    return this.history.listPending(options, call);
  }

  async listInflight(options?: RecoveryOptions, call?: RemoteCallOptions): Promise<RunRecord[]> {
    return this.history.listInflight(options, call);
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
    call?: RemoteCallOptions,
  ): Promise<ThreadTokenUsage> {
    const request = {
      threadId: text("thread_id", threadId),
      includeActive: checkBoolean("include_active", options?.includeActive ?? false),
    };
    const response = await this.invoke(
      "aggregateTokensByThread",
      (o) => this.client.aggregateTokensByThread(request, o),
      call,
    );
    return usageFromProto(response);
  }

  // Coordination between workers (docs/contract.md, part 2). Conflicts
  // (ABORTED, ALREADY_EXISTS) are answers, never retried: decode them with
  // threadConflict() / idempotencyConflict().

  async createThreadOperation(
    runId: string,
    fields: ThreadOperationFields,
    call?: RemoteCallOptions,
  ): Promise<Admission> {
    const request = admissionRequest(runId, fields);
    const response = await this.keyed(
      this.invoke(
        "createThreadOperation",
        (o) => this.client.createThreadOperation(request, o),
        call,
      ),
      call,
    );
    return admissionFromProto(response);
  }

  async startRun(runId: string, call?: RemoteCallOptions): Promise<boolean> {
    const request = { runId: text("run_id", runId) };
    return (await this.invoke("startRun", (o) => this.client.startRun(request, o), call)).started;
  }

  async renewLease(
    runId: string,
    ownerWorkerId: string,
    lease: Lease,
    call?: RemoteCallOptions,
  ): Promise<LeaseRenewal> {
    const request = leaseCallRequest(runId, ownerWorkerId, lease);
    return renewalFromProto(
      await this.invoke("renewLease", (o) => this.client.renewLease(request, o), call),
    );
  }

  /** RenewLease, answering only whether it applied. */
  async updateLease(
    runId: string,
    ownerWorkerId: string,
    lease: Lease,
    call?: RemoteCallOptions,
  ): Promise<boolean> {
    return (await this.renewLease(runId, ownerWorkerId, lease, call)).renewed;
  }

  async requestCancel(
    runId: string,
    action: CancelAction,
    call?: RemoteCallOptions,
  ): Promise<CancelAction | null> {
    const request = { runId: text("run_id", runId), action: actionRequest("action", action) };
    const response = await this.invoke(
      "requestCancel",
      (o) => this.client.requestCancel(request, o),
      call,
    );
    return actionFromProto("cancel_action", response.cancelAction);
  }

  async finalizeIfNotCancelled(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null; stopReason?: string | null },
    call?: RemoteCallOptions,
  ): Promise<StatusFinalization> {
    const request = {
      runId: text("run_id", runId),
      status: statusToProto("status", status),
      error: text("error", options?.error),
      stopReason: text("stop_reason", options?.stopReason),
    };
    const response = await this.invoke(
      "finalizeIfNotCancelled",
      (o) => this.client.finalizeIfNotCancelled(request, o),
      call,
    );
    return finalizationFromProto(response);
  }

  async claimForTakeover(
    runId: string,
    options: TakeoverOptions,
    call?: RemoteCallOptions,
  ): Promise<boolean> {
    const request = { runId: text("run_id", runId), ...takeoverRequest(options) };
    return (
      await this.invoke("claimForTakeover", (o) => this.client.claimForTakeover(request, o), call)
    ).claimed;
  }

  async listInflightWithExpiredLease(
    options?: ExpiredLeaseOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord[]> {
    return this.history.listInflightWithExpiredLease(options, call);
  }

  async claimNextRun(
    ownerWorkerId: string,
    lease: Lease,
    options?: { threadId?: string | null },
    call?: RemoteCallOptions,
  ): Promise<RunRecord | null> {
    const request = {
      ownerWorkerId: text("owner_worker_id", ownerWorkerId),
      lease: leaseRequest("lease", lease),
      threadId: text("thread_id", options?.threadId),
    };
    const response = await this.invoke(
      "claimNextRun",
      (o) => this.client.claimNextRun(request, o),
      call,
    );
    return response.run === undefined ? null : runFromProto(response.run);
  }

  /** Delete with the owner recorded at admission (null: no owner filter). */
  async deleteThreadOperation(
    runId: string,
    userId: string | null,
    call?: RemoteCallOptions,
  ): Promise<void> {
    await this.delete(runId, { userId }, call);
  }

  async getManyByThread(
    threadId: string,
    runIds: readonly string[],
    options?: OwnerOptions,
    call?: RemoteCallOptions,
  ): Promise<Record<string, RunRecord>> {
    const request = {
      threadId: text("thread_id", threadId),
      runIds: runIdsRequest(runIds),
      userId: text("user_id", options?.userId),
    };
    const response = await this.invoke(
      "getManyByThread",
      (o) => this.client.getManyByThread(request, o),
      call,
    );
    return Object.fromEntries(
      Object.entries(response.runs).map(([id, run]) => [id, runFromProto(run)]),
    );
  }

  async listSuccessfulRegenerateSources(
    threadId: string,
    options?: OwnerOptions,
    call?: RemoteCallOptions,
  ): Promise<string[]> {
    const request = {
      threadId: text("thread_id", threadId),
      userId: text("user_id", options?.userId),
    };
    const response = await this.invoke(
      "listSuccessfulRegenerateSources",
      (o) => this.client.listSuccessfulRegenerateSources(request, o),
      call,
    );
    return response.runIds;
  }

  async listEditRegenerateRuns(
    threadId: string,
    options?: OwnerOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord[]> {
    const request = {
      threadId: text("thread_id", threadId),
      userId: text("user_id", options?.userId),
    };
    const response = await this.invoke(
      "listEditRegenerateRuns",
      (o) => this.client.listEditRegenerateRuns(request, o),
      call,
    );
    return response.runs.map(runFromProto);
  }

  // History, accounting and retention (docs/contract.md, "History"): one
  // request a page; the iterators fetch the next page when it is reached.

  listByThreadPage(
    threadId: string,
    options?: OwnerOptions,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<RunRecord>> {
    return this.history.listByThreadPage(threadId, options, page, call);
  }

  listPendingPage(
    options?: RecoveryOptions,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<RunRecord>> {
    return this.history.listPendingPage(options, page, call);
  }

  listInflightPage(
    options?: RecoveryOptions,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<RunRecord>> {
    return this.history.listInflightPage(options, page, call);
  }

  listInflightWithExpiredLeasePage(
    options?: ExpiredLeaseOptions,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<RunRecord>> {
    return this.history.listInflightWithExpiredLeasePage(options, page, call);
  }

  searchRunsPage(
    search?: RunSearch,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<RunRecord>> {
    return this.history.searchRunsPage(search, page, call);
  }

  /** Each `call` option applies to every page's request. */
  searchRuns(
    search?: RunSearch,
    pageSize?: number | null,
    call?: RemoteCallOptions,
  ): AsyncGenerator<RunRecord, void, undefined> {
    return this.history.searchRuns(search, pageSize, call);
  }

  getRunStats(options?: RunStatsOptions, call?: RemoteCallOptions): Promise<RunStats> {
    return this.history.getRunStats(options, call);
  }

  listThreadsPage(
    options?: OwnerOptions,
    page?: PageRequest,
    call?: RemoteCallOptions,
  ): Promise<Page<ThreadSummary>> {
    return this.history.listThreadsPage(options, page, call);
  }

  /** Each `call` option applies to every page's request. */
  listThreads(
    options?: OwnerOptions,
    pageSize?: number | null,
    call?: RemoteCallOptions,
  ): AsyncGenerator<ThreadSummary, void, undefined> {
    return this.history.listThreads(options, pageSize, call);
  }

  /**
   * Retried on UNAVAILABLE like every idempotent call; the count is what the
   * attempt that answered removed, so after a retry it may leave out rows a
   * lost attempt removed.
   */
  deleteThread(
    threadId: string,
    options?: DeleteThreadOptions,
    call?: RemoteCallOptions,
  ): Promise<number> {
    return this.history.deleteThread(threadId, options, call);
  }

  /**
   * The changes of the runs matching `filter` as they commit (docs/contract.md,
   * "Live changes"): first a heartbeat with the cursor the watch starts
   * after, then each change, and heartbeats while nothing matches. After
   * UNAVAILABLE, ABORTED (the stream fell behind) or a lost connection it
   * resumes by itself from the last cursor it yielded, within the store's
   * retry policy (attempts counted since the last message received; with
   * several base URLs the next attempt goes to the next replica), so no
   * change is lost or repeated. OUT_OF_RANGE (a cursor the log no longer
   * holds, or of another log), INVALID_ARGUMENT, PERMISSION_DENIED and
   * anything else are thrown. Leaving the loop (`break`, `return()`)
   * cancels the call. No deadline unless `call.timeoutMs` is given (the
   * store's default timeout does not apply); it bounds the whole watch.
   */
  watchRuns(
    filter?: WatchRunsFilter,
    call?: RemoteCallOptions,
  ): AsyncGenerator<RunWatchEvent, void, undefined> {
    const context = {
      client: this.client,
      headers: this.headers,
      retry: this.retry,
      closed: this.closed.signal,
      refusals: this.connections?.watch,
    };
    return watchRuns(context, filter, call);
  }

  /**
   * A write that takes an idempotency key. When it fails with a conflict
   * whose row the server sent as a reference (a row too large for a gRPC
   * trailer), the row is read with Get, so idempotencyConflict(error) gives
   * the whole row on every protocol. A row deleted, or no longer holding the
   * key, in between is not the row the conflict was about: the conflict is
   * rethrown without a detail.
   */
  private async keyed<T>(write: Promise<T>, call: RemoteCallOptions | undefined): Promise<T> {
    try {
      return await write;
    } catch (error) {
      const reference = referencedConflictRow(error);
      if (reference === null) throw error;
      const existing = await this.get(reference.runId, undefined, call);
      throw existing !== null && existing.idempotencyKey === reference.idempotencyKey
        ? idempotencyConflictError(existing)
        : new ConnectError(ConnectError.from(error).rawMessage, Code.AlreadyExists);
    }
  }

  /**
   * Runs the RPC `name` with the store's token, retrying UNAVAILABLE within
   * the call's deadline (the per-call timeoutMs, else the store's default);
   * one of SINGLE_ATTEMPT_RPCS only after an overload refusal. Requests are built before
   * this, so a bad argument fails once, locally.
   */
  private async invoke<T>(
    name: RpcName,
    rpc: (options: ConnectCallOptions) => Promise<T>,
    call: RemoteCallOptions | undefined,
  ): Promise<T> {
    if (this.closed.signal.aborted) throw this.closed.signal.reason;
    const { signal, end } = this.calls.open(call?.signal);
    try {
      // One client span for the call, its retries included.
      return await tracedCall(
        RunStoreService.typeName,
        RunStoreService.method[name].name,
        (traceHeaders) => {
          const headers = withTraceHeaders(this.headers, traceHeaders);
          return withRetry(
            (attempt) => this.attempt(rpc, { headers, ...attempt }, signal),
            { signal, timeoutMs: call?.timeoutMs ?? this.timeoutMs },
            this.retry,
            isIdempotent(name),
          );
        },
        (error) => Code[ConnectError.from(error).code] ?? "unknown",
      );
    } finally {
      end();
    }
  }

  /**
   * One attempt: a place on the wire (the gate), the RPC, and a refused
   * client certificate made UNAUTHENTICATED. One promise per attempt: no
   * closures for CallGate.run and refusedCertificateAsUnauthenticated.
   */
  private async attempt<T>(
    rpc: (options: ConnectCallOptions) => Promise<T>,
    options: ConnectCallOptions,
    signal: AbortSignal,
  ): Promise<T> {
    const waiting = this.gate.enter(options.signal, options.timeoutMs);
    if (waiting !== undefined) options = await afterWait(waiting, options);
    const watch = this.connections?.watch;
    const before = refusalsSoFar(watch);
    try {
      return await rpc(options);
    } catch (error) {
      // connect-node's transports (Connect, gRPC-Web) report the reset as INTERNAL.
      if (!signal.aborted && calmedStream(error) && !isUnavailable(error)) {
        throw streamCalmed(error);
      }
      throw asRefusedCertificate(error, watch, before, signal);
    } finally {
      this.gate.leave();
    }
  }
}

/** Waits for the gate; the RPC then gets what is left of the attempt's timeout. */
async function afterWait(
  waiting: Promise<void>,
  options: ConnectCallOptions,
): Promise<ConnectCallOptions> {
  const began = performance.now();
  await waiting;
  const timeoutMs = options.timeoutMs;
  if (timeoutMs === undefined || timeoutMs <= 0) return options;
  // At least 1: the gate ends the wait at the deadline, so little can be left, never none.
  return {
    ...options,
    timeoutMs: Math.max(1, Math.floor(timeoutMs - (performance.now() - began))),
  };
}

/** Already UNAVAILABLE (our gRPC transport's streamCalmed, or a failover's). */
function isUnavailable(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unavailable;
}

/** The store's headers and the span's: the store's own object when the span adds none. */
function withTraceHeaders(
  headers: Record<string, string>,
  traceHeaders: Record<string, string>,
): Record<string, string> {
  for (const _ in traceHeaders) return { ...headers, ...traceHeaders };
  return headers;
}

/** The default of maxQueuedCalls (as Envoy's max_pending_requests, 1024: a queue bounded by count). */
const DEFAULT_MAX_QUEUED_CALLS = 1000;

function checkMaxQueuedCalls(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_QUEUED_CALLS;
  if (value !== Number.POSITIVE_INFINITY && (!Number.isInteger(value) || value < 0)) {
    throw new TypeError(`maxQueuedCalls must be an integer >= 0 or Infinity, got ${String(value)}`);
  }
  return value;
}

function checkCallQueueTimeoutMs(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value > 2_147_483_647) {
    throw new TypeError(
      `callQueueTimeoutMs must be an integer from 0 to 2147483647, got ${String(value)}`,
    );
  }
  return value;
}

/** The default of maxConcurrentCalls: the server's default MAX_CONCURRENT_STREAMS. */
const DEFAULT_MAX_CONCURRENT_CALLS = 100;

function checkMaxConcurrentCalls(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_CONCURRENT_CALLS;
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`maxConcurrentCalls must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** Lifts Node's 10-listener warning threshold for a signal every call listens to. */
function unlimitedListeners(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
