import { type AddressInfo, connect, createServer as createNetServer, type Socket } from "node:net";
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
    // Only Date is faked: the connection's idle time is moved on at once,
    // while timers, sockets and the server run for real.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      for (const keepAliveIntervalMs of [50, 0]) {
        const wire = await watchClientFrames(server.port);
        const store = new RemoteRunStore({ baseUrl: wire.url, keepAliveIntervalMs });
        try {
          await store.put("run-1", { threadId: "t" });
          const before = wire.frames.length;
          // Idle for longer than the interval, as the session manager
          // measures it (Date.now() since the connection was last heard).
          vi.setSystemTime(Date.now() + 120);
          expect((await store.get("run-1"))?.threadId).toBe("t");
          // The frames the get sent, up to its request: a PING first when
          // keepalive is on, none at all on this connection when it is off.
          const sent = wire.frames.slice(before);
          if (keepAliveIntervalMs > 0) {
            expect(sent.slice(0, sent.indexOf("HEADERS"))).toContain("PING");
          } else {
            expect(sent).toContain("HEADERS");
            expect(wire.frames).not.toContain("PING");
          }
        } finally {
          store.close();
          await wire.close();
        }
      }
    } finally {
      vi.useRealTimers();
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

/** HTTP/2 frame types by number (RFC 9113 §6), as watchClientFrames names them. */
const FRAME_TYPES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE"];

/**
 * A TCP hop in front of a plaintext HTTP/2 server that reads the client's
 * frames as they pass, before forwarding them: `frames` lists them in order
 * ("PING" for a PING the client starts, "PING ACK" for its answer to one),
 * so every frame sent ahead of a request is listed before the server sees it.
 */
async function watchClientFrames(port: number) {
  const frames: string[] = [];
  const sockets = new Set<Socket>();
  const hop = createNetServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    // The client's connection preface (RFC 9113 §3.4) comes before its first frame.
    let unread = Buffer.alloc(0);
    let skip = 24;
    client.on("data", (chunk: Buffer) => {
      unread = Buffer.concat([unread, chunk]);
      const preface = Math.min(skip, unread.length);
      unread = unread.subarray(preface);
      skip -= preface;
      while (unread.length >= 9 && unread.length >= 9 + unread.readUIntBE(0, 3)) {
        const [type = 0, flags = 0] = [unread[3], unread[4]];
        frames.push(
          type === 6 ? (flags & 1 ? "PING ACK" : "PING") : (FRAME_TYPES[type] ?? "other"),
        );
        unread = unread.subarray(9 + unread.readUIntBE(0, 3));
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => hop.listen(0, "127.0.0.1", resolve));
  const { port: hopPort } = hop.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${hopPort}`,
    frames,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => hop.close(resolve));
    },
  };
}
