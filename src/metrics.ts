import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import * as pbHealth from "./gen/grpc/health/v1/health_pb.js";
import type { HealthMonitor } from "./health.js";
import type { Overload } from "./overload.js";
import { type ReportsPoolStats, reportsPoolStats } from "./pool-stats.js";
import { answerProbe } from "./probes.js";
import { serverVersion } from "./version.js";
import type { WatchObserver } from "./watch/watch-observer.js";

/** What the server exposes to Prometheus, and the hooks that feed it. */
export interface Metrics {
  /** A registry of its own, so two servers in one process (tests) never share counters. */
  registry: Registry;
  /**
   * Counts and times every call under the go-grpc-prometheus names, so the
   * dashboards and alerts written for gRPC servers work unchanged. Put it
   * first in `interceptors` (outermost) so it records the codes callers see.
   */
  interceptor: Interceptor;
  /**
   * Serves `GET /metrics` on a port of its own, so scraping never competes
   * with (or needs the auth of) the gRPC port. Given the server's `health`,
   * it also serves the HTTP probes `GET /healthz` and `GET /readyz` (plain
   * HTTP even when the gRPC port requires TLS, which Kubernetes' gRPC probe
   * cannot speak) and reports `runstore_health_serving`. Anything else is a 404.
   */
  serve(options: MetricsServeOptions): Promise<MetricsServer>;
  /** Hand to startServer as `watchObserver`: WatchRuns streams, messages, aborts and change log reads. */
  watch: WatchObserver;
}

/** Where the metrics port listens, and the health it reports. */
export interface MetricsServeOptions {
  port: number;
  host: string;
  /** The server's health; without it there are no probes and the health gauge is NaN (unknown). */
  health?: HealthMonitor;
}

/** A listening metrics endpoint. */
export interface MetricsServer {
  /** e.g. `http://127.0.0.1:9464`, without the `/metrics` path. */
  url: string;
  /** Stops listening and drops idle keep-alive connections. */
  close(): Promise<void>;
  /**
   * The server's health, for a port bound before the server (start-up binds
   * it first, so a taken port fails before anything says SERVING): from now
   * on the probes are served and the health gauge reports it.
   */
  attachHealth(health: HealthMonitor): void;
}

type RpcLabel = "grpc_type" | "grpc_service" | "grpc_method";

const GRPC_TYPES = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
} as const;

// The canonical gRPC status names, as go-grpc-prometheus labels grpc_code.
const CODE_NAMES: Record<Code, string> = {
  [Code.Canceled]: "CANCELED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

// 0.5 ms (a memory-store hit) up to 10 s (a query stuck behind a full pool).
const HANDLING_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * A fresh set of metrics on its own registry, with Node's process metrics
 * (CPU, memory, event loop lag, GC) included, since a RunStore server is
 * usually the only thing in its process. A store that reports poolStats()
 * (MysqlRunStore) adds pool gauges, read at scrape time: pool exhaustion is
 * the first thing to look at when database calls slow down.
 */
export function createMetrics(options: { store?: object; overload?: Overload } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rpcLabels: RpcLabel[] = ["grpc_type", "grpc_service", "grpc_method"];
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: rpcLabels,
    registers: [registry],
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...rpcLabels, "grpc_code"],
    registers: [registry],
  });
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: rpcLabels,
    buckets: HANDLING_BUCKETS,
    registers: [registry],
  });
  const store = options.store;
  if (store !== undefined && reportsPoolStats(store)) addPoolGauges(registry, store);
  if (options.overload !== undefined) addOverloadMetrics(registry, options.overload);
  addBuildInfo(registry);
  let health: HealthMonitor | undefined;
  addHealthGauge(registry, () => health);
  return {
    registry,
    interceptor: rpcInterceptor(started, handled, handling),
    watch: watchMetrics(registry),
    async serve(options) {
      health = options.health ?? health;
      const served = await serveMetrics(registry, () => health, options);
      return {
        ...served,
        attachHealth(monitor) {
          health = monitor;
        },
      };
    },
  };
}

function rpcInterceptor(
  started: Counter<RpcLabel>,
  handled: Counter<RpcLabel | "grpc_code">,
  handling: Histogram<RpcLabel>,
): Interceptor {
  // Calls Connect refuses before any interceptor runs (unknown method, bad
  // content type, a request over readMaxBytes) are not counted: they never
  // reach a handler, as in go-grpc-prometheus.
  return (next) => async (req) => {
    const labels = {
      grpc_type: GRPC_TYPES[req.method.methodKind],
      grpc_service: req.service.typeName,
      grpc_method: req.method.name,
    };
    started.inc(labels);
    const stopTimer = handling.startTimer(labels);
    const finish = (code: string) => {
      stopTimer();
      handled.inc({ ...labels, grpc_code: code });
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      finish(codeName(error));
      throw error;
    }
    if (!res.stream) {
      finish("OK");
      return res;
    }
    // Every non-unary method answers with a message stream: the call is
    // handled when that stream ends, not when the handler returns it.
    return { ...res, message: finishing(res.message, finish) };
  };
}

/**
 * Passes the messages through and reports how the stream ended. A consumer
 * that stops early (the client went away) counts as CANCELED; a stream that
 * Connect never starts to read is not counted at all.
 */
async function* finishing<T>(
  messages: AsyncIterable<T>,
  finish: (code: string) => void,
): AsyncGenerator<T> {
  let code = CODE_NAMES[Code.Canceled];
  try {
    yield* messages;
    code = "OK";
  } catch (error) {
    code = codeName(error);
    throw error;
  } finally {
    finish(code);
  }
}

// Connect v2 handlers answer anything that is not a ConnectError as INTERNAL
// (protocol-*/handler-factory.js), so that is what the caller saw.
function codeName(error: unknown): string {
  return error instanceof ConnectError ? CODE_NAMES[error.code] : CODE_NAMES[Code.Internal];
}

function addPoolGauges(registry: Registry, store: ReportsPoolStats): void {
  new Gauge({
    name: "runstore_db_pool_connections",
    help: "MySQL pool connections: all open ones, and the free (idle) ones among them.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const stats = store.poolStats();
      this.set({ state: "all" }, stats.open);
      this.set({ state: "free" }, stats.free);
    },
  });
  new Gauge({
    name: "runstore_db_pool_queued_requests",
    help: "Requests waiting for a MySQL pool connection.",
    registers: [registry],
    collect() {
      this.set(store.poolStats().queued);
    },
  });
  new Gauge({
    name: "runstore_db_pool_size",
    help: "The MySQL pool's connection limit (0: no limit).",
    registers: [registry],
    collect() {
      this.set(store.poolStats().size);
    },
  });
}

/** The runstore_watch_* metrics of WatchRuns (src/watch/). */
function watchMetrics(registry: Registry): WatchObserver {
  const streams = new Gauge({
    name: "runstore_watch_streams",
    help: "WatchRuns streams open.",
    registers: [registry],
  });
  const messages = new Counter({
    name: "runstore_watch_messages_total",
    help: "WatchRuns messages sent, by type: change or heartbeat.",
    labelNames: ["type"],
    registers: [registry],
  });
  const aborted = new Counter({
    name: "runstore_watch_aborted_total",
    help: "WatchRuns streams the server ended, by reason: behind (fell behind WATCH_WINDOW: ABORTED) or shutdown (UNAVAILABLE).",
    labelNames: ["reason"],
    registers: [registry],
  });
  const reads = new Counter({
    name: "runstore_watch_feed_reads_total",
    help: "Reads of the store's change log, by the hub's tail (only while anyone watches) or by a stream catching up from an old cursor.",
    labelNames: ["by"],
    registers: [registry],
  });
  return {
    streams: (delta) => streams.inc(delta),
    message: (type) => messages.inc({ type }),
    aborted: (reason) => aborted.inc({ reason }),
    feedRead: (by) => reads.inc({ by }),
  };
}

/** The server's bounds of store calls (overload.ts), read at scrape time. */
function addOverloadMetrics(registry: Registry, overload: Overload): void {
  new Gauge({
    name: "runstore_calls_inflight",
    help: "Store calls running now (MAX_INFLIGHT_CALLS bounds them).",
    registers: [registry],
    collect() {
      this.set(overload.inflight);
    },
  });
  new Gauge({
    name: "runstore_calls_queued",
    help: "Store calls waiting for a place now, in the callers' shares included (MAX_QUEUED_CALLS bounds them).",
    registers: [registry],
    collect() {
      this.set(overload.queued);
    },
  });
  new Gauge({
    name: "runstore_requests_inflight",
    help: "RunStoreService requests between arrival and answer now, WatchRuns excepted (MAX_INFLIGHT_REQUESTS bounds them).",
    registers: [registry],
    collect() {
      this.set(overload.requests.inflight);
    },
  });
  new Gauge({
    name: "runstore_event_loop_lag_seconds",
    help: "The event loop's delay as OVERLOAD_LAG_MS measures it (0 while off).",
    registers: [registry],
    collect() {
      this.set(overload.requests.lag.lagMs() / 1000);
    },
  });
  new Counter({
    name: "runstore_calls_refused_total",
    help: "Calls refused with UNAVAILABLE before they ran, by the setting that refused them.",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, count] of overload.refused()) this.inc({ reason }, count);
    },
  });
}

/** The usual `_build_info` gauge: always 1, the facts in its labels, for joins in queries. */
function addBuildInfo(registry: Registry): void {
  new Gauge({
    name: "runstore_build_info",
    help: "The RunStore server's version and the Node.js version it runs on; always 1.",
    labelNames: ["version", "node"],
    registers: [registry],
  }).set({ version: serverVersion(), node: process.version }, 1);
}

function addHealthGauge(registry: Registry, health: () => HealthMonitor | undefined): void {
  const { SERVING } = pbHealth.HealthCheckResponse_ServingStatus;
  new Gauge({
    name: "runstore_health_serving",
    help: "1 while health is SERVING (the store answers its probe, not shutting down), else 0.",
    registers: [registry],
    collect() {
      const monitor = health();
      this.set(monitor === undefined ? Number.NaN : monitor.current() === SERVING ? 1 : 0);
    },
  });
}

async function serveMetrics(
  registry: Registry,
  health: () => HealthMonitor | undefined,
  options: MetricsServeOptions,
): Promise<Omit<MetricsServer, "attachHealth">> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://metrics").pathname;
    const monitor = health();
    if (monitor !== undefined && answerProbe(req, res, path, monitor)) return;
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (error: unknown) => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`collecting metrics failed: ${String(error)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${urlHost}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // A scraper's keep-alive connection would otherwise hold close() open.
        server.closeIdleConnections();
      }),
  };
}
