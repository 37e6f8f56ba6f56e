import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RemoteRunStore, type RunStore } from "@runstore/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import * as pbHealth from "../../src/gen/grpc/health/v1/health_pb.js";
import { createMetrics } from "../../src/metrics.js";
import { startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { makeTestCerts } from "../support/certs.js";
import { logLines, spawnServer } from "../support/child-server.js";
import { deferred } from "../support/deferred.js";
import { createTestDatabase, MYSQL_SERVER_ADDRESS } from "../support/mysql.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { until } from "../support/until.js";

// The HTTP probes on the metrics port: /healthz (the process answers) and
// /readyz (the store answers and the server is not draining), with the
// runstore_build_info and runstore_health_serving gauges beside them. A real
// server and a real metrics listener, both on port 0, as start.ts wires them.

const { SERVING } = pbHealth.HealthCheckResponse_ServingStatus;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A server over `store` and its metrics port, wired as start.ts does. */
async function serving(store: RunStore, healthCheckIntervalMs?: number) {
  const metrics = createMetrics({ store });
  const server = await startServer({
    store,
    healthCheckIntervalMs,
    interceptors: [metrics.interceptor],
  });
  cleanup.push(() => server.close(0));
  const port = await metrics.serve({ port: 0, host: "127.0.0.1", health: server.health });
  cleanup.push(() => port.close());
  return { server, metricsUrl: port.url };
}

/** Status, content type and body of one GET (or `method`). */
async function probe(url: string, method = "GET") {
  const response = await fetch(url, { method });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: await response.text(),
  };
}

/** The scrape's lines for the two gauges this feature adds. */
async function gauges(metricsUrl: string): Promise<string[]> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => /^runstore_(build_info|health_serving)[ {]/.test(line))
    .sort();
}

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
const BUILD_INFO = `runstore_build_info{version="${VERSION}",node="${process.version}"} 1`;

describe("HTTP probes on a healthy memory store", () => {
  it("/healthz and /readyz answer 200 in plain text; the gauges say serving", async () => {
    const { metricsUrl } = await serving(new MemoryRunStore());
    expect(await probe(`${metricsUrl}/healthz`)).toEqual({
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "ok\n",
    });
    expect(await probe(`${metricsUrl}/readyz`)).toEqual({
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "ready\n",
    });
    // A query string (as some probes add) does not change the path.
    expect((await probe(`${metricsUrl}/readyz?verbose=1`)).status).toBe(200);
    expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 1"]);
  });

  it("answers 404 for unknown paths and for methods other than GET", async () => {
    const { metricsUrl } = await serving(new MemoryRunStore());
    const notFound = { status: 404, type: "text/plain; charset=utf-8", body: "not found\n" };
    for (const path of ["/", "/health", "/healthz/", "/readyz/x", "/livez", "/HEALTHZ"]) {
      expect({ path, ...(await probe(`${metricsUrl}${path}`)) }).toEqual({ path, ...notFound });
    }
    expect(await probe(`${metricsUrl}/readyz`, "POST")).toEqual(notFound);
    expect(await probe(`${metricsUrl}/healthz`, "DELETE")).toEqual(notFound);
  });
});

describe("HTTP probes while draining", () => {
  it("/readyz turns 503 as soon as close() begins, while a call still runs; /healthz stays 200", async () => {
    const store = new MemoryRunStore();
    const entered = deferred();
    const release = deferred();
    const get = store.get.bind(store);
    store.get = async (runId) => {
      entered.resolve();
      await release.promise;
      return get(runId);
    };
    const { server, metricsUrl } = await serving(store);
    const client = new RemoteRunStore({ baseUrl: server.url });
    cleanup.push(() => client.close());
    expect((await probe(`${metricsUrl}/readyz`)).status).toBe(200);

    const inFlight = client.get("r1");
    await entered.promise;
    // No await between close() beginning and the probe: draining is synchronous.
    const closing = server.close(600_000);
    expect(await probe(`${metricsUrl}/readyz`)).toEqual({
      status: 503,
      type: "text/plain; charset=utf-8",
      body: "draining\n",
    });
    expect(await probe(`${metricsUrl}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });
    expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 0"]);

    release.resolve();
    expect(await inFlight).toBeNull();
    await closing;
    // Still draining for good once closed: readiness never comes back.
    expect((await probe(`${metricsUrl}/readyz`)).body).toBe("draining\n");
  });
});

describe("HTTP probes of a server process", () => {
  it("answer over plain HTTP on the metrics port while the gRPC port requires mutual TLS and a token", async () => {
    // Kubernetes' gRPC probe speaks no TLS; its httpGet probe reaches these.
    const certs = makeTestCerts();
    cleanup.push(() => certs.remove());
    const server = await spawnServer({
      METRICS_PORT: "0",
      AUTH_TOKENS: "probe-test-token-0123456789",
      TLS_CERT_FILE: join(certs.dir, "server.crt"),
      TLS_KEY_FILE: join(certs.dir, "server.key"),
      TLS_CLIENT_CA_FILE: join(certs.dir, "ca.crt"),
    });
    try {
      expect(server.url).toMatch(/^https:/);
      const metricsUrl = String(
        logLines(server.stderr()).find((l) => l.msg === "serving Prometheus metrics")?.url,
      ).replace(/\/metrics$/, "");
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await probe(`${metricsUrl}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });
      expect(await probe(`${metricsUrl}/readyz`)).toMatchObject({ status: 200, body: "ready\n" });
      expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 1"]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

const db = await createTestDatabase("probes");

describe("HTTP probes on MySQL", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  const database = db;
  afterAll(() => database.drop());

  it("/readyz is 503 while the store's ping fails (proxy cut), 200 again once it answers", async () => {
    const proxy = new TcpProxy(MYSQL_SERVER_ADDRESS.host, MYSQL_SERVER_ADDRESS.port);
    await proxy.start();
    cleanup.push(() => proxy.close());
    const url = new URL(database.url);
    url.port = String(proxy.port);
    const store = MysqlRunStore.open({
      url: url.toString(),
      poolSize: 2,
      connectTimeoutMs: 500,
      queryTimeoutMs: 500,
    });
    cleanup.push(() => store.close());
    const { server, metricsUrl } = await serving(store, 50);
    expect(await probe(`${metricsUrl}/readyz`)).toMatchObject({ status: 200, body: "ready\n" });
    expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 1"]);

    proxy.cut();
    await until(() => server.health.current() !== SERVING, "health to see the cut");
    expect(await probe(`${metricsUrl}/readyz`)).toEqual({
      status: 503,
      type: "text/plain; charset=utf-8",
      body: "store unavailable\n",
    });
    expect(await probe(`${metricsUrl}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });
    expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 0"]);

    proxy.forward();
    await until(() => server.health.current() === SERVING, "health to see the store again");
    expect(await probe(`${metricsUrl}/readyz`)).toMatchObject({ status: 200, body: "ready\n" });
    expect(await gauges(metricsUrl)).toEqual([BUILD_INFO, "runstore_health_serving 1"]);
  });
});
