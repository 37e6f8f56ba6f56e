import {
  type Client,
  type CallOptions as ConnectCallOptions,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
import { toJsonObject } from "./json-object.js";
import { runFromProto, statusToProto, strategyToProto, usageFromProto } from "./proto-convert.js";
import {
  COUNTER_FIELDS,
  type ListByThreadOptions,
  type OwnerOptions,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  type RunStore,
  type ThreadTokenUsage,
  type TokenCounters,
} from "./run-store.js";
import { parseTimestamp, timestampToProto } from "./timestamp.js";
import { checkBoolean, checkCounter, checkLimit, checkOptionalText } from "./validation.js";

/** The wire protocols a RemoteRunStore can speak; all three reach the same server. */
export type RemoteProtocol = "grpc" | "grpc-web" | "connect";

/** How to reach a RunStore server. */
export interface RemoteRunStoreOptions {
  /** e.g. `http://127.0.0.1:50051`. Required unless `transport` is given. */
  baseUrl?: string;
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
}

/** Per-call options, given as the last argument of any RemoteRunStore method. */
export interface RemoteCallOptions {
  /** Cancels the call; it then rejects with code Canceled. */
  signal?: AbortSignal;
  /** Overrides the default timeout for this call. */
  timeoutMs?: number;
}

/**
 * The RunStore interface over a Connect / gRPC / gRPC-Web transport, so a
 * TypeScript service can swap an in-process store for the shared server
 * without changing a line. Errors are ConnectErrors with the server's code.
 */
export class RemoteRunStore implements RunStore {
  /** The raw generated client, for callers who want the proto messages. */
  readonly client: Client<typeof RunStoreService>;
  private readonly sessionManager: Http2SessionManager | undefined;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number | undefined;

  constructor(options: RemoteRunStoreOptions) {
    this.headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    this.timeoutMs = options.timeoutMs;
    let transport = options.transport;
    if (transport === undefined) {
      if (options.baseUrl === undefined) {
        throw new TypeError("RemoteRunStore needs a baseUrl or a transport");
      }
      const protocol = options.protocol ?? "grpc";
      // gRPC needs HTTP/2; the other two may also run over HTTP/1.1.
      const http1 = options.httpVersion === "1.1" && protocol !== "grpc";
      if (!http1) this.sessionManager = new Http2SessionManager(options.baseUrl);
      transport = buildTransport(protocol, {
        baseUrl: options.baseUrl,
        interceptors: options.interceptors ?? [],
        sessionManager: this.sessionManager,
      });
    }
    this.client = createClient(RunStoreService, transport);
  }

  /** Closes the HTTP/2 connection this store opened; calls after close fail. */
  close(): void {
    this.sessionManager?.abort();
  }

  async put(runId: string, fields: PutFields, call?: RemoteCallOptions): Promise<void> {
    await this.client.put(
      {
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
      },
      this.callOptions(call),
    );
  }

  async get(
    runId: string,
    options?: OwnerOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord | null> {
    const response = await this.client.get(
      { runId: text("run_id", runId), userId: text("user_id", options?.userId) },
      this.callOptions(call),
    );
    return response.run === undefined ? null : runFromProto(response.run);
  }

  async listByThread(
    threadId: string,
    options?: ListByThreadOptions,
    call?: RemoteCallOptions,
  ): Promise<RunRecord[]> {
    const response = await this.client.listByThread(
      {
        threadId: text("thread_id", threadId),
        userId: text("user_id", options?.userId),
        limit: options?.limit === undefined ? undefined : checkLimit("limit", options.limit),
      },
      this.callOptions(call),
    );
    return response.runs.map(runFromProto);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null },
    call?: RemoteCallOptions,
  ): Promise<boolean | null> {
    const response = await this.client.updateStatus(
      {
        runId: text("run_id", runId),
        status: statusToProto("status", status),
        error: text("error", options?.error),
      },
      this.callOptions(call),
    );
    return response.updated ?? null;
  }

  async delete(runId: string, options?: OwnerOptions, call?: RemoteCallOptions): Promise<void> {
    await this.client.delete(
      { runId: text("run_id", runId), userId: text("user_id", options?.userId) },
      this.callOptions(call),
    );
  }

  async updateModelName(
    runId: string,
    modelName: string | null,
    call?: RemoteCallOptions,
  ): Promise<void> {
    await this.client.updateModelName(
      { runId: text("run_id", runId), modelName: text("model_name", modelName) },
      this.callOptions(call),
    );
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
    };
    const response = await this.client.updateRunCompletion(request, this.callOptions(call));
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
    };
    await this.client.updateRunProgress(request, this.callOptions(call));
  }

  async listPending(options?: RecoveryOptions, call?: RemoteCallOptions): Promise<RunRecord[]> {
    const response = await this.client.listPending(
      { before: optionalTimestamp(options?.before, "before") },
      this.callOptions(call),
    );
    return response.runs.map(runFromProto);
  }

  async listInflight(options?: RecoveryOptions, call?: RemoteCallOptions): Promise<RunRecord[]> {
    const response = await this.client.listInflight(
      { before: optionalTimestamp(options?.before, "before") },
      this.callOptions(call),
    );
    return response.runs.map(runFromProto);
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
    call?: RemoteCallOptions,
  ): Promise<ThreadTokenUsage> {
    const response = await this.client.aggregateTokensByThread(
      {
        threadId: text("thread_id", threadId),
        includeActive: checkBoolean("include_active", options?.includeActive ?? false),
      },
      this.callOptions(call),
    );
    return usageFromProto(response);
  }

  private callOptions(call: RemoteCallOptions | undefined): ConnectCallOptions {
    return {
      headers: this.headers,
      signal: call?.signal,
      timeoutMs: call?.timeoutMs ?? this.timeoutMs,
    };
  }
}

function buildTransport(
  protocol: RemoteProtocol,
  options: { baseUrl: string; interceptors: Interceptor[]; sessionManager?: Http2SessionManager },
): Transport {
  const { sessionManager, ...common } = options;
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ ...common, sessionManager });
    case "grpc-web":
      return sessionManager === undefined
        ? createGrpcWebTransport({ ...common, httpVersion: "1.1" })
        : createGrpcWebTransport({ ...common, httpVersion: "2", sessionManager });
    case "connect":
      return sessionManager === undefined
        ? createConnectTransport({ ...common, httpVersion: "1.1" })
        : createConnectTransport({ ...common, httpVersion: "2", sessionManager });
    default:
      throw new TypeError(`unknown protocol ${String(protocol)}: use grpc, grpc-web or connect`);
  }
}

/**
 * The counters that are given, as int64 values; an absent one becomes
 * `ifAbsent` (0 for a completion, left out for a progress snapshot).
 */
function countersToProto(
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

/**
 * A string field as sent: null/undefined are left unset. Only what the wire
 * cannot encode is refused here (a non-string, a lone surrogate); every
 * other rule is the server's, so its answer is the one callers see.
 */
function text(field: string, value: unknown): string | undefined {
  return checkOptionalText(field, value) ?? undefined;
}

function optionalTimestamp(value: string | Date | null | undefined, field: string) {
  return value === undefined || value === null
    ? undefined
    : timestampToProto(parseTimestamp(value, field));
}
