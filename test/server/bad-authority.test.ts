import * as http2 from "node:http2";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, spawnServer } from "../support/child-server.js";

// A request whose :authority is no host ("127.0.0.1:1,127.0.0.1:2", what
// grpcio sends for a multi-address target) once made connect-node throw
// outside any handler and the server process exit: one request ended the
// service (the health routes need no token, so anyone could). The server
// process here, as an operator runs it, with tokens required.

const TOKEN = "bad-authority-0123456789abcdef";
let server: ChildServer;

beforeAll(async () => {
  server = await spawnServer({ AUTH_TOKENS: TOKEN });
});

afterAll(async () => {
  await server.stop();
});

/** One HTTP/2 request to `path` with `authority`; its :status and body. */
async function requestWith(
  authority: string,
  path: string,
  contentType: string,
  body: Uint8Array,
): Promise<{ status: number; body: string }> {
  const session = http2.connect(server.url);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      ":authority": authority,
      "content-type": contentType,
      authorization: `Bearer ${TOKEN}`,
      te: "trailers",
    });
    stream.end(body);
    const status = await new Promise<number>((resolve, reject) => {
      stream.once("response", (headers) => resolve(Number(headers[":status"])));
      stream.once("error", reject);
    });
    let text = "";
    for await (const chunk of stream) text += String(chunk);
    return { status, body: text };
  } finally {
    session.close();
  }
}

describe("a request whose :authority is no host", () => {
  it.each([
    ["Connect unary", "/runstore.v1.RunStoreService/SearchRuns", "application/json", "{}"],
    ["gRPC stream", "/runstore.v1.RunStoreService/WatchRuns", "application/grpc", "\0\0\0\0\0"],
    ["health Watch", "/grpc.health.v1.Health/Watch", "application/grpc", "\0\0\0\0\0"],
  ])("%s: answered 400, the server goes on", async (_, path, type, body) => {
    const answer = await requestWith(
      "127.0.0.1:1,127.0.0.1:2",
      path,
      type,
      new TextEncoder().encode(body),
    );
    expect(answer).toEqual({
      status: 400,
      body: "the request's :authority (Host) is not a host[:port]\n",
    });
    expect(server.child.exitCode).toBe(null);
    const store = new RemoteRunStore({ baseUrl: server.url, token: TOKEN });
    try {
      expect(await store.get("missing")).toBe(null);
    } finally {
      store.close();
    }
  });
});
