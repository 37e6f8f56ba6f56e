import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { RemoteRunStore, type RunStore, RunStoreService } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// src/grpc-unary.ts answers plain unary gRPC calls without connect-node's
// pipeline. The contract, auth, metrics and raw-protocol suites already run
// through it; these cases pin what it must share with Connect: the call
// signal (deadline, cancel, shutdown), the interceptors, and the hand-over
// of every other call shape (compressed, JSON) to Connect.

const servers: RunningServer[] = [];
const clients: { close(): void }[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(servers.splice(0).map((s) => s.close(200)));
});

async function serve(store: RunStore, options: Partial<ServerOptions> = {}) {
  const server = await startServer({ ...options, store, port: 0 });
  servers.push(server);
  return server;
}

/**
 * A MemoryRunStore whose get waits until the call's signal aborts (the
 * way MysqlRunStore follows it) and reports the reason it saw.
 */
function signalWatchingStore() {
  const seen: { reason?: ConnectError; entered: Promise<void> } = {} as never;
  let entered!: () => void;
  seen.entered = new Promise((resolve) => {
    entered = resolve;
  });
  const store = Object.assign(new MemoryRunStore(), {
    // The view for one call: a get that waits for that call's signal.
    withCallSignal: (signal: AbortSignal) =>
      Object.assign(Object.create(store) as MemoryRunStore, { get: () => waitFor(signal) }),
  });
  const waitFor = async (signal: AbortSignal) => {
    entered();
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    seen.reason = ConnectError.from(signal.reason);
    throw signal.reason;
  };
  return { store, seen };
}

function grpcJsGet(url: string, options: grpc.ChannelOptions = {}) {
  const client = new grpc.Client(url.replace("http://", ""), grpc.credentials.createInsecure(), {
    ...options,
  });
  clients.push(client);
  return (runId: string, deadline?: Date) =>
    new Promise<pb.GetResponse>((resolve, reject) =>
      client.makeUnaryRequest(
        `/${RunStoreService.typeName}/Get`,
        (req: pb.GetRequest) => Buffer.from(toBinary(pb.GetRequestSchema, req)),
        (bytes: Buffer) => fromBinary(pb.GetResponseSchema, bytes),
        create(pb.GetRequestSchema, { runId }),
        new grpc.Metadata(),
        deadline ? { deadline } : {},
        (error, response) => (error ? reject(error) : resolve(response as pb.GetResponse)),
      ),
    );
}

describe("the call signal on the lean gRPC path", () => {
  it("a deadline aborts the handler's signal with DEADLINE_EXCEEDED and answers at once", async () => {
    const { store, seen } = signalWatchingStore();
    const server = await serve(store);
    // A raw request carrying grpc-timeout: unlike grpc-js, which cancels the
    // stream itself at the same instant (then the handler may see CANCELED
    // first), this client never ends the call, so the answer is the server's.
    const session = http2.connect(server.url);
    clients.push(session);
    const message = toBinary(pb.GetRequestSchema, create(pb.GetRequestSchema, { runId: "r1" }));
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": `/${RunStoreService.typeName}/Get`,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "100m",
    });
    const status = new Promise<string | undefined>((resolve) => {
      let headerStatus: string | undefined;
      stream.on("response", (headers) => {
        headerStatus = headers["grpc-status"] as string | undefined;
      });
      stream.on("trailers", (trailers) => resolve(trailers["grpc-status"] as string | undefined));
      stream.on("close", () => resolve(headerStatus));
    });
    stream.resume();
    stream.end(frame);
    expect(await status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    await expect.poll(() => seen.reason?.code).toBe(Code.DeadlineExceeded);
  });

  it("a client cancel aborts the handler's signal with CANCELED", async () => {
    const { store, seen } = signalWatchingStore();
    const server = await serve(store);
    const remote = new RemoteRunStore({ baseUrl: server.url, retry: false });
    clients.push(remote);
    const controller = new AbortController();
    const call = remote.get("r1", {}, { signal: controller.signal });
    await seen.entered;
    controller.abort();
    expect((await failureOf(call)).code).toBe(Code.Canceled);
    await expect.poll(() => seen.reason?.code).toBe(Code.Canceled);
  });

  it("a call still running when the grace period ends is UNAVAILABLE, its signal aborted", async () => {
    const { store, seen } = signalWatchingStore();
    const server = await startServer({ store, port: 0 });
    const remote = new RemoteRunStore({ baseUrl: server.url, retry: false });
    clients.push(remote);
    const call = failureOf(remote.get("r1"));
    await seen.entered;
    await server.close(100);
    const error = await call;
    expect([error.code, error.rawMessage]).toEqual([Code.Unavailable, "server is shutting down"]);
    expect(seen.reason?.code).toBe(Code.Unavailable);
  });
});

describe("interceptors and the hand-over to Connect", () => {
  it("interceptors see every unary gRPC call (method, headers, URL) and can add response metadata", async () => {
    const seen: string[] = [];
    const recorder: Interceptor = (next) => async (req) => {
      seen.push(`${req.method.name} ${req.header.get("x-probe")} ${req.stream} ${req.url}`);
      const res = await next(req);
      res.header.set("x-hdr", "h1");
      res.trailer.set("x-trl", "t1");
      return res;
    };
    const server = await serve(new MemoryRunStore(), { interceptors: [recorder] });
    const client = new grpc.Client(
      server.url.replace("http://", ""),
      grpc.credentials.createInsecure(),
    );
    clients.push(client);
    const metadata = new grpc.Metadata();
    metadata.set("x-probe", "p1");
    const received: { header?: grpc.Metadata; trailer?: grpc.Metadata } = {};
    await new Promise((resolve, reject) => {
      const call = client.makeUnaryRequest(
        `/${RunStoreService.typeName}/Put`,
        (req: pb.PutRequest) => Buffer.from(toBinary(pb.PutRequestSchema, req)),
        (bytes: Buffer) => bytes,
        create(pb.PutRequestSchema, { runId: "r1", threadId: "t1" }),
        metadata,
        (error, response) => (error ? reject(error) : resolve(response)),
      );
      call.on("metadata", (m) => {
        received.header = m;
      });
      call.on("status", (status) => {
        received.trailer = status.metadata;
      });
    });
    expect(seen).toEqual([`Put p1 false ${server.url}/${RunStoreService.typeName}/Put`]);
    expect(received.header?.get("x-hdr")).toEqual(["h1"]);
    await expect.poll(() => received.trailer?.get("x-trl")).toEqual(["t1"]);
  });

  it("gzip-compressed gRPC requests are served (by Connect)", async () => {
    const server = await serve(new MemoryRunStore());
    const remote = new RemoteRunStore({ baseUrl: server.url, retry: false });
    clients.push(remote);
    await remote.put("r1", { threadId: "t1", metadata: { big: "x".repeat(4096) } });
    const get = grpcJsGet(server.url, {
      "grpc.default_compression_algorithm": 2, // gzip
      "grpc.default_compression_level": 2,
    });
    const response = await get("r1");
    expect(response.run?.threadId).toBe("t1");
    expect(response.run?.metadata).toEqual({ big: "x".repeat(4096) });
  });

  it("gRPC with the JSON codec (application/grpc+json) is served (by Connect)", async () => {
    const server = await serve(new MemoryRunStore());
    const url = new URL(`/${RunStoreService.typeName}/Get`, server.url);
    const { connect } = await import("node:http2");
    const session = connect(server.url);
    clients.push({ close: () => session.close() });
    const body = Buffer.from(JSON.stringify({ runId: "missing" }));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    const answer = await new Promise<{ type: unknown; status: unknown; body: string }>(
      (resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": url.pathname,
          "content-type": "application/grpc+json",
          te: "trailers",
        });
        let type: unknown;
        const chunks: Buffer[] = [];
        stream.on("response", (headers) => {
          type = headers["content-type"];
        });
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("trailers", (trailers) =>
          resolve({
            type,
            status: trailers["grpc-status"],
            body: Buffer.concat(chunks).subarray(5).toString(),
          }),
        );
        stream.on("error", reject);
        stream.end(Buffer.concat([head, body]));
      },
    );
    expect(answer).toEqual({ type: "application/grpc+json", status: "0", body: "{}" });
  });
});
