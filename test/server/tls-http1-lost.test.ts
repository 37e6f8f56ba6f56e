import * as tls from "node:tls";
import { Code, RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { failureOf } from "../support/failure.js";

// Over HTTP/1.1 a client certificate the server refuses in TLS 1.3 shows only
// as a connection closed after the handshake ("socket hang up"); the
// RemoteRunStore's agent tells it apart by what a server that accepted the
// certificate sends first, its session tickets (test/server/tls.test.ts has
// the refusals). The other side: a server that accepted the certificate and
// then closes the connection without an answer is a lost connection, not
// UNAUTHENTICATED. A TLS server of this test's own does exactly that. (Its
// tickets go out just after the handshake; a server that destroyed the
// socket at once, before they left, would look like a refusal: the one case
// this check cannot tell apart, as over HTTP/2 a server gone before its
// SETTINGS.)

let certs: TestCerts;
let server: tls.Server;
let port: number;
const stores: RemoteRunStore[] = [];

beforeAll(async () => {
  certs = makeTestCerts();
  server = tls.createServer(
    {
      cert: certs.serverCert,
      key: certs.serverKey,
      ca: certs.ca,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["http/1.1"],
    },
    // Accepted (session tickets sent), then closed as the request arrives.
    (socket) => socket.once("data", () => socket.end()),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const s of stores) s.close();
  await new Promise((resolve) => server.close(resolve));
  certs.remove();
});

describe("a trusted HTTP/1.1 connection closed without an answer", () => {
  it.each(["connect", "grpc-web"] as const)(
    "is a lost connection (ABORTED, socket hang up), not a refused certificate (%s)",
    async (protocol) => {
      const store = new RemoteRunStore({
        baseUrl: `https://localhost:${port}`,
        protocol,
        httpVersion: "1.1",
        tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
        retry: { maxAttempts: 1 },
      });
      stores.push(store);
      const error = await failureOf(store.get("r1"));
      expect([error.code, error.rawMessage]).toEqual([Code.Aborted, "socket hang up"]);
    },
  );
});
