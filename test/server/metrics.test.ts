import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  type UInt32ValueSchema,
} from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  type Interceptor,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { RemoteRunStore, type RunStore } from "@runstore/client";
import type { Pool, PoolConnection } from "mysql2";
import { afterEach, describe, expect, it } from "vitest";
import { HealthMonitor } from "../../src/health.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { routes } from "../../src/routes.js";
import { RunStoreServiceImpl } from "../../src/service.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore, type SqlPool } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { MYSQL_SERVER_URL, optedOut } from "../support/mysql.js";

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Last opened, first closed: clients before the servers they talk to.
  for (const close of closers.splice(0).reverse()) await close();
});

/** The server's route table over `store`. */
function serving(store: RunStore): (router: ConnectRouter) => void {
  return routes(new RunStoreServiceImpl(store), new HealthMonitor(async () => {}, 60_000));
}

/** A real HTTP/2 server on port 0 with the metrics interceptor in front of `routes`. */
async function listen(metrics: Metrics, serve: (router: ConnectRouter) => void): Promise<string> {
  const interceptors: Interceptor[] = [metrics.interceptor];
  const server = http2.createServer(connectNodeAdapter({ routes: serve, interceptors }));
  // http2 server.close() waits for idle sessions forever: track and close them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const session of sessions) session.close();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Starts the metrics port; returns a scrape of it as lines. */
async function serveMetrics(
  metrics: Metrics,
): Promise<{ url: string; scrape(): Promise<string[]> }> {
  const server = await metrics.serve({ port: 0, host: "127.0.0.1" });
  closers.push(() => server.close());
  return {
    url: server.url,
    async scrape() {
      const response = await fetch(`${server.url}/metrics`);
      expect(response.status).toBe(200);
      return (await response.text()).split("\n");
    },
  };
}

function withPrefix(lines: string[], prefix: string): string[] {
  return lines.filter((line) => line.startsWith(prefix)).sort();
}

const RUN_STORE = 'grpc_service="runstore.v1.RunStoreService"';
const UNARY = 'grpc_type="unary"';

describe("RPC metrics", () => {
  it("counts started and handled calls by method and canonical code, and times them", async () => {
    const metrics = createMetrics();
    const baseUrl = await listen(metrics, serving(new MemoryRunStore()));
    const { scrape } = await serveMetrics(metrics);
    const store = new RemoteRunStore({ baseUrl });
    closers.push(() => store.close());

    await store.put("r1", { threadId: "t1" });
    await store.put("r2", { threadId: "t1" });
    await store.put("r1", { threadId: "t2" });
    expect((await store.get("r1"))?.threadId).toBe("t2");
    expect(await store.get("missing")).toBeNull();
    expect((await failureOf(store.get(""))).code).toBe(Code.InvalidArgument);

    const lines = await scrape();
    expect(withPrefix(lines, "grpc_server_started_total{")).toEqual([
      `grpc_server_started_total{${UNARY},${RUN_STORE},grpc_method="Get"} 3`,
      `grpc_server_started_total{${UNARY},${RUN_STORE},grpc_method="Put"} 3`,
    ]);
    expect(withPrefix(lines, "grpc_server_handled_total{")).toEqual([
      `grpc_server_handled_total{${UNARY},${RUN_STORE},grpc_method="Get",grpc_code="INVALID_ARGUMENT"} 1`,
      `grpc_server_handled_total{${UNARY},${RUN_STORE},grpc_method="Get",grpc_code="OK"} 2`,
      `grpc_server_handled_total{${UNARY},${RUN_STORE},grpc_method="Put",grpc_code="OK"} 3`,
    ]);
    expect(withPrefix(lines, "grpc_server_handling_seconds_count{")).toEqual([
      `grpc_server_handling_seconds_count{${UNARY},${RUN_STORE},grpc_method="Get"} 3`,
      `grpc_server_handling_seconds_count{${UNARY},${RUN_STORE},grpc_method="Put"} 3`,
    ]);
    const putBuckets = withPrefix(lines, "grpc_server_handling_seconds_bucket{").filter((line) =>
      line.includes('grpc_method="Put"'),
    );
    expect(putBuckets.map((line) => /le="([^"]+)"/.exec(line)?.[1]).sort()).toEqual(
      [
        "0.0005",
        "0.001",
        "0.0025",
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1",
        "2.5",
        "5",
        "10",
        "+Inf",
      ].sort(),
    );
    expect(putBuckets.find((line) => line.includes('le="+Inf"'))).toMatch(/ 3$/);
  });

  it("counts an unexpected error as INTERNAL, the code Connect answers it with", async () => {
    const failing = new MemoryRunStore();
    failing.get = async () => {
      throw new Error("connection lost");
    };
    const metrics = createMetrics();
    const baseUrl = await listen(metrics, serving(failing));
    const { scrape } = await serveMetrics(metrics);
    const store = new RemoteRunStore({ baseUrl });
    closers.push(() => store.close());

    expect((await failureOf(store.get("r1"))).code).toBe(Code.Internal);
    expect(withPrefix(await scrape(), "grpc_server_handled_total{")).toEqual([
      `grpc_server_handled_total{${UNARY},${RUN_STORE},grpc_method="Get",grpc_code="INTERNAL"} 1`,
    ]);
  });

  it("counts a streaming call when its response stream ends, with the code it ended with", async () => {
    const metrics = createMetrics();
    const baseUrl = await listen(metrics, (router) =>
      router.service(CountService, {
        async *count(req) {
          for (let value = 0; value < Math.min(req.value, 3); value++) yield { value };
          if (req.value > 3) throw new ConnectError("at most 3", Code.OutOfRange);
        },
      }),
    );
    const { scrape } = await serveMetrics(metrics);
    const sessionManager = new Http2SessionManager(baseUrl);
    closers.push(() => sessionManager.abort());
    const client = createClient(CountService, createGrpcTransport({ baseUrl, sessionManager }));

    const received: number[] = [];
    for await (const message of client.count({ value: 3 })) received.push(message.value);
    expect(received).toEqual([0, 1, 2]);
    const error = await failureOf(
      (async () => {
        for await (const _ of client.count({ value: 4 }));
      })(),
    );
    expect(error.code).toBe(Code.OutOfRange);

    const lines = await scrape();
    const labels =
      'grpc_type="server_stream",grpc_service="metricstest.v1.CountService",grpc_method="Count"';
    expect(withPrefix(lines, "grpc_server_started_total{")).toEqual([
      `grpc_server_started_total{${labels}} 2`,
    ]);
    expect(withPrefix(lines, "grpc_server_handled_total{")).toEqual([
      `grpc_server_handled_total{${labels},grpc_code="OK"} 1`,
      `grpc_server_handled_total{${labels},grpc_code="OUT_OF_RANGE"} 1`,
    ]);
    expect(withPrefix(lines, "grpc_server_handling_seconds_count{")).toEqual([
      `grpc_server_handling_seconds_count{${labels}} 2`,
    ]);
  });
});

describe("metrics endpoint", () => {
  it("answers GET /metrics in the Prometheus text format with process metrics, and 404 elsewhere", async () => {
    const metrics = createMetrics();
    const { url } = await serveMetrics(metrics);

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lines = (await response.text()).split("\n");
    expect(lines).toContain("# TYPE process_cpu_seconds_total counter");
    expect(lines.some((line) => /^process_cpu_seconds_total \d/.test(line))).toBe(true);
    expect(lines).toContain("# TYPE grpc_server_handled_total counter");
    expect(lines).toContain("# TYPE grpc_server_handling_seconds histogram");

    const elsewhere = await fetch(`${url}/`);
    expect(elsewhere.status).toBe(404);
    await elsewhere.body?.cancel();
    const posted = await fetch(`${url}/metrics`, { method: "POST" });
    expect(posted.status).toBe(404);
    await posted.body?.cancel();
  });

  it("without a health monitor: build info, the health gauge unknown (NaN, not a false 0), no probes", async () => {
    const metrics = createMetrics();
    const { url, scrape } = await serveMetrics(metrics);
    expect(withPrefix(await scrape(), "runstore_")).toEqual([
      `runstore_build_info{version="${packageVersion()}",node="${process.version}"} 1`,
      "runstore_health_serving Nan",
      "runstore_watch_streams 0",
    ]);
    for (const path of ["/healthz", "/readyz"]) {
      const response = await fetch(`${url}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      await response.body?.cancel();
    }
  });

  it("keeps each Metrics' counters to its own registry", async () => {
    const one = createMetrics();
    const other = createMetrics();
    const baseUrl = await listen(one, serving(new MemoryRunStore()));
    const store = new RemoteRunStore({ baseUrl });
    closers.push(() => store.close());
    await store.put("r1", { threadId: "t1" });
    expect(await one.registry.getSingleMetricAsString("grpc_server_started_total")).toContain(
      'grpc_method="Put"} 1',
    );
    expect(await other.registry.getSingleMetricAsString("grpc_server_started_total")).not.toContain(
      'grpc_method="Put"',
    );
  });
});

describe("MySQL pool gauges", () => {
  it("reads connections, queued requests and the limit of a real pool at scrape time", async (ctx) => {
    const pool = createMysqlPool({ url: MYSQL_SERVER_URL, poolSize: 3 });
    closers.push(() => new Promise<void>((resolve) => pool.end(() => resolve())));
    const metrics = createMetrics({ store: new MysqlRunStore(pool.promise()) });
    const { scrape } = await serveMetrics(metrics);

    expect(withPrefix(await scrape(), "runstore_db_pool")).toEqual([
      'runstore_db_pool_connections{state="all"} 0',
      'runstore_db_pool_connections{state="free"} 0',
      "runstore_db_pool_queued_requests 0",
      "runstore_db_pool_size 3",
    ]);

    try {
      await query(pool, "SELECT 1");
    } catch (error) {
      const why = `no MySQL server at ${MYSQL_SERVER_URL}: ${(error as Error).message}`;
      if (!optedOut("mysql")) throw new Error(`${why}; opt out with RUNSTORE_SKIP=mysql`);
      ctx.skip();
    }
    expect(withPrefix(await scrape(), "runstore_db_pool")).toEqual([
      'runstore_db_pool_connections{state="all"} 1',
      'runstore_db_pool_connections{state="free"} 1',
      "runstore_db_pool_queued_requests 0",
      "runstore_db_pool_size 3",
    ]);

    // Hold every connection, so a fourth request has to wait in the queue.
    const held = await Promise.all([connection(pool), connection(pool), connection(pool)]);
    const waiting = connection(pool);
    expect(withPrefix(await scrape(), "runstore_db_pool")).toEqual([
      'runstore_db_pool_connections{state="all"} 3',
      'runstore_db_pool_connections{state="free"} 0',
      "runstore_db_pool_queued_requests 1",
      "runstore_db_pool_size 3",
    ]);
    held[0]?.release();
    const fourth = await waiting;
    for (const c of [fourth, held[1], held[2]]) c?.release();
    expect(withPrefix(await scrape(), "runstore_db_pool")).toEqual([
      'runstore_db_pool_connections{state="all"} 3',
      'runstore_db_pool_connections{state="free"} 3',
      "runstore_db_pool_queued_requests 0",
      "runstore_db_pool_size 3",
    ]);
  });

  it("reports NaN rather than a false 0 when the pool's private fields are missing", async () => {
    // A pool with mysql2's public config but none of its private queues.
    const pool: SqlPool = {
      getConnection: () => Promise.reject(new Error("not used")),
      end: async () => {},
      pool: { config: { connectionLimit: 3 } },
    };
    const metrics = createMetrics({ store: new MysqlRunStore(pool) });
    const { scrape } = await serveMetrics(metrics);
    // prom-client spells NaN "Nan"; Prometheus parses floats case-insensitively.
    expect(withPrefix(await scrape(), "runstore_db_pool")).toEqual([
      'runstore_db_pool_connections{state="all"} Nan',
      'runstore_db_pool_connections{state="free"} Nan',
      "runstore_db_pool_queued_requests Nan",
      "runstore_db_pool_size 3",
    ]);
  });
});

function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

function query(pool: Pool, sql: string): Promise<void> {
  return new Promise((resolve, reject) =>
    pool.query(sql, (error) => (error ? reject(error) : resolve())),
  );
}

function connection(pool: Pool): Promise<PoolConnection> {
  return new Promise((resolve, reject) =>
    pool.getConnection((error, conn) => (error ? reject(error) : resolve(conn))),
  );
}

// A server-streaming service built at runtime, since RunStoreService is all
// unary: the streaming path of the interceptor needs a real stream to end.
const countFile = create(FileDescriptorProtoSchema, {
  name: "metricstest/v1/count.proto",
  package: "metricstest.v1",
  dependency: ["google/protobuf/wrappers.proto"],
  syntax: "proto3",
  service: [
    {
      name: "CountService",
      method: [
        {
          name: "Count",
          inputType: ".google.protobuf.UInt32Value",
          outputType: ".google.protobuf.UInt32Value",
          serverStreaming: true,
        },
      ],
    },
  ],
});

const CountService = createFileRegistry(countFile, (name) =>
  name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined,
).getService("metricstest.v1.CountService") as GenService<{
  count: {
    methodKind: "server_streaming";
    input: typeof UInt32ValueSchema;
    output: typeof UInt32ValueSchema;
  };
}>;
