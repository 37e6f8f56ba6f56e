import { Code } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { deferred } from "../support/deferred.js";
import { failureOf } from "../support/failure.js";

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
  beforeAll(async () => {
    server = await startServer({
      store: new MemoryRunStore(),
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
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

  it("refuses a client without a certificate, and one signed by another CA", async () => {
    const anonymous = client(server.url, "grpc", { ca: certs.ca });
    const e1 = await failureOf(anonymous.get("m1"));
    // The server's TLS alert 116, "certificate required", ends the handshake.
    expect(e1.code).toBe(Code.Internal);
    expect(e1.rawMessage).toContain("alert certificate required");
    const stranger = client(server.url, "grpc", {
      ca: certs.ca,
      cert: certs.strangerCert,
      key: certs.strangerKey,
    });
    const e2 = await failureOf(stranger.get("m1"));
    // TLS 1.3 finishes the client's side first; the server then drops the session.
    expect(e2.code).toBe(Code.Canceled);
    const h1 = client(server.url, "connect", { ca: certs.ca }, "1.1");
    const e3 = await failureOf(h1.get("m1"));
    expect(e3.code).toBe(Code.Internal);
    expect(e3.rawMessage).toContain("alert certificate required");
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
