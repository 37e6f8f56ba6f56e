import { Writable } from "node:stream";
import { Code, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { RemoteRunStore } from "@runstore/client";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { deferred } from "../support/deferred.js";
import { failureOf } from "../support/failure.js";
import { until } from "../support/until.js";

// TLS and mutual TLS with certificates made for this run by openssl; real
// handshakes over HTTP/2 and HTTP/1.1.

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => certs.remove());

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

/** A RemoteRunStore over the given protocol and HTTP version with the given TLS client options. */
function client(
  url: string,
  protocol: "grpc" | "connect" | "grpc-web",
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer },
  httpVersion: "2" | "1.1" = "2",
) {
  if (httpVersion === "1.1") {
    const options = { baseUrl: url, httpVersion: "1.1" as const, nodeOptions: tls };
    const transport =
      protocol === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
    return new RemoteRunStore({ transport });
  }
  const sessionManager = new Http2SessionManager(url, undefined, tls);
  cleanup.push(() => sessionManager.abort());
  const options = { baseUrl: url, httpVersion: "2" as const, sessionManager };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport(options)
      : protocol === "connect"
        ? createConnectTransport(options)
        : createGrpcWebTransport(options);
  return new RemoteRunStore({ transport });
}

describe("TLS", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      store: new MemoryRunStore(),
      tls: { cert: certs.serverCert, key: certs.serverKey },
    });
    cleanup.push(() => server.close(0));
  });

  it("serves https:// to gRPC, Connect and gRPC-Web over HTTP/2", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
      const store = client(server.url, protocol, { ca: certs.ca });
      await store.put(`r-${protocol}`, { threadId: "t1" });
      expect((await store.get(`r-${protocol}`))?.runId).toBe(`r-${protocol}`);
    }
  });

  it("serves Connect and gRPC-Web clients over HTTP/1.1 (browsers, curl)", async () => {
    for (const protocol of ["connect", "grpc-web"] as const) {
      const store = client(server.url, protocol, { ca: certs.ca }, "1.1");
      await store.put(`h1-${protocol}`, { threadId: "t1" });
      expect((await store.get(`h1-${protocol}`))?.runId).toBe(`h1-${protocol}`);
    }
  });

  it("a client that does not trust the server's CA cannot connect", async () => {
    const store = client(server.url, "grpc", {});
    const error = await failureOf(store.get("r1"));
    // connect-node reports a failed certificate check as INTERNAL, with Node's reason.
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("unable to verify the first certificate");
  });
});

describe("shutdown over HTTP/1.1", () => {
  it("a call in flight on an HTTP/1.1 connection finishes before the socket closes", async () => {
    const slow = new MemoryRunStore();
    const get = slow.get.bind(slow);
    // The get is held in the store until shutdown has begun.
    const entered = deferred();
    const released = deferred();
    slow.get = async (runId, options) => {
      entered.resolve();
      await released.promise;
      return get(runId, options);
    };
    await slow.put("h1-slow", { threadId: "t1" });
    const server = await startServer({
      store: slow,
      tls: { cert: certs.serverCert, key: certs.serverKey },
    });
    const store = client(server.url, "connect", { ca: certs.ca }, "1.1");
    const call = store.get("h1-slow");
    await entered.promise;
    const shuttingDown = server.health.stoppedOrAborted(new AbortController().signal);
    const closing = server.close(5000);
    await shuttingDown;
    released.resolve();
    expect((await call)?.runId).toBe("h1-slow");
    await closing;
  });
});

describe("mutual TLS", () => {
  let server: RunningServer;
  /** The server's log lines, parsed. */
  const logged: { level: number; msg: string; peer?: string; reason?: string }[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logged.push(JSON.parse(String(chunk)));
        done();
      },
    });
    server = await startServer({
      store: new MemoryRunStore(),
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
      logger: pino({ level: "debug" }, sink),
    });
    cleanup.push(() => server.close(0));
  });

  it("RemoteRunStore's own tls option presents the client certificate", async () => {
    const store = new RemoteRunStore({
      baseUrl: server.url,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    cleanup.push(() => store.close());
    await store.put("m0", { threadId: "t0" });
    expect((await store.get("m0"))?.threadId).toBe("t0");
    const h1 = new RemoteRunStore({
      baseUrl: server.url,
      protocol: "connect",
      httpVersion: "1.1",
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    cleanup.push(() => h1.close());
    expect((await h1.get("m0"))?.runId).toBe("m0");
  });

  it("accepts a client certificate signed by the client CA", async () => {
    const store = client(server.url, "grpc", {
      ca: certs.ca,
      cert: certs.clientCert,
      key: certs.clientKey,
    });
    await store.put("m1", { threadId: "t1" });
    expect((await store.get("m1"))?.threadId).toBe("t1");
  });

  /** The server's warn lines about refused client certificates so far. */
  const refusals = () => logged.filter((l) => l.msg === "TLS client certificate refused");

  /**
   * One get through RemoteRunStore (default retries: 4 attempts) with the
   * given client certificate; its error, the attempts its interceptor saw,
   * and the server's one refusal line for it.
   */
  async function refusedGet(
    protocol: "grpc" | "connect" | "grpc-web",
    httpVersion: "2" | "1.1",
    certificate: { cert: Buffer; key: Buffer } | undefined,
  ) {
    let attempts = 0;
    const counting: Interceptor = (next) => (req) => {
      attempts++;
      return next(req);
    };
    const store = new RemoteRunStore({
      baseUrl: server.url,
      protocol,
      httpVersion,
      tls: { ca: certs.ca, ...certificate },
      interceptors: [counting],
    });
    cleanup.push(() => store.close());
    const before = refusals().length;
    const error = await failureOf(store.get("m1"));
    await until(() => refusals().length > before, "the server's refusal line");
    const lines = refusals().slice(before);
    return { error, attempts, lines };
  }

  const NO_CERTIFICATE =
    "the server requires a client certificate (mutual TLS) and none was sent (TLS alert 116, certificate required): give tls.cert and tls.key";
  const UNTRUSTED =
    "the server requires a client certificate (mutual TLS) and refused this one: the server closed the connection right after the TLS handshake without a word, as it does with a certificate it does not trust (another CA, expired, revoked)";

  const transports = [
    ["grpc", "2"],
    ["connect", "2"],
    ["grpc-web", "2"],
    ["connect", "1.1"],
    ["grpc-web", "1.1"],
  ] as const;

  for (const [protocol, httpVersion] of transports) {
    it(`no client certificate: UNAUTHENTICATED once, one warn line (${protocol}, HTTP/${httpVersion})`, async () => {
      const { error, attempts, lines } = await refusedGet(protocol, httpVersion, undefined);
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(NO_CERTIFICATE);
      expect(attempts).toBe(1);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 40, reason: "no client certificate" });
      expect(lines[0]?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    });
  }

  for (const [protocol, httpVersion] of transports) {
    it(`a certificate from an untrusted CA: one attempt, one warn line (${protocol}, HTTP/${httpVersion})`, async () => {
      const stranger = { cert: certs.strangerCert, key: certs.strangerKey };
      const { error, attempts, lines } = await refusedGet(protocol, httpVersion, stranger);
      // Over HTTP/1.1 Node reports only "socket hang up" (ABORTED); the
      // store's agent saw the connection end after the handshake with no
      // answer byte and no session ticket, and tells it apart.
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe(UNTRUSTED);
      expect(attempts).toBe(1);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 40,
        reason: "client certificate not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)",
      });
      expect(lines[0]?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    });
  }

  it("a client that does not trust the server is not a certificate refusal (debug, not warn)", async () => {
    const before = refusals().length;
    const debugBefore = logged.filter((l) => l.msg === "TLS handshake failed").length;
    const store = client(server.url, "grpc", { cert: certs.clientCert, key: certs.clientKey });
    const error = await failureOf(store.get("m1"));
    expect(error.code).toBe(Code.Internal);
    await until(
      () => logged.filter((l) => l.msg === "TLS handshake failed").length > debugBefore,
      "the debug line",
    );
    expect(refusals()).toHaveLength(before);
  });

  it("keeps serving trusted clients after refusing others", async () => {
    const store = client(
      server.url,
      "connect",
      {
        ca: certs.ca,
        cert: certs.clientCert,
        key: certs.clientKey,
      },
      "1.1",
    );
    expect((await store.get("m1"))?.runId).toBe("m1");
  });
});
