import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { type RemoteProtocol, RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A Node HTTP/2 server resets with ENHANCE_YOUR_CALM a stream it cannot take
// on (over its concurrent-stream or session-memory limit), before any
// handler runs. RemoteRunStore reports that refusal as UNAVAILABLE on every
// protocol (connect-node's Connect and gRPC-Web transports said INTERNAL),
// retried as a plain UNAVAILABLE is: idempotent calls again, the four
// single-attempt RPCs not. Here a real HTTP/2 server resets every stream so,
// before reading it, and counts the streams it was sent.

const servers: http2.Http2Server[] = [];
let streams = 0;

/** A server resetting every stream ENHANCE_YOUR_CALM; its URL. */
async function calmServer(): Promise<string> {
  const server = http2.createServer();
  server.on("stream", (stream) => {
    streams++;
    // Closing with an error code makes Node's server stream emit it too.
    stream.on("error", () => {});
    stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

let url = "";
let other = "";

beforeAll(async () => {
  url = await calmServer();
  other = await calmServer();
});

afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

/** The call's error as code and message. */
async function failure(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call();
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code], message: e.rawMessage };
  }
  throw new Error("the call succeeded");
}

const REFUSED = {
  code: "Unavailable",
  message: "the server refused the call under load (http/2 stream reset ENHANCE_YOUR_CALM)",
};

describe("a stream reset ENHANCE_YOUR_CALM before any answer", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
    it(`${protocol}: UNAVAILABLE; a get is made every attempt, a startRun once`, async () => {
      const retry = { maxAttempts: 3, initialBackoffMs: 0, maxBackoffMs: 0 };
      const store = new RemoteRunStore({ baseUrl: url, protocol, retry });
      try {
        streams = 0;
        expect(await failure(() => store.get("r1"))).toEqual(REFUSED);
        expect(streams).toBe(3);
        streams = 0;
        expect(await failure(() => store.startRun("r1"))).toEqual(REFUSED);
        expect(streams).toBe(1);
      } finally {
        store.close();
      }
    });
  }

  it("with several base URLs (the failover transport): UNAVAILABLE, the retry on the other", async () => {
    const retry = { maxAttempts: 2, initialBackoffMs: 0, maxBackoffMs: 0 };
    const store = new RemoteRunStore({ baseUrl: [url, other], protocol: "connect", retry });
    try {
      streams = 0;
      expect(await failure(() => store.get("r2"))).toEqual(REFUSED);
      expect(streams).toBe(2);
    } finally {
      store.close();
    }
  });
});
