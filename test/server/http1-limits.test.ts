import { Writable } from "node:stream";
import * as tls from "node:tls";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { until } from "../support/until.js";

// The connection limits over HTTP/1.1 (served over TLS, for Connect and
// gRPC-Web clients): a connection that sends no request within
// FIRST_REQUEST_TIMEOUT_MS, and a keep-alive connection idle for
// IDLE_TIMEOUT_MS after its request, are closed by the server, each with its
// warn line naming the peer (src/connection-guard.ts). Plain HTTP/1.1 written
// on a TLS socket; the test waits for the socket's close event.

const LIMITS = { firstRequestTimeoutMs: 300, idleTimeoutMs: 300 };
let certs: TestCerts;
let server: RunningServer;
const logged: { level: number; msg: string; peer?: string; ms?: number }[] = [];
const sockets: tls.TLSSocket[] = [];

beforeAll(async () => {
  certs = makeTestCerts();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged.push(JSON.parse(String(chunk)));
      done();
    },
  });
  server = await startServer({
    store: new MemoryRunStore(),
    tls: { cert: certs.serverCert, key: certs.serverKey },
    limits: LIMITS,
    logger: pino({ level: "warn" }, sink),
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await server.close(0);
  certs.remove();
});

/** A TLS connection that chose HTTP/1.1, and what the server sent on it. */
interface Http1Connection {
  socket: tls.TLSSocket;
  peer: string;
  received: () => string;
  closed: Promise<void>;
}

async function http1(): Promise<Http1Connection> {
  const socket = tls.connect({
    host: "127.0.0.1",
    port: server.port,
    ca: certs.ca,
    servername: "localhost",
    ALPNProtocols: ["http/1.1"],
  });
  sockets.push(socket);
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  expect(socket.alpnProtocol).toBe("http/1.1");
  return { socket, peer: `127.0.0.1:${socket.localPort}`, received: () => text, closed };
}

function linesFor(msg: string, peer: string) {
  return logged.filter((l) => l.level === 40 && l.msg === msg && l.peer === peer);
}

describe("HTTP/1.1 connection limits", () => {
  it("a connection that never sends a request is closed after FIRST_REQUEST_TIMEOUT_MS", async () => {
    const connection = await http1();
    await connection.closed;
    expect(connection.received()).toBe("");
    expect(
      linesFor("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS", connection.peer),
    ).toEqual([expect.objectContaining({ ms: LIMITS.firstRequestTimeoutMs })]);
  });

  it("a keep-alive connection idle after its answer is closed after IDLE_TIMEOUT_MS", async () => {
    const connection = await http1();
    const body = "{}";
    connection.socket.write(
      [
        "POST /grpc.health.v1.Health/Check HTTP/1.1",
        "Host: localhost",
        "Content-Type: application/json",
        `Content-Length: ${body.length}`,
        "",
        body,
      ].join("\r\n"),
    );
    await until(() => connection.received().endsWith('{"status":"SERVING"}'), "the answer");
    expect(connection.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(connection.received()).not.toMatch(/\r\nconnection: close\r\n/i);
    await connection.closed;
    expect(linesFor("connection closed: idle for IDLE_TIMEOUT_MS", connection.peer)).toEqual([
      expect.objectContaining({ ms: LIMITS.idleTimeoutMs }),
    ]);
    // It served its request in time: no first-request line for it.
    expect(
      linesFor("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS", connection.peer),
    ).toEqual([]);
  });
});
