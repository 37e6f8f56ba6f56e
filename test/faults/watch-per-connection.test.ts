import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// Health Watch needs no token and never ends, so besides the server-wide cap
// (MAX_WATCH_STREAMS, 1000) one connection may hold at most
// MAX_WATCH_STREAMS_PER_CONNECTION of them: one connection cannot take every
// place. Raw node:http2 sessions, two connections.

const PER_CONNECTION = 3;
let server: RunningServer;
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(async () => {
  server = await startServer({
    store: new MemoryRunStore(),
    limits: { maxWatchStreamsPerConnection: PER_CONNECTION },
  });
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await server.close(0);
});

async function connection(): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(server.url);
  session.on("error", () => {});
  sessions.push(session);
  await new Promise((resolve) => session.once("connect", resolve));
  return session;
}

/** A Watch of the whole server, its (empty) request sent. */
function watch(session: http2.ClientHttp2Session): http2.ClientHttp2Stream {
  const stream = session.request({
    ":method": "POST",
    ":path": "/grpc.health.v1.Health/Watch",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  stream.end(Buffer.alloc(5));
  return stream;
}

/** "message" when the stream's first status update comes; else its grpc-status and message. */
function first(stream: http2.ClientHttp2Stream): Promise<string> {
  return new Promise((resolve) => {
    const ended = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        resolve(`${h["grpc-status"]} ${decodeURIComponent(String(h["grpc-message"]))}`);
      }
    };
    stream.once("data", () => resolve("message"));
    stream.on("response", ended);
    stream.on("trailers", ended);
  });
}

describe("health Watch streams per connection", () => {
  it("one connection gets MAX_WATCH_STREAMS_PER_CONNECTION, another connection still gets its own", async () => {
    const greedy = await connection();
    const held = Array.from({ length: PER_CONNECTION }, () => watch(greedy));
    expect(await Promise.all(held.map(first))).toEqual(Array(PER_CONNECTION).fill("message"));
    const refused = await first(watch(greedy));
    expect(refused).toBe(
      `8 too many health Watch streams open on this connection (${PER_CONNECTION}); use Check or try later`,
    );

    const other = await connection();
    const theirs = Array.from({ length: PER_CONNECTION }, () => watch(other));
    expect(await Promise.all(theirs.map(first))).toEqual(Array(PER_CONNECTION).fill("message"));

    // A Watch the greedy connection ends gives its place back to that connection.
    const ended = new Promise((resolve) => held[0]?.once("close", resolve));
    held[0]?.close(http2.constants.NGHTTP2_CANCEL);
    await ended;
    await expect.poll(() => first(watch(greedy)), { timeout: 5000 }).toBe("message");
  });
});
