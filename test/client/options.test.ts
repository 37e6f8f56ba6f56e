import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  DEFAULT_RETRY_POLICY,
  RemoteRunStore,
  type RemoteRunStoreOptions,
  retryPolicy,
} from "@runstore/client";
import { backoffMs } from "@runstore/client/internal";
import { describe, expect, it, vi } from "vitest";
import { startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { deferred } from "../support/deferred.js";
import { failureOf } from "../support/failure.js";

// Placeholder PEM text: only construction is checked here (no TLS server yet),
// and Node parses certificates when it connects, not before.
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = Buffer.from("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");

describe("retryPolicy", () => {
  it("defaults to 4 attempts, 50 ms doubling up to 2000 ms", () => {
    expect(retryPolicy(undefined)).toEqual({
      maxAttempts: 4,
      initialBackoffMs: 50,
      maxBackoffMs: 2000,
    });
    expect(DEFAULT_RETRY_POLICY).toEqual(retryPolicy({}));
  });

  it("false is one attempt", () => {
    expect(retryPolicy(false).maxAttempts).toBe(1);
  });

  it("keeps what is given and fills the rest", () => {
    expect(retryPolicy({ maxAttempts: 7, maxBackoffMs: 100 })).toEqual({
      maxAttempts: 7,
      initialBackoffMs: 50,
      maxBackoffMs: 100,
    });
  });

  it.each([
    [{ maxAttempts: 0 }, "retry.maxAttempts must be a finite number >= 1, got 0"],
    [{ maxAttempts: 2.5 }, "retry.maxAttempts must be an integer, got 2.5"],
    [
      { maxAttempts: Number.POSITIVE_INFINITY },
      "retry.maxAttempts must be a finite number >= 1, got Infinity",
    ],
    [{ initialBackoffMs: -1 }, "retry.initialBackoffMs must be a finite number >= 0, got -1"],
    [{ maxBackoffMs: Number.NaN }, "retry.maxBackoffMs must be a finite number >= 0, got NaN"],
  ])("refuses %o", (options, message) => {
    expect(() => retryPolicy(options)).toThrow(new TypeError(message));
    expect(() => new RemoteRunStore({ baseUrl: "http://127.0.0.1:1", retry: options })).toThrow(
      new TypeError(message),
    );
  });
});

describe("backoffMs", () => {
  const half = () => 0.5;
  it("full jitter below a bound that doubles from initialBackoffMs up to maxBackoffMs", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffMs(n, DEFAULT_RETRY_POLICY, half))).toEqual([
      25, 50, 100, 200, 400, 800, 1000, 1000,
    ]);
    expect(backoffMs(3, DEFAULT_RETRY_POLICY, () => 0)).toBe(0);
    expect(backoffMs(100, DEFAULT_RETRY_POLICY, () => 0.999)).toBeCloseTo(1998, 6);
  });
});

describe("transport options", () => {
  const tls = {
    ca: PEM,
    cert: PEM,
    key: KEY,
    servername: "runstore.internal",
    rejectUnauthorized: true,
  };

  it.each([
    ["grpc over HTTP/2", { protocol: "grpc" }],
    ["connect over HTTP/2", { protocol: "connect" }],
    ["connect over HTTP/1.1", { protocol: "connect", httpVersion: "1.1" }],
    ["grpc-web over HTTP/1.1", { protocol: "grpc-web", httpVersion: "1.1" }],
  ] as [string, Partial<RemoteRunStoreOptions>][])(
    "builds %s with mTLS for https://",
    (_, options) => {
      const store = new RemoteRunStore({ ...options, baseUrl: "https://127.0.0.1:1", tls });
      expect(store.client).toBeDefined();
      store.close();
    },
  );

  it("accepts a CA alone (server-only TLS)", () => {
    new RemoteRunStore({ baseUrl: "https://127.0.0.1:1", tls: { ca: PEM } }).close();
  });

  it("refuses TLS settings for a plaintext URL", () => {
    expect(() => new RemoteRunStore({ baseUrl: "http://127.0.0.1:1", tls: { ca: PEM } })).toThrow(
      new TypeError("tls options need an https:// baseUrl, got http://127.0.0.1:1"),
    );
  });

  it("refuses a client certificate without its key, and the reverse", () => {
    const message = new TypeError("tls.cert and tls.key go together (mTLS needs both)");
    expect(() => new RemoteRunStore({ baseUrl: "https://h:1", tls: { cert: PEM } })).toThrow(
      message,
    );
    expect(() => new RemoteRunStore({ baseUrl: "https://h:1", tls: { key: KEY } })).toThrow(
      message,
    );
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])("refuses keepAliveIntervalMs %d", (value) => {
    expect(() => new RemoteRunStore({ baseUrl: "http://h:1", keepAliveIntervalMs: value })).toThrow(
      TypeError,
    );
  });

  it("keepalive PINGs verify an idle connection before reuse, and 0 turns them off", async () => {
    const server = await startServer({ store: new MemoryRunStore(), port: 0 });
    const stores = [50, 0].map(
      (keepAliveIntervalMs) => new RemoteRunStore({ baseUrl: server.url, keepAliveIntervalMs }),
    );
    try {
      for (const store of stores) {
        await store.put("run-1", { threadId: "t" });
        // Idle for longer than the interval: the next call is preceded by a
        // PING. This wait is the condition under test (an idle connection),
        // not synchronisation: nothing else is awaited here.
        await new Promise((resolve) => setTimeout(resolve, 120));
        expect((await store.get("run-1"))?.threadId).toBe("t");
      }
    } finally {
      for (const store of stores) store.close();
      await server.close();
    }
  });
});

describe("close()", () => {
  /** A store whose get waits until released, so a call can be in flight for as long as needed. */
  class SlowStore extends MemoryRunStore {
    gets = 0;
    release: () => void = () => {};
    override async get(...args: Parameters<MemoryRunStore["get"]>) {
      this.gets++;
      await new Promise<void>((resolve) => {
        this.release = resolve;
      });
      return super.get(...args);
    }
  }

  it.each([
    ["grpc", { protocol: "grpc" }],
    ["connect", { protocol: "connect" }],
  ] as [string, Partial<RemoteRunStoreOptions>][])(
    "%s: ends a call in flight and every later call with CANCELED",
    async (_, options) => {
      const backend = new SlowStore();
      const server = await startServer({ store: backend, port: 0 });
      const store = new RemoteRunStore({ ...options, baseUrl: server.url });
      try {
        const pending = failureOf(store.get("run-1"));
        await vi.waitFor(() => expect(backend.gets).toBe(1));
        store.close();
        const inFlight = await pending;
        expect([inFlight.code, inFlight.rawMessage]).toEqual([
          Code.Canceled,
          "RemoteRunStore is closed",
        ]);
        const later = await failureOf(store.get("run-1"));
        expect([later.code, later.rawMessage]).toEqual([Code.Canceled, "RemoteRunStore is closed"]);
        expect(backend.gets).toBe(1);
      } finally {
        backend.release();
        await server.close();
      }
    },
  );

  it("over HTTP/1.1 (no session manager): later calls fail without a request", async () => {
    let attempts = 0;
    const count: Interceptor = (next) => (req) => {
      attempts++;
      return next(req);
    };
    const store = new RemoteRunStore({
      baseUrl: "http://127.0.0.1:1",
      protocol: "connect",
      httpVersion: "1.1",
      interceptors: [count],
    });
    store.close();
    const error = await failureOf(store.listPending());
    expect([error.code, error.rawMessage]).toEqual([Code.Canceled, "RemoteRunStore is closed"]);
    expect(attempts).toBe(0);
  });

  it("ends a call sleeping before its next retry", async () => {
    // A 60 s backoff bound and a fixed jitter of one half: the sleep is 30 s,
    // beyond the test's timeout, so only close() can end the call. The jitter
    // is drawn just before the sleep starts: close() follows it.
    const sleeping = deferred();
    const random = vi.spyOn(Math, "random").mockImplementation(() => {
      sleeping.resolve();
      return 0.5;
    });
    class DownStore extends MemoryRunStore {
      gets = 0;
      override async get(): Promise<null> {
        this.gets++;
        throw new ConnectError("database unavailable", Code.Unavailable);
      }
    }
    const backend = new DownStore();
    const server = await startServer({ store: backend, port: 0 });
    const store = new RemoteRunStore({
      baseUrl: server.url,
      retry: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 },
    });
    try {
      const pending = failureOf(store.get("run-1"));
      await sleeping.promise;
      store.close();
      const error = await pending;
      expect([error.code, error.rawMessage]).toEqual([Code.Canceled, "RemoteRunStore is closed"]);
      expect(backend.gets).toBe(1);
    } finally {
      random.mockRestore();
      await server.close();
    }
  });
});
