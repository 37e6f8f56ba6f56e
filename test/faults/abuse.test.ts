import * as http2 from "node:http2";
import { connect as netConnect, Socket } from "node:net";
import { Writable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { RemoteRunStore } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_WATCH_STREAMS } from "../../src/health.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";
import { until } from "../support/until.js";

// The red team's attacks of issue 14 as bounded tests against a real server
// on port 0 with raw node:http2 and net clients: a body held before auth,
// streams and connections held open, a dripped preface, a huge answer and a
// client that never opens its receive window. Each asserts behaviour only
// (codes, closed streams and sockets, warn lines, a well-behaved client
// served) and prints one REPORT line with the peak RSS of this process (the
// server and the attackers) and the good client's p99 without and with the
// attack. Timeouts are short so the limits are reached within the test.

const TOKEN = "abuse-token-0123456789abcdef";
const PUT = "/runstore.v1.RunStoreService/Put";
const LIST = "/runstore.v1.RunStoreService/ListByThread";
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const LIMITS = {
  maxConcurrentStreams: 100,
  maxConnections: 40,
  firstRequestTimeoutMs: 500,
  idleTimeoutMs: 800,
  bodyTimeoutMs: 800,
  sendTimeoutMs: 800,
  maxResponseBytes: 8 * 1024 * 1024,
  // The server-wide Watch cap is reached over 10 connections of 100 below;
  // the per-connection cap has a test of its own (watch-per-connection.test.ts).
  maxWatchStreamsPerConnection: 100,
};
const BIG_RUNS = 120;
const BIG_RUN_BYTES = 100 * 1024;

let server: RunningServer;
let good: RemoteRunStore;
let baselineP99 = 0;
const logged: { level: number; msg: string; [key: string]: unknown }[] = [];

function warnings(msg: string): number {
  return logged.filter((line) => line.level === 40 && line.msg === msg).length;
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const store = new MemoryRunStore();
  const filler = "x".repeat(BIG_RUN_BYTES);
  for (let i = 0; i < BIG_RUNS; i++) {
    await store.put(`big-${i}`, { threadId: "big", kwargs: { filler } });
  }
  await store.put("good-run", { threadId: "good" });
  server = await startServer({
    store,
    tokens: [TOKEN],
    limits: LIMITS,
    logger: pino({ level: "warn" }, sink),
    // Room for every line of every attack here, so each can be counted; the
    // budget itself is the last test's, on a server of its own.
    logBudget: { linesPerWindow: 10_000, windowMs: 3_600_000 },
  });
  good = new RemoteRunStore({ baseUrl: server.url, token: TOKEN });
  baselineP99 = await goodClientP99();
});

afterAll(async () => {
  good?.close();
  await server?.close(0);
});

/** The good client's p99 over `calls` sequential gets, each answered correctly. */
async function goodClientP99(calls = 100): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const began = performance.now();
    const run = await good.get("good-run");
    times.push(performance.now() - began);
    expect(run?.threadId).toBe("good");
  }
  times.sort((a, b) => a - b);
  return times[Math.ceil(times.length * 0.99) - 1] ?? 0;
}

/** Peak RSS while `attack` runs, and the good client's p99 meanwhile. */
async function underAttack<T>(name: string, attack: () => Promise<T>): Promise<T> {
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  try {
    const [result, p99] = await Promise.all([attack(), goodClientP99()]);
    console.log(
      `REPORT abuse ${name}: peak RSS ${(peak / 1048576).toFixed(0)} MB, good client p99 ` +
        `${baselineP99.toFixed(1)} ms without the attack, ${p99.toFixed(1)} ms with it`,
    );
    return result;
  } finally {
    clearInterval(sampler);
  }
}

/** A raw HTTP/2 session to the server, connected. */
async function session(settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  const client = http2.connect(server.url, { settings });
  client.on("error", () => {});
  await new Promise((resolve) => client.once("connect", resolve));
  return client;
}

/** A raw TCP socket to the server, connected. */
async function socket(): Promise<Socket> {
  const raw = netConnect(server.port, "127.0.0.1");
  raw.on("error", () => {});
  raw.resume(); // reads, so that the server's closing is seen
  await new Promise((resolve) => raw.once("connect", resolve));
  return raw;
}

/**
 * Connections the server holds open: its accepted sockets, those whose
 * local port is the server's (the test's own sockets have it as remote port).
 */
function serverConnections(): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && !h.destroyed && h.localPort === server.port)
    .length;
}

/** An authenticated gRPC Put whose body is left open. */
function openPut(client: http2.ClientHttp2Session): http2.ClientHttp2Stream {
  return client.request(
    {
      ":method": "POST",
      ":path": PUT,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${TOKEN}`,
    },
    { endStream: false },
  );
}

function closed(emitter: { once(event: "close", listener: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => emitter.once("close", () => resolve()));
}

/** A gRPC length-prefixed message. */
function envelope(payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** What came back on a stream: its response headers and how it closed. */
interface Outcome {
  headers: http2.IncomingHttpHeaders;
  body: string;
  rstCode: number | undefined;
}

function outcome(stream: http2.ClientHttp2Stream): Promise<Outcome> {
  let headers: http2.IncomingHttpHeaders = {};
  let body = "";
  stream.on("response", (h) => {
    headers = h;
  });
  stream.on("data", (chunk: Buffer) => {
    body += chunk.toString();
  });
  stream.on("error", () => {});
  return new Promise((resolve) =>
    stream.once("close", () => resolve({ headers, body, rstCode: stream.rstCode })),
  );
}

describe("abuse: each attack is bounded and a good client keeps being served", () => {
  it("bodies sent without a token are refused at their headers, never read", async () => {
    const before = warnings("unauthenticated call refused");
    const outcomes = await underAttack("pre-auth body hold (4 × 100 streams)", async () => {
      const sessions = await Promise.all([1, 2, 3, 4].map(() => session()));
      const all: Promise<Outcome>[] = [];
      for (const [i, client] of sessions.entries()) {
        for (let s = 0; s < 100; s++) {
          // Half gRPC, half Connect; a body that is never finished.
          const grpc = (i + s) % 2 === 0;
          const stream = client.request(
            {
              ":method": "POST",
              ":path": PUT,
              "content-type": grpc ? "application/grpc" : "application/proto",
              ...(grpc ? { te: "trailers" } : {}),
            },
            { endStream: false },
          );
          const done = outcome(stream);
          stream.write(Buffer.alloc(16 * 1024));
          all.push(done);
        }
      }
      const results = await Promise.all(all);
      for (const client of sessions) client.destroy();
      return results;
    });
    const grpc = outcomes.filter((o) => o.headers["content-type"] === "application/grpc");
    const connect = outcomes.filter((o) => o.headers["content-type"] === "application/json");
    expect(
      grpc.map((o) => [o.headers[":status"], o.headers["grpc-status"], o.headers["grpc-message"]]),
    ).toEqual(Array(200).fill([200, "16", "missing%20bearer%20token"]));
    expect(connect.map((o) => [o.headers[":status"], JSON.parse(o.body)])).toEqual(
      Array(200).fill([401, { code: "unauthenticated", message: "missing bearer token" }]),
    );
    // RST_STREAM(NO_ERROR) after the complete answer: the client stops
    // sending and nothing is read (RFC 9113 8.1; CANCEL made grpcio report
    // CANCELLED instead of the answer's UNAUTHENTICATED).
    expect(new Set(outcomes.map((o) => o.rstCode))).toEqual(
      new Set([http2.constants.NGHTTP2_NO_ERROR]),
    );
    expect(warnings("unauthenticated call refused") - before).toBe(400);
  });

  it("streams whose body stops coming are cancelled after BODY_TIMEOUT_MS; the stream limit is advertised", async () => {
    const before = warnings("call cancelled: request body made no progress within BODY_TIMEOUT_MS");
    const outcomes = await underAttack("idle streams (100 open bodies)", async () => {
      const client = await session();
      expect(client.remoteSettings.maxConcurrentStreams).toBe(100);
      const all: Promise<Outcome>[] = [];
      for (let s = 0; s < 100; s++) {
        const stream = openPut(client);
        stream.write(Buffer.from([0, 0, 0, 1, 0]));
        all.push(outcome(stream));
      }
      const results = await Promise.all(all);
      client.destroy();
      return results;
    });
    expect(outcomes.map((o) => o.rstCode)).toEqual(Array(100).fill(http2.constants.NGHTTP2_CANCEL));
    expect(
      warnings("call cancelled: request body made no progress within BODY_TIMEOUT_MS") - before,
    ).toBe(100);
  });

  it("a body that keeps coming slowly is not cut, however long it takes in all", async () => {
    const before = warnings("call cancelled: request body made no progress within BODY_TIMEOUT_MS");
    const client = await session();
    const stream = openPut(client);
    const done = outcome(stream);
    const body = envelope(
      toBinary(
        pb.PutRequestSchema,
        create(pb.PutRequestSchema, { runId: "slow-upload", threadId: "slow" }),
      ),
    );
    // Six pieces, BODY_TIMEOUT_MS / 4 apart: 1.5 × BODY_TIMEOUT_MS in all.
    // The pacing is the slow client under test, not a wait for the server.
    const pieces = 6;
    const size = Math.ceil(body.length / pieces);
    for (let i = 0; i < pieces - 1; i++) {
      stream.write(body.subarray(i * size, (i + 1) * size));
      await new Promise((resolve) => setTimeout(resolve, LIMITS.bodyTimeoutMs / 4));
    }
    stream.end(body.subarray((pieces - 1) * size));
    const result = await done;
    client.destroy();
    expect(result.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(result.headers[":status"]).toBe(200);
    expect((await good.get("slow-upload"))?.threadId).toBe("slow");
    expect(
      warnings("call cancelled: request body made no progress within BODY_TIMEOUT_MS") - before,
    ).toBe(0);
  });

  it("connections past MAX_CONNECTIONS are closed at once; silent ones after FIRST_REQUEST_TIMEOUT_MS", async () => {
    const droppedBefore = warnings("connection refused: MAX_CONNECTIONS open already");
    const silentBefore = warnings("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS");
    // The earlier tests' connections are closed by now on our side, but the
    // server may not have seen every close yet: wait until only the good
    // client's connection (if any) is left, so the attack meets free slots.
    await until(() => serverConnections() <= 1, "the earlier tests' connections to close", 5000);
    await good.get("good-run"); // the good client holds one connection of its own
    await underAttack("silent connections (50 against a limit of 40)", async () => {
      const sockets = await Promise.all(Array.from({ length: 50 }, () => socket()));
      await Promise.all(sockets.map(closed));
    });
    // Each socket is either refused at once or closed for its silence. The
    // split is 11 / 39 when all 50 arrive before the first deadline (500 ms)
    // frees a slot, which a loaded machine does not promise; at least one is
    // refused as long as 40 of them arrive within that time.
    const refused = warnings("connection refused: MAX_CONNECTIONS open already") - droppedBefore;
    const silent =
      warnings("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS") - silentBefore;
    console.log(`REPORT abuse silent connections: ${refused} refused, ${silent} timed out`);
    expect(refused + silent).toBe(50);
    expect(refused).toBeGreaterThanOrEqual(1);
  });

  it("a dripped preface (slowloris) is closed after FIRST_REQUEST_TIMEOUT_MS", async () => {
    const before = warnings("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS");
    const sent = await underAttack(
      "slowloris (20 sockets, one preface byte each 100 ms)",
      async () => {
        const sockets = await Promise.all(Array.from({ length: 20 }, () => socket()));
        let offset = 0;
        const drip = setInterval(() => {
          for (const raw of sockets)
            if (!raw.destroyed) raw.write(PREFACE.subarray(offset, offset + 1));
          offset++;
        }, 100);
        await Promise.all(sockets.map(closed));
        clearInterval(drip);
        return offset;
      },
    );
    expect(sent).toBeLessThan(PREFACE.length);
    expect(warnings("connection closed: no request within FIRST_REQUEST_TIMEOUT_MS") - before).toBe(
      20,
    );
  });

  it("a connection idle after its calls is closed with GOAWAY after IDLE_TIMEOUT_MS", async () => {
    const client = await session();
    const peer = `127.0.0.1:${client.socket.localPort}`;
    const goaway = new Promise<number>((resolve) => client.once("goaway", (code) => resolve(code)));
    const stream = client.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.end(envelope(new Uint8Array()));
    await outcome(stream);
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await closed(client);
    expect(
      logged.filter(
        (l) => l.msg === "connection closed: idle for IDLE_TIMEOUT_MS" && l.peer === peer,
      ),
    ).toHaveLength(1);
  });

  it("an answer over MAX_RESPONSE_BYTES is RESOURCE_EXHAUSTED, never built", async () => {
    const failures = await underAttack(
      `huge answer (3 × ListByThread limit 500 over ${BIG_RUNS} × 100 KB runs)`,
      // Limit 500 is one unpaged call (past 500 the SDK walks pages, halving a refused one).
      () => Promise.all([1, 2, 3].map(() => failureOf(good.listByThread("big", { limit: 500 })))),
    );
    for (const failure of failures) {
      expect([failure.code, failure.rawMessage]).toEqual([
        Code.ResourceExhausted,
        `the answer (${BIG_RUNS} runs) is over the server's response budget of ${LIMITS.maxResponseBytes} bytes (MAX_RESPONSE_BYTES): ask for fewer runs`,
      ]);
    }
    // Under the budget, the same thread is served.
    expect((await good.listByThread("big", { limit: 10 })).length).toBe(10);
  });

  it("answers a zero-window client never takes are cancelled after SEND_TIMEOUT_MS", async () => {
    const before = warnings(
      "call cancelled: answer not taken by the client within SEND_TIMEOUT_MS",
    );
    const request = envelope(
      toBinary(
        pb.ListByThreadRequestSchema,
        create(pb.ListByThreadRequestSchema, { threadId: "big", limit: 50 }),
      ),
    );
    const outcomes = await underAttack("zero receive window (20 answers of 5 MB)", async () => {
      const client = await session({ initialWindowSize: 0 });
      const all = Array.from({ length: 20 }, () => {
        const stream = client.request({
          ":method": "POST",
          ":path": LIST,
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${TOKEN}`,
        });
        stream.end(request);
        return outcome(stream);
      });
      const results = await Promise.all(all);
      client.destroy();
      return results;
    });
    expect(outcomes.map((o) => [o.headers[":status"], o.rstCode])).toEqual(
      Array(20).fill([200, http2.constants.NGHTTP2_CANCEL]),
    );
    expect(
      warnings("call cancelled: answer not taken by the client within SEND_TIMEOUT_MS") - before,
    ).toBe(20);
  });

  // 1,000 streams on a loaded two-core CI machine: the bound is a safety net, not a speed check.
  it("health Watch streams past MAX_WATCH_STREAMS are RESOURCE_EXHAUSTED", {
    timeout: 60_000,
  }, async () => {
    const watch = (client: http2.ClientHttp2Session) => {
      const stream = client.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Watch",
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.end(envelope(new Uint8Array()));
      stream.on("error", () => {});
      return stream;
    };
    /** The stream's first message, or its grpc-status and message when it ends without one. */
    const first = (stream: http2.ClientHttp2Stream) =>
      new Promise<string>((resolve) => {
        const ended = (h: http2.IncomingHttpHeaders) => {
          if (h["grpc-status"] !== undefined)
            resolve(`${h["grpc-status"]} ${decodeURIComponent(String(h["grpc-message"]))}`);
        };
        stream.once("data", () => resolve("message"));
        stream.on("response", ended);
        stream.on("trailers", ended);
      });
    const perSession = LIMITS.maxConcurrentStreams;
    const sessions = await Promise.all(
      Array.from({ length: MAX_WATCH_STREAMS / perSession }, () => session()),
    );
    const streams = sessions.flatMap((client) =>
      Array.from({ length: perSession }, () => watch(client)),
    );
    const answers = await Promise.all(streams.map(first));
    expect(answers).toEqual(Array(MAX_WATCH_STREAMS).fill("message"));
    const extra = await session();
    const refused = watch(extra);
    expect(await first(refused)).toBe(
      `8 too many health Watch streams open (${MAX_WATCH_STREAMS}); use Check or try later`,
    );
    // One watcher leaves: its place is free again (once the server has seen it go).
    streams[0]?.close(http2.constants.NGHTTP2_CANCEL);
    let again = "";
    for (let tries = 0; tries < 100 && again !== "message"; tries++) {
      again = await first(watch(extra));
    }
    expect(again).toBe("message");
    for (const client of [...sessions, extra]) client.destroy();
  });

  it("refused calls and dropped connections are logged within a budget, the rest summed up", async () => {
    const lines: { msg: string; suppressed?: number }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const budgeted = await startServer({
      store: new MemoryRunStore(),
      tokens: [TOKEN],
      limits: { ...LIMITS, maxConnections: 1, firstRequestTimeoutMs: 60_000 },
      logger: pino({ level: "warn" }, sink),
      logBudget: { linesPerWindow: 5, windowMs: 500 },
    });
    const REFUSED = "unauthenticated call refused";
    const REFUSED_SUM =
      "unauthenticated calls refused: more than the log's budget, not logged one by one";
    const DROPPED = "connection refused: MAX_CONNECTIONS open already";
    const DROPPED_SUM =
      "connections refused or closed: more than the log's budget, not logged one by one";
    /** Lines of `msg` plus what the summaries `sum` say they left out. */
    const told = (msg: string, sum: string) =>
      lines.filter((l) => l.msg === msg).length +
      lines.filter((l) => l.msg === sum).reduce((n, l) => n + (l.suppressed ?? 0), 0);
    try {
      // 100 calls without a token on the one connection the server allows...
      const client = http2.connect(budgeted.url);
      client.on("error", () => {});
      const calls = Array.from({ length: 100 }, () => {
        const stream = client.request({
          ":method": "POST",
          ":path": PUT,
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.end(envelope(new Uint8Array()));
        return outcome(stream);
      });
      await Promise.all(calls);
      // ...and 30 more connections, each refused.
      const sockets = Array.from({ length: 30 }, () => {
        const raw = netConnect(budgeted.port, "127.0.0.1");
        raw.on("error", () => {});
        raw.resume();
        return closed(raw);
      });
      await Promise.all(sockets);
      // Every refusal is told once: as its own line or in a window's summary.
      await until(
        () => told(REFUSED, REFUSED_SUM) === 100 && told(DROPPED, DROPPED_SUM) === 30,
        "every refusal and drop told in a line or a summary",
        5000,
      );
      const summaries = lines.filter((l) => l.msg === REFUSED_SUM || l.msg === DROPPED_SUM);
      console.log(
        `REPORT abuse log budget: ${lines.length} warn lines for 100 refused calls and 30 refused connections, ${summaries.length} of them summaries`,
      );
      expect(summaries.length).toBeGreaterThanOrEqual(2);
      client.destroy();
    } finally {
      await budgeted.close(0);
    }
  });

  it("the good client is served after every attack", async () => {
    expect((await good.get("good-run"))?.threadId).toBe("good");
  });
});
