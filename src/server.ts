import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { keepByteOrderMarks, type RunStore, RunStoreService } from "@runstore/client";
import { headerCheck } from "./auth/header-check.js";
import type { JwtSettings } from "./auth/jwt.js";
import type { Credentials, TokenGrant } from "./auth/principal.js";
import { callContext } from "./call-context.js";
import { guardConnections } from "./connection-guard.js";
import { type RunningConsole, startConsoleServer } from "./console-server.js";
import { grpcUnaryHandler } from "./grpc-unary.js";
import { headerAuth } from "./header-auth.js";
import { HealthMonitor, MAX_WATCH_STREAMS } from "./health.js";
import { createHttp2Server, listen, replaceCertificate, type TlsOptions } from "./http2-server.js";
import { bearerAuth } from "./interceptors/bearer-auth.js";
import { internalErrors } from "./interceptors/internal-errors.js";
import { requestLog } from "./interceptors/request-log.js";
import { DEFAULT_LIMITS, MAX_RESPONSE_BYTES_CEILING, type ServerLimits } from "./limits.js";
import { type LogBudgetSettings, logBudget } from "./log-budget.js";
import { type Logger, silentLogger } from "./logger.js";
import { Overload } from "./overload.js";
import { defaultOverloadLimits, type OverloadSettings } from "./overload-settings.js";
import { routes } from "./routes.js";
import { RunStoreServiceImpl, type ServiceWatch } from "./service.js";
import { GracefulShutdown } from "./shutdown.js";
import { type ChangeFeed, hasChangeFeed } from "./stores/change-feed.js";
import { StreamDeadlines } from "./stream-deadlines.js";
import { WatchHub } from "./watch/watch-hub.js";
import type { WatchObserver } from "./watch/watch-observer.js";
import { DEFAULT_WATCH_SETTINGS, type WatchSettings } from "./watch/watch-settings.js";

export type { TlsOptions } from "./http2-server.js";

/** The default request size limit; larger requests get RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** What a server is built from. Only `store` is required. */
export interface ServerOptions {
  store: RunStore;
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4 MiB. */
  maxRequestBytes?: number;
  /**
   * Bearer tokens RunStoreService requires: a string is an unscoped (admin)
   * token, a TokenGrant a scoped one; none or empty (and no jwt): no authentication.
   */
  tokens?: readonly (string | TokenGrant)[];
  /** Also accept JWT bearer tokens verified and mapped by these settings. */
  jwt?: JwtSettings | null;
  /** Serve TLS (with HTTP/1.1 for Connect and gRPC-Web clients too); default plaintext HTTP/2. */
  tls?: TlsOptions | null;
  /** Default: silent. */
  logger?: Logger;
  /** Is the store usable? Default: the store's ping() when it has one, else always. */
  healthProbe?: () => Promise<void>;
  /** Default 5000. */
  healthCheckIntervalMs?: number;
  /** How long close() lets in-flight calls finish; default 10000. */
  shutdownGraceMs?: number;
  /** Interceptors that see every call first (metrics). */
  interceptors?: Interceptor[];
  /** More routes, served next to RunStoreService, health and reflection. */
  extraRoutes?: ((router: ConnectRouter) => void)[];
  /** Sees every unexpected error before it is answered as INTERNAL. Default: logger.error. */
  onInternalError?: (error: unknown, procedure: string) => void;
  /** Connection, stream, time and answer-size limits; default DEFAULT_LIMITS. */
  limits?: Partial<ServerLimits>;
  /** Store calls one authenticated caller may have open at once (DB_CALLER_SHARE); default half the pool. */
  callerShare?: number | null;
  /**
   * The bounds of store calls running and waiting (MAX_INFLIGHT_CALLS,
   * MAX_QUEUED_CALLS, QUEUE_TIMEOUT_MS; overload.ts): an Overload (to share
   * it with createMetrics), or settings; default for the store.
   */
  overload?: Overload | Partial<OverloadSettings>;
  /**
   * The log budget of warn lines anyone can cause (unauthenticated calls
   * refused; connections refused or closed), each kind its own; default 20 a minute.
   */
  logBudget?: LogBudgetSettings;
  /**
   * Also serve the run console (console-server.ts) on its own plain HTTP/1.1
   * port: the built page, and this server's Connect routes through the same
   * handler. `root`: the bundle (default dist/console). Default: none.
   */
  console?: { port: number; host: string; root?: string } | null;
  /** WatchRuns: window, heartbeats, MySQL poll (WATCH_*); default DEFAULT_WATCH_SETTINGS. */
  watch?: Partial<WatchSettings>;
  /** Sees WatchRuns streams, messages and change log reads (createMetrics().watch). */
  watchObserver?: WatchObserver;
}

/** A listening server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:50051`, or https:// with TLS */
  url: string;
  port: number;
  /** The run console's URL, e.g. `http://127.0.0.1:8080`; null without one. */
  consoleUrl: string | null;
  health: HealthMonitor;
  /**
   * Graceful stop: health goes NOT_SERVING, new calls are refused with
   * UNAVAILABLE, every HTTP/2 session gets GOAWAY, in-flight calls finish
   * (up to the grace period), then every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
  /**
   * Serves new calls with these tokens and new TLS connections with this
   * certificate (SIGHUP); calls and connections already open go on as they
   * are. TLS cannot be turned on or off this way.
   */
  reload(settings: Pick<ServerOptions, "tokens" | "tls">): void;
}

/**
 * Builds and starts a server; for main.ts, tests and embedding. The caller
 * owns the store and closes it after the server.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  keepByteOrderMarks(); // a run id that starts with U+FEFF must reach the store unchanged
  const logger = options.logger ?? silentLogger();
  const limits = limitsOf(options);
  const health = new HealthMonitor(
    options.healthProbe ?? probeOf(options.store),
    options.healthCheckIntervalMs ?? 5000,
    logger,
    MAX_WATCH_STREAMS,
    limits.maxWatchStreamsPerConnection,
  );
  const tls = options.tls ?? null;
  const server = createHttp2Server(tls, logger, limits);
  guardConnections(server, limits, logger, options.logBudget);
  const refusals = logBudget(
    logger,
    "unauthenticated calls refused: more than the log's budget, not logged one by one",
    options.logBudget,
  );
  server.once("close", () => refusals.stop());
  const refusedLog: RefusedLog = (fields) => {
    if (refusals.take()) logger.warn(fields, "unauthenticated call refused");
  };
  const deadlines = new StreamDeadlines(limits, logger);
  server.once("close", () => deadlines.stop());
  const shutdown = new GracefulShutdown(server, health, logger, RunStoreService.typeName);
  // One for the server's life, kept by reload(): every WatchRuns stream reads it.
  const watch = serviceWatch(options, limits, logger);
  // One for the server's life: a reload() must not reset the counts.
  const overload =
    options.overload instanceof Overload
      ? options.overload
      : new Overload(defaultOverloadLimits(options.store, options.overload));
  // Rebuilt by reload(): a request is served by the handler of its moment.
  let handle = requestHandler(options, health, shutdown, logger, refusedLog, overload, watch);
  const admission = admitRequests(server, overload);
  const serveRequest = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (admission.refuse(req, res, SERVICE_PREFIX, WATCH_RUNS_PATH)) return;
    deadlines.watch(req, res);
    handle(req, res);
  };
  server.on("request", serveRequest);
  const host = options.host ?? "127.0.0.1";
  const port = await listen(server, options.port ?? 0, host);
  const consoleServer = await startConsole(options, serveRequest, () => shutdown.close(0));
  // After listen, so a taken port fails before anything says SERVING.
  await health.start();
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `${tls === null ? "http" : "https"}://${urlHost}:${port}`,
    port,
    consoleUrl: consoleServer?.url ?? null,
    health,
    async close(graceMs = options.shutdownGraceMs ?? 10_000) {
      consoleServer?.stopAccepting();
      const closing = shutdown.close(graceMs);
      watch?.hub.close(); // once health says NOT_SERVING: open WatchRuns streams end (UNAVAILABLE)
      await closing;
      await consoleServer?.close();
    },
    reload(settings) {
      if (settings.tls) replaceCertificate(server, settings.tls);
      handle = requestHandler(
        { ...options, ...settings },
        health,
        shutdown,
        logger,
        refusedLog,
        overload,
        watch,
      );
    },
  };
}

/** The paths of RunStoreService's RPCs, and of the one the request bounds leave alone. */
const SERVICE_PREFIX = `/${RunStoreService.typeName}/`;
const WATCH_RUNS_PATH = `${SERVICE_PREFIX}WatchRuns`;

/** The request-level bounds (request-admission.ts), the lag sampled while `server` runs and has requests in progress. */
function admitRequests(server: http2.Http2Server | http2.Http2SecureServer, overload: Overload) {
  const admission = overload.requests;
  if (admission.limits.overloadLagMs > 0) {
    admission.lag.start();
    server.once("close", () => admission.lag.stop());
  }
  return admission;
}

/**
 * The server's one watch hub over the store's change log (src/watch/), or
 * null for a store that keeps none (WatchRuns is UNIMPLEMENTED then).
 */
function serviceWatch(
  options: ServerOptions,
  limits: ServerLimits,
  logger: Logger,
): ServiceWatch | null {
  const store = options.store;
  if (!hasChangeFeed(store)) return null;
  const settings = { ...DEFAULT_WATCH_SETTINGS, ...options.watch };
  // MysqlRunStore's changeFeed takes its poll interval; the memory store's takes nothing.
  const changeFeed = store.changeFeed as (options: { pollMs: number }) => ChangeFeed;
  const hub = new WatchHub(changeFeed.call(store, { pollMs: settings.pollMs }), {
    window: settings.window,
    maxWatchers: limits.maxRunWatchers,
    maxWatchersPerConnection: limits.maxWatchStreamsPerConnection,
    retryMs: settings.pollMs,
    observer: options.watchObserver,
    logger,
  });
  return { hub, heartbeatMs: settings.heartbeatMs };
}

/**
 * The console's server when one is asked for, its calls served by
 * `serveRequest` (HTTP/1.1 requests take the same path as on a TLS port);
 * when it cannot start (its port taken, no bundle), the main server is
 * closed again by `closeMain` and the error thrown.
 */
async function startConsole(
  options: ServerOptions,
  serveRequest: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  closeMain: () => Promise<void>,
): Promise<RunningConsole | null> {
  if (options.console == null) return null;
  return startConsoleServer({
    ...options.console,
    service: RunStoreService.typeName,
    rpc: (req, res) => serveRequest(req as never, res as never),
  }).catch(async (error: unknown) => {
    await closeMain();
    throw error;
  });
}

/** The limits with their defaults; the response budget never above its ceiling. */
function limitsOf(options: ServerOptions): ServerLimits {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  limits.maxResponseBytes = Math.min(limits.maxResponseBytes, MAX_RESPONSE_BYTES_CEILING);
  return limits;
}

/** The store's ping() (MysqlRunStore) as the health probe; a store without one is always up. */
function probeOf(store: RunStore): () => Promise<void> {
  const ping = (store as Partial<{ ping(): Promise<void> }>).ping;
  return typeof ping === "function" ? () => ping.call(store) : async () => {};
}

/** The warn line of one refused call, within the server's log budget. */
type RefusedLog = (fields: Record<string, unknown>) => void;

/**
 * Every request: counted for shutdown, then unary gRPC calls to
 * RunStoreService take the lean path and everything else goes to Connect,
 * both through the same interceptors, limits and shutdown signal.
 */
function requestHandler(
  options: ServerOptions,
  health: HealthMonitor,
  shutdown: GracefulShutdown,
  logger: Logger,
  refusedLog: RefusedLog,
  overload: Overload,
  watch: ServiceWatch | null,
) {
  const service = new RunStoreServiceImpl(options.store, {
    ...limitsOf(options),
    callerShare: options.callerShare ?? null,
    overload,
    watch,
  });
  const check = headerCheck(options.tokens ?? [], options.jwt ?? null);
  const interceptors = interceptorsFor(options, shutdown, logger, refusedLog, check?.credentials);
  const refused =
    check === null
      ? null
      : headerAuth({
          service: RunStoreService,
          authenticate: check.authenticate,
          // The chain without bearer auth: the call is refused already.
          interceptors: interceptorsFor(options, shutdown, logger, refusedLog, undefined),
          onRefused: (procedure, reason, peer) => refusedLog({ procedure, reason, peer }),
        });
  // Each call's connection, caller and (from the header check) principal.
  const contextValues = (req: http2.Http2ServerRequest | http.IncomingMessage) =>
    callContext(req, check?.verified ?? null);
  const readMaxBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  // Deep metadata must reach our own check (INVALID_ARGUMENT naming the
  // field) rather than fail decoding at protobuf-es's default of 100
  // nested messages, about 50 JSON levels. Still bounded, for the stack.
  const binaryOptions = { recursionLimit: 1000 };
  const shutdownSignal = shutdown.signal;
  const grpcUnary = grpcUnaryHandler({
    service: RunStoreService,
    impl: service,
    interceptors,
    readMaxBytes,
    binaryOptions,
    shutdownSignal,
    contextValues,
  });
  const table = routes(service, health);
  const connect = connectNodeAdapter({
    shutdownSignal,
    routes: (router) => {
      table(router);
      for (const extra of options.extraRoutes ?? []) extra(router);
    },
    readMaxBytes,
    binaryOptions,
    // Connect JSON: an unknown status name must be INVALID_ARGUMENT, not
    // quietly read as the default (pending / reject), so unknown names and
    // fields are refused.
    jsonOptions: { ignoreUnknownFields: false, recursionLimit: 1000 },
    interceptors,
    contextValues,
  });
  return (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    shutdown.admit(req, res);
    const serve = () => {
      if (!grpcUnary(req, res)) connectOrRefuse(connect, req, res);
    };
    if (refused === null) serve();
    else refused(req, res, serve);
  };
}

/**
 * Hands a request to connect-node, which first makes a URL of its
 * :authority and path: an :authority that is no host ("a:1,b:2", as grpcio
 * sends for a multi-address target) throws there, outside any handler, and
 * would end the process. Such a request is answered 400 instead.
 */
function connectOrRefuse(
  connect: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
): void {
  try {
    connect(req, res);
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ERR_INVALID_URL") throw error;
    if (!res.headersSent) res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
    res.end("the request's :authority (Host) is not a host[:port]\n");
  }
}

/**
 * The caller's interceptors first (metrics see the codes callers see), then
 * request logging, scrubbing of unexpected errors, refusal while shutting
 * down, and bearer auth for RunStoreService with `credentials` (the header
 * check's) when given.
 */
function interceptorsFor(
  options: ServerOptions,
  shutdown: GracefulShutdown,
  logger: Logger,
  refusedLog: RefusedLog,
  credentials: Credentials | undefined,
): Interceptor[] {
  const interceptors: Interceptor[] = [
    ...(options.interceptors ?? []),
    requestLog(logger),
    internalErrors(
      options.onInternalError ??
        ((error, procedure) => logger.error({ err: error, procedure }, "internal error")),
    ),
    shutdown.interceptor,
  ];
  if (credentials !== undefined) {
    interceptors.push(
      bearerAuth(credentials, [RunStoreService.typeName], (procedure, reason) =>
        refusedLog({ procedure, reason }),
      ),
    );
  }
  return interceptors;
}
