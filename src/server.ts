import { setMaxListeners } from "node:events";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { keepByteOrderMarks, type RunStore, RunStoreService } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import * as pbHealth from "./gen/grpc/health/v1/health_pb.js";
import { grpcUnaryHandler } from "./grpc-unary.js";
import { HealthMonitor, healthRoutes } from "./health.js";
import { bearerAuth } from "./interceptors/bearer-auth.js";
import { internalErrors } from "./interceptors/internal-errors.js";
import { requestLog } from "./interceptors/request-log.js";
import { type Logger, silentLogger } from "./logger.js";
import { reflectionRoutes } from "./reflection.js";
import { RunStoreServiceImpl } from "./service.js";

/** The default request size limit; larger requests get RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** PEM material for TLS; a client CA turns on mutual TLS. */
export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** When set, clients must present a certificate signed by this CA. */
  clientCa?: string | Buffer | null;
}

/** What a server is built from. Only `store` is required. */
export interface ServerOptions {
  store: RunStore;
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4 MiB. */
  maxRequestBytes?: number;
  /** Bearer tokens RunStoreService requires; none or empty: no authentication. */
  tokens?: readonly string[];
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
}

/** A listening server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:50051`, or https:// with TLS */
  url: string;
  port: number;
  health: HealthMonitor;
  /**
   * Graceful stop: health goes NOT_SERVING, new calls are refused with
   * UNAVAILABLE, every HTTP/2 session gets GOAWAY, in-flight calls finish
   * (up to the grace period), then every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** Resolves once `condition` holds, or at `deadline` (epoch ms). */
async function until(condition: () => boolean, deadline: number): Promise<void> {
  while (!condition() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A store that can say whether its backend answers (MysqlRunStore). */
interface Pingable {
  ping(): Promise<void>;
}

function hasPing(store: RunStore): store is RunStore & Pingable {
  return typeof (store as Partial<Pingable>).ping === "function";
}

/**
 * Builds and starts a server; for main.ts, tests and embedding. The caller
 * owns the store and closes it after the server.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  keepByteOrderMarks(); // a run id that starts with U+FEFF must reach the store unchanged
  const logger = options.logger ?? silentLogger();
  const store = options.store;
  const health = new HealthMonitor(
    options.healthProbe ?? (hasPing(store) ? () => store.ping() : async () => {}),
    options.healthCheckIntervalMs ?? 5000,
    logger,
  );
  await health.start();

  let draining = false;
  const guarded = RunStoreService.typeName;
  // Refuses new RunStoreService calls once close() has begun.
  const drain: Interceptor = (next) => async (req) => {
    if (draining && req.service.typeName === guarded) {
      throw new ConnectError("server is shutting down", Code.Unavailable);
    }
    return next(req);
  };

  const interceptors: Interceptor[] = [
    ...(options.interceptors ?? []),
    requestLog(logger),
    internalErrors(
      options.onInternalError ??
        ((error, procedure) => logger.error({ err: error, procedure }, "internal error")),
    ),
    drain,
  ];
  if (options.tokens !== undefined && options.tokens.length > 0) {
    interceptors.push(
      bearerAuth(options.tokens, [guarded], (procedure, reason) =>
        logger.warn({ procedure, reason }, "unauthenticated call refused"),
      ),
    );
  }

  // Aborted when the grace period ends: every handler's signal follows it,
  // so calls still running are cut off (and their SQL killed) rather than
  // holding the process open.
  const shutdown = new AbortController();
  // One listener per call in flight, on both the lean and the Connect path.
  setMaxListeners(0, shutdown.signal);
  const impl = new RunStoreServiceImpl(store);
  const readMaxBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  // Deep metadata must reach our own check (INVALID_ARGUMENT naming the
  // field) rather than fail decoding at protobuf-es's default of 100
  // nested messages, about 50 JSON levels. Still bounded, for the stack.
  const binaryOptions = { recursionLimit: 1000 };
  // Unary gRPC calls to RunStoreService take the lean path; the rest Connect.
  const grpcUnary = grpcUnaryHandler({
    service: RunStoreService,
    impl,
    interceptors,
    readMaxBytes,
    binaryOptions,
    shutdownSignal: shutdown.signal,
  });
  const connectHandler = connectNodeAdapter({
    shutdownSignal: shutdown.signal,
    routes: (router) => {
      router.service(RunStoreService, impl);
      healthRoutes(health)(router);
      // What grpcurl, buf curl, grpcui and Postman discover.
      reflectionRoutes([pb.file_runstore_v1_run_store, pbHealth.file_grpc_health_v1_health])(
        router,
      );
      for (const extra of options.extraRoutes ?? []) extra(router);
    },
    readMaxBytes,
    binaryOptions,
    // Connect JSON: an unknown status name must be INVALID_ARGUMENT, not
    // quietly read as the default (pending / reject), so unknown names and
    // fields are refused.
    jsonOptions: { ignoreUnknownFields: false, recursionLimit: 1000 },
    interceptors,
  });

  // RunStoreService requests counted at the HTTP layer, until their
  // response is written (or the connection is gone): close() waits for
  // these, on HTTP/2 and HTTP/1.1 alike.
  let active = 0;
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (req.url?.startsWith(`/${guarded}/`)) {
      active++;
      res.once("close", () => active--);
    }
    // HTTP/1.1 has no GOAWAY: ask the client to open a new connection.
    if (draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    if (!grpcUnary(req, res)) connectHandler(req, res);
  };

  const tls = options.tls ?? null;
  const server: http2.Http2Server | http2.Http2SecureServer =
    tls === null
      ? http2.createServer(handler)
      : http2.createSecureServer(
          {
            cert: tls.cert,
            key: tls.key,
            allowHTTP1: true,
            ...(tls.clientCa
              ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }
              : {}),
          },
          handler,
        );

  // Node 20's http2 server.close() waits for open sessions forever, and
  // HTTP/1.1 keep-alive sockets too: track both to close them.
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  if (tls !== null) {
    server.on("tlsClientError", (error: Error) =>
      logger.debug({ err: error.message }, "TLS handshake refused"),
    );
  }

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;

  return {
    url: `${tls === null ? "http" : "https"}://${urlHost}:${port}`,
    port,
    health,
    close(graceMs = options.shutdownGraceMs ?? 10_000) {
      closing ??= (async () => {
        draining = true;
        health.shutdown();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const deadline = Date.now() + graceMs;
        // GOAWAY: clients start no new streams here; open ones go on.
        for (const session of sessions) session.close();
        await until(() => active === 0, deadline);
        if (active > 0) logger.warn({ inFlight: active }, "grace period over: cutting off calls");
        // Cut off what is left (calls past the grace period, reflection
        // streams): their handlers' signals abort, so SQL is killed too.
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
        await until(
          () => active === 0 && sessions.size === 0,
          Math.max(deadline, Date.now() + 1000),
        );
        // Idle HTTP/1.1 keep-alive sockets, and anything still hanging on.
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        await closed;
      })();
      return closing;
    },
  };
}
