import * as http2 from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { until } from "../support/until.js";

// MAX_CONCURRENT_STREAMS against a client that ignores it. Node's own client
// never opens more streams than the server allows, so this client writes
// HTTP/2 frames by hand on a socket (RFC 9113 §4, §6; HPACK literals without
// indexing, RFC 7541 §6.2.2) and reads the server's frames back. Each answer
// below was read from the server first (Node 20, nghttp2) and is asserted
// exactly:
// - streams opened past the limit before the client acknowledged the
//   server's SETTINGS are refused one by one (RST_STREAM REFUSED_STREAM)
//   and the streams within the limit are answered;
// - a client that acknowledged the limit and still opens one more stream
//   commits a connection error: nghttp2 treats it as a protocol error, Node
//   ends the whole session (RST_STREAM INTERNAL_ERROR on its streams, GOAWAY
//   INTERNAL_ERROR) and closes the socket. Only that client's connection
//   goes; another client is served.

const LIMIT = 4;
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;
const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
/** An empty gRPC message: HealthCheckRequest for the whole server. */
const EMPTY_MESSAGE = Buffer.alloc(5);
/** The answer's one message: HealthCheckResponse { status: SERVING }. */
const SERVING = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]);

let server: RunningServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = await startServer({
    store: new MemoryRunStore(),
    limits: { maxConcurrentStreams: LIMIT },
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await server.close(0);
});

function frame(type: number, flags: number, stream: number, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** One header as an HPACK literal without indexing, new name (names and values < 127 bytes). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x00, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** The header block of a gRPC health Check; its body follows in a DATA frame. */
const CHECK_HEADERS = Buffer.concat([
  literal(":method", "POST"),
  literal(":scheme", "http"),
  literal(":path", "/grpc.health.v1.Health/Check"),
  literal(":authority", "localhost"),
  literal("content-type", "application/grpc"),
  literal("te", "trailers"),
]);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A hand-written HTTP/2 client: what it has received, and whether the server closed it. */
interface RawClient {
  socket: Socket;
  frames: Frame[];
  closed: boolean;
}

/**
 * Connects, sends the preface and an empty SETTINGS frame, and reads
 * frames. With `ack`, the server's SETTINGS (and so its stream limit) is
 * acknowledged as it arrives, as a conforming client does.
 */
async function rawClient(ack: boolean): Promise<RawClient> {
  const socket = netConnect(server.port, "127.0.0.1");
  sockets.push(socket);
  const client: RawClient = { socket, frames: [], closed: false };
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const f: Frame = {
        type: pending[3] as number,
        flags: pending[4] as number,
        stream: pending.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(pending.subarray(9, 9 + length)),
      };
      pending = pending.subarray(9 + length);
      client.frames.push(f);
      if (ack && f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) {
        socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    client.closed = true;
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  await until(
    () => client.frames.some((f) => f.type === FRAME.SETTINGS && f.flags === 0),
    "the server's SETTINGS",
  );
  return client;
}

/** The server's SETTINGS_MAX_CONCURRENT_STREAMS, from its first SETTINGS frame. */
function advertisedLimit(client: RawClient): number | undefined {
  const settings = client.frames.find((f) => f.type === FRAME.SETTINGS && f.flags === 0);
  for (let at = 0; settings !== undefined && at + 6 <= settings.payload.length; at += 6) {
    if (settings.payload.readUInt16BE(at) === SETTINGS_MAX_CONCURRENT_STREAMS) {
      return settings.payload.readUInt32BE(at + 2);
    }
  }
  return undefined;
}

/** Opens `count` Check streams (ids 1, 3, 5, …), headers only: their bodies are not sent yet. */
function openStreams(client: RawClient, count: number): number[] {
  const ids = Array.from({ length: count }, (_, i) => 1 + 2 * i);
  client.socket.write(
    Buffer.concat(ids.map((id) => frame(FRAME.HEADERS, FLAG.END_HEADERS, id, CHECK_HEADERS))),
  );
  return ids;
}

/** The RST_STREAM frames received: stream id → error code. */
function resets(client: RawClient): Map<number, number> {
  return new Map(
    client.frames
      .filter((f) => f.type === FRAME.RST_STREAM)
      .map((f) => [f.stream, f.payload.readUInt32BE(0)]),
  );
}

/** Stream ids the server sent HEADERS on, and the DATA it sent on each. */
function answered(client: RawClient): { headers: Set<number>; data: Map<number, Buffer> } {
  const headers = new Set(
    client.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream),
  );
  const data = new Map<number, Buffer>();
  for (const f of client.frames.filter((f) => f.type === FRAME.DATA)) {
    data.set(f.stream, Buffer.concat([data.get(f.stream) ?? Buffer.alloc(0), f.payload]));
  }
  return { headers, data };
}

/** Stream ids whose answer ended: a HEADERS frame (the trailers) with END_STREAM. */
function ended(client: RawClient): number[] {
  return client.frames
    .filter((f) => f.type === FRAME.HEADERS && (f.flags & FLAG.END_STREAM) !== 0)
    .map((f) => f.stream)
    .sort((a, b) => a - b);
}

/** A conforming client's health Check on a connection of its own. */
async function wellBehavedCheck(): Promise<string> {
  const session = http2.connect(server.url);
  session.on("error", () => {});
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.end(EMPTY_MESSAGE);
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => stream.once("close", resolve));
    return Buffer.concat(chunks).toString("hex");
  } finally {
    session.destroy();
  }
}

describe("a client that ignores MAX_CONCURRENT_STREAMS", () => {
  it("before acknowledging the limit: each stream past it is REFUSED_STREAM, the first LIMIT are answered", async () => {
    const client = await rawClient(false);
    expect(advertisedLimit(client)).toBe(LIMIT);
    const ids = openStreams(client, LIMIT + 2);
    const admitted = ids.slice(0, LIMIT);
    const extra = ids.slice(LIMIT);
    await until(() => resets(client).size === extra.length, "the extra streams' RST_STREAM");
    expect(resets(client)).toEqual(
      new Map(extra.map((id) => [id, http2.constants.NGHTTP2_REFUSED_STREAM])),
    );

    // The admitted streams' bodies: each is answered SERVING, on the same connection.
    client.socket.write(
      Buffer.concat(admitted.map((id) => frame(FRAME.DATA, FLAG.END_STREAM, id, EMPTY_MESSAGE))),
    );
    await until(() => ended(client).length === LIMIT, "the admitted streams' trailers");
    expect(ended(client)).toEqual(admitted);
    const { headers, data } = answered(client);
    expect([...headers].sort((a, b) => a - b)).toEqual(admitted);
    expect(admitted.map((id) => data.get(id)?.toString("hex"))).toEqual(
      Array(LIMIT).fill(SERVING.toString("hex")),
    );
    expect(resets(client).size).toBe(extra.length);
    expect(client.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
    expect(client.closed).toBe(false);
  });

  it("after acknowledging it: one stream more ends that connection (GOAWAY INTERNAL_ERROR), others are served", async () => {
    const client = await rawClient(true);
    await until(
      () => client.frames.some((f) => f.type === FRAME.SETTINGS && f.flags === FLAG.ACK),
      "the server's ACK of our SETTINGS",
    );
    // Our ACK went out as the server's SETTINGS arrived, before these HEADERS.
    openStreams(client, LIMIT + 1);
    await until(() => client.closed, "the server to close the connection");
    const goaway = client.frames.find((f) => f.type === FRAME.GOAWAY);
    expect({
      lastStreamId: (goaway?.payload.readUInt32BE(0) ?? 0) & 0x7fffffff,
      errorCode: goaway?.payload.readUInt32BE(4),
    }).toEqual({
      // The last stream it took; the one past the limit was never opened.
      lastStreamId: 1 + 2 * (LIMIT - 1),
      errorCode: http2.constants.NGHTTP2_INTERNAL_ERROR,
    });
    // Nothing was answered; every stream reset on the way is INTERNAL_ERROR.
    expect(answered(client).headers.size).toBe(0);
    expect(new Set(resets(client).values())).toEqual(
      new Set([http2.constants.NGHTTP2_INTERNAL_ERROR]),
    );
    expect(await wellBehavedCheck()).toBe(SERVING.toString("hex"));
  });
});
