import type { ClientHttp2Stream } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RemoteRunStore, type RunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcUnaryTransport } from "../../client/src/grpc-unary-transport.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// RemoteRunStore's gRPC unary calls go through client/src/grpc-unary-transport.ts
// (Connect's runUnaryCall over one stream of the session manager), not
// connect-node's gRPC transport. Both are driven here with the same calls
// against one server, and must give the same results and the same errors
// (code and message), including errors the server sends with non-ASCII text.

let server: RunningServer;
let own: RemoteRunStore;
let connect: RemoteRunStore;

beforeAll(async () => {
  const backend = new MemoryRunStore();
  // A store error with text that must be percent-encoded on the wire.
  backend.updateModelName = async (runId: string) => {
    throw new ConnectError(`model_name of ${runId}: « ünïcode — ✓ »`, Code.FailedPrecondition);
  };
  server = await startServer({ store: backend, port: 0 });
  own = new RemoteRunStore({ baseUrl: server.url, retry: false });
  connect = new RemoteRunStore({
    transport: createGrpcTransport({ baseUrl: server.url }),
    retry: false,
  });
});

afterAll(async () => {
  own.close();
  await server.close();
});

/** Runs one call and returns its result or its error's code and message. */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await call() };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code], message: e.rawMessage };
  }
}

/** The same sequence of calls, with ids under `prefix`. */
function script(store: RunStore, prefix: string): (() => Promise<unknown>)[] {
  const id = (n: number) => `${prefix}-${n}`;
  return [
    () => store.put(id(1), { threadId: prefix, metadata: { a: [1, "two", null] }, userId: "u" }),
    () => store.get(id(1)).then((r) => ({ ...r, createdAt: "-", updatedAt: "-", runId: "-" })),
    () => store.get(id(404)),
    () => store.get(id(1), { userId: "someone else" }),
    () => store.updateStatus(id(1), "running"),
    () => store.updateStatus(id(404), "running"),
    () => store.updateRunProgress(id(1), { totalTokens: 7, lastAiMessage: "half way" }),
    () => store.updateRunCompletion(id(1), { status: "success", totalTokens: 9 }),
    () => store.listByThread(prefix).then((runs) => runs.length),
    () => store.aggregateTokensByThread(prefix),
    () => store.put("", { threadId: prefix }),
    () => store.put(id(2), { threadId: "" }),
    () => store.updateModelName(id(1), "m"),
    () => store.delete(id(1)),
    () => store.get(id(1)),
  ];
}

describe("RemoteRunStore's gRPC transport answers as connect-node's gRPC transport", () => {
  it("same results and same errors, call for call", async () => {
    const viaOwn: unknown[] = [];
    for (const call of script(own, "same")) viaOwn.push(await outcome(call));
    const viaConnect: unknown[] = [];
    for (const call of script(connect, "same")) viaConnect.push(await outcome(call));
    expect(viaOwn).toEqual(viaConnect);
    // And the answers are the ones expected, so both cannot be wrong alike.
    expect(viaOwn[2]).toEqual({ ok: null });
    expect(viaOwn[4]).toEqual({ ok: true });
    expect(viaOwn[5]).toEqual({ ok: false });
    expect(viaOwn[10]).toMatchObject({ code: "InvalidArgument" });
    expect((viaOwn[10] as { message: string }).message).toMatch(/^run_id/);
    expect(viaOwn[12]).toEqual({
      code: "FailedPrecondition",
      message: "model_name of same-1: « ünïcode — ✓ »",
    });
  });

  it("a request over maxRequestBytes is RESOURCE_EXHAUSTED on both, before it is sent", async () => {
    const limit = 64;
    const a = new RemoteRunStore({ baseUrl: server.url, retry: false, maxRequestBytes: limit });
    const b = new RemoteRunStore({
      transport: createGrpcTransport({ baseUrl: server.url, writeMaxBytes: limit }),
      retry: false,
    });
    try {
      const put = (store: RunStore) => () =>
        store.put("big", { threadId: "big", metadata: { text: "x".repeat(100) } });
      const [x, y] = [await outcome(put(a)), await outcome(put(b))];
      expect(x).toEqual({
        code: "ResourceExhausted",
        message: expect.stringMatching(
          /^message size \d+ is larger than configured writeMaxBytes 64$/,
        ),
      });
      expect(y).toEqual(x);
      expect(await own.get("big")).toBeNull();
    } finally {
      a.close();
    }
  });

  it("a refused connection is UNAVAILABLE on both", async () => {
    const closed = await startServer({ store: new MemoryRunStore(), port: 0 });
    const url = closed.url;
    await closed.close();
    const a = new RemoteRunStore({ baseUrl: url, retry: false });
    const b = new RemoteRunStore({
      transport: createGrpcTransport({ baseUrl: url }),
      retry: false,
    });
    try {
      const [x, y] = [await outcome(() => a.get("r")), await outcome(() => b.get("r"))];
      expect(x).toMatchObject({ code: "Unavailable" });
      expect((y as { code: string }).code).toBe((x as { code: string }).code);
    } finally {
      a.close();
    }
  });

  it("an abort just after the stream is opened ends the call (CANCELED), the body never sent", async () => {
    const controller = new AbortController();
    const sessionManager = new AbortOnOpen(server.url, controller);
    const store = new RemoteRunStore({
      transport: createGrpcUnaryTransport({
        baseUrl: server.url,
        sessionManager,
        writeMaxBytes: 1 << 20,
        interceptors: [],
        streaming: createGrpcTransport({ baseUrl: server.url, sessionManager }),
      }),
      retry: false,
    });
    try {
      const result = await outcome(() =>
        store.put("opened-then-aborted", { threadId: "t" }, { signal: controller.signal }),
      );
      expect(result).toEqual({ code: "Canceled", message: "This operation was aborted" });
      expect(await own.get("opened-then-aborted")).toBeNull();
    } finally {
      sessionManager.abort();
    }
  });

  describe("a server that accepts the connection and never speaks", () => {
    let silent: Server;
    const sockets: Socket[] = [];
    let url = "";
    beforeAll(async () => {
      silent = createServer((socket) => {
        sockets.push(socket);
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = silent.address() as { port: number };
      url = `http://127.0.0.1:${address.port}`;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    // Plaintext: the stream waits for an answer. TLS: the connection itself
    // waits for a handshake that never comes, before any stream exists.
    for (const scheme of ["http", "https"] as const)
      for (const [name, make] of [
        ["RemoteRunStore", (u: string) => new RemoteRunStore({ baseUrl: u, retry: false })],
        [
          "connect-node",
          (u: string) =>
            new RemoteRunStore({ transport: createGrpcTransport({ baseUrl: u }), retry: false }),
        ],
      ] as const) {
        it(`${name} over ${scheme}: the deadline ends the call (DEADLINE_EXCEEDED)`, async () => {
          const store = make(url.replace("http:", `${scheme}:`));
          const result = await outcome(() => store.get("r", {}, { timeoutMs: 200 }));
          expect(result).toEqual({ code: "DeadlineExceeded", message: "the operation timed out" });
          store.close();
        });

        it(`${name} over ${scheme}: an abort ends the call (CANCELED)`, async () => {
          const store = make(url.replace("http:", `${scheme}:`));
          const controller = new AbortController();
          // Aborted once the server holds the connection, so the call is waiting on it.
          silent.once("connection", () => controller.abort());
          const result = await outcome(() => store.get("r", {}, { signal: controller.signal }));
          expect(result).toEqual({ code: "Canceled", message: "This operation was aborted" });
          store.close();
        });
      }
  });
});

/**
 * A session manager that aborts the call right after the transport has taken
 * the opened stream (its signal not yet aborted) and before it resumes to
 * listen for an abort on it: the abort event fires before anyone listens.
 */
class AbortOnOpen extends Http2SessionManager {
  constructor(
    url: string,
    private readonly controller: AbortController,
  ) {
    super(url);
  }

  override request(
    ...args: Parameters<Http2SessionManager["request"]>
  ): Promise<ClientHttp2Stream> {
    const opened = super.request(...args);
    // Reactions run in the order they were added, so this one runs just
    // before the transport's, which takes the stream and queues its resume:
    // the abort queued here runs between the two.
    opened.then(
      () => queueMicrotask(() => this.controller.abort()),
      () => {},
    );
    return opened;
  }
}
