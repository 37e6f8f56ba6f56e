import { X509Certificate } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { Code } from "@connectrpc/connect";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { type ChildServer, logLines, spawnServer } from "../support/child-server.js";
import { failureOf } from "../support/failure.js";
import { until } from "../support/until.js";

// SIGHUP on a server process: the tokens file and the TLS certificate are
// re-read, connections opened before keep working, new ones see the new
// certificate, and a bad file changes nothing.

const TOKEN_A = "token-a-0123456789abcdef";
const TOKEN_B = "token-b-0123456789abcdef";
const TOKEN_C = "token-c-0123456789abcdef";

let first: TestCerts;
let second: TestCerts;
let server: ChildServer;
const stores: RemoteRunStore[] = [];

/** Replaces a file whole, as an operator's deploy does (never half-written). */
function replace(path: string, content: string | Buffer): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

function open(token: string): RemoteRunStore {
  const store = new RemoteRunStore({
    baseUrl: server.url,
    token,
    tls: { ca: Buffer.concat([first.ca, second.ca]) },
  });
  stores.push(store);
  return store;
}

/** Sends SIGHUP and waits for the reload's log line (the n-th such line overall). */
async function hangUp(expectedLines: number, msg: RegExp): Promise<void> {
  server.child.kill("SIGHUP");
  await until(
    () => logLines(server.stderr()).filter((l) => msg.test(l.msg)).length >= expectedLines,
    `log line ${msg}`,
  );
}

/** The SHA-256 fingerprint of the certificate a new TLS connection is served. */
function servedFingerprint(): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port: Number(port),
      ca: Buffer.concat([first.ca, second.ca]),
      servername: "localhost",
      ALPNProtocols: ["h2"],
    });
    socket.once("secureConnect", () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

beforeAll(async () => {
  first = makeTestCerts();
  second = makeTestCerts();
  replace(join(first.dir, "tokens"), `${TOKEN_A}\n${TOKEN_B}\n`);
  server = await spawnServer({
    AUTH_TOKENS_FILE: join(first.dir, "tokens"),
    TLS_CERT_FILE: join(first.dir, "server.crt"),
    TLS_KEY_FILE: join(first.dir, "server.key"),
  });
});
afterAll(async () => {
  for (const store of stores) store.close();
  if (server !== undefined) expect(await server.stop()).toBe(0);
  first?.remove();
  second?.remove();
});

describe("SIGHUP", () => {
  it("re-reads the tokens and the certificate without dropping a connection", async () => {
    const a = open(TOKEN_A);
    const b = open(TOKEN_B);
    await a.put("r1", { threadId: "t1" });
    expect((await b.get("r1"))?.threadId).toBe("t1");
    // A raw HTTP/2 connection opened before the reload, kept across it.
    const session = http2.connect(server.url, { ca: first.ca, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      session.once("connect", () => resolve());
      session.once("error", reject);
    });
    const before = new X509Certificate(first.serverCert).fingerprint256;
    expect(await servedFingerprint()).toBe(before);

    replace(join(first.dir, "tokens"), `# B removed, C added\n${TOKEN_A}\n${TOKEN_C}\n`);
    replace(join(first.dir, "server.crt"), second.serverCert);
    replace(join(first.dir, "server.key"), second.serverKey);
    await hangUp(1, /^reloaded the tokens and the TLS certificate$/);

    // The connection opened before answers a call on the same session.
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/runstore.v1.RunStoreService/Get",
        "content-type": "application/json",
        authorization: `Bearer ${TOKEN_A}`,
      });
      stream.once("response", (headers) => resolve(Number(headers[":status"])));
      stream.once("error", reject);
      stream.resume();
      stream.end(JSON.stringify({ runId: "r1" }));
    });
    expect(status).toBe(200);
    expect(session.closed || session.destroyed).toBe(false);
    session.close();

    // Old connections, new rules: A still works, B is refused, C is accepted.
    expect((await a.get("r1"))?.threadId).toBe("t1");
    expect((await failureOf(b.get("r1"))).code).toBe(Code.Unauthenticated);
    expect((await open(TOKEN_C).get("r1"))?.threadId).toBe("t1");
    // A new connection gets the new certificate.
    expect(await servedFingerprint()).toBe(new X509Certificate(second.serverCert).fingerprint256);
    expect(server.stderr()).not.toContain(TOKEN_C);
  });

  it("a bad tokens file is one error line and changes nothing", async () => {
    replace(join(first.dir, "tokens"), "too-short\n");
    await hangUp(1, /^reload refused, still serving the previous tokens and certificate: /);
    const refused = logLines(server.stderr()).find((l) => l.msg.startsWith("reload refused"));
    expect(refused).toMatchObject({ level: 50, signal: "SIGHUP" });
    expect(refused?.msg).toContain("every token must be at least 16 characters");
    expect(server.stderr()).not.toContain("too-short");
    expect((await open(TOKEN_C).get("r1"))?.threadId).toBe("t1");
    expect(await servedFingerprint()).toBe(new X509Certificate(second.serverCert).fingerprint256);
  });

  it("SIGUSR1 is ignored with a warn line: no inspector, still serving", async () => {
    server.child.kill("SIGUSR1");
    await until(
      () => logLines(server.stderr()).some((l) => l.msg.startsWith("SIGUSR1 ignored")),
      "the SIGUSR1 line",
    );
    expect(server.stderr()).not.toContain("Debugger listening");
    expect((await open(TOKEN_A).get("r1"))?.threadId).toBe("t1");
  });
});
