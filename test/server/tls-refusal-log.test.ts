import { EventEmitter } from "node:events";
import type { Http2SecureServer } from "node:http2";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  logTlsRefusals,
  REFUSAL_LINES_PER_WINDOW,
  REFUSAL_WINDOW_MS,
} from "../../src/tls-refusal-log.js";

// The refusal log's budget, on a stand-in server (the real handshakes are in
// tls.test.ts): a flood of refusals is not a flood of lines.

afterEach(() => {
  vi.useRealTimers();
});

function setup() {
  const lines: { level: number; msg: string; reason?: string; suppressed?: number }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const server = new EventEmitter();
  logTlsRefusals(server as unknown as Http2SecureServer, pino({ level: "debug" }, sink));
  const noCertificate = () =>
    server.emit(
      "tlsClientError",
      Object.assign(new Error("peer did not return a certificate"), {
        code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE",
      }),
      { remoteAddress: "192.0.2.7", remotePort: 4242, authorizationError: null },
    );
  return { lines, server, noCertificate };
}

describe("TLS refusal log", () => {
  it("logs REFUSAL_LINES_PER_WINDOW refusals a window, then one line with the rest", () => {
    vi.useFakeTimers();
    const { lines, noCertificate } = setup();
    for (let i = 0; i < REFUSAL_LINES_PER_WINDOW + 5; i++) noCertificate();
    expect(lines).toHaveLength(REFUSAL_LINES_PER_WINDOW);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: "TLS client certificate refused",
      peer: "192.0.2.7:4242",
      reason: "no client certificate",
    });
    vi.advanceTimersByTime(REFUSAL_WINDOW_MS);
    expect(lines).toHaveLength(REFUSAL_LINES_PER_WINDOW + 1);
    expect(lines.at(-1)).toMatchObject({ level: 40, suppressed: 5 });
    noCertificate();
    expect(lines.at(-1)).toMatchObject({ level: 40, reason: "no client certificate" });
  });

  it("a window without refusals past the budget ends without a line", () => {
    vi.useFakeTimers();
    const { lines, noCertificate } = setup();
    noCertificate();
    vi.advanceTimersByTime(REFUSAL_WINDOW_MS);
    expect(lines).toHaveLength(1);
  });

  it("other failed handshakes are debug lines, outside the budget", () => {
    const { lines, server } = setup();
    server.emit(
      "tlsClientError",
      Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
      {
        remoteAddress: "192.0.2.8",
        remotePort: 1,
        authorizationError: null,
      },
    );
    expect(lines).toEqual([
      expect.objectContaining({ level: 20, msg: "TLS handshake failed", peer: "192.0.2.8:1" }),
    ]);
  });
});
