import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, RemoteRunStore } from "@runstore/client";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// JWT bearer tokens: HS256 with a shared secret and RS256 from a JWKS file,
// read through readConfig as an operator sets them, over a real server.

const SECRET = "a-shared-hs256-secret-of-32-chars-or-more";
const dir = mkdtempSync(join(tmpdir(), "runstore-jwt-"));
let server: RunningServer;
let backend: MemoryRunStore;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
const clients: RemoteRunStore[] = [];

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256" };
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [jwk] }));
  const config = readConfig({
    AUTH_JWT_SECRET: SECRET,
    AUTH_JWT_JWKS_FILE: join(dir, "jwks.json"),
    AUTH_JWT_ISSUER: "https://issuer.example",
    AUTH_JWT_AUDIENCE: "runstore",
  });
  backend = new MemoryRunStore();
  await backend.put("ra", { threadId: "ta", userId: "alice" });
  await backend.put("rb", { threadId: "tb", userId: "bob" });
  server = await startServer({ store: backend, tokens: config.tokens, jwt: config.jwt });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

function as(token: string, protocol: "grpc" | "connect" = "grpc"): RemoteRunStore {
  const store = new RemoteRunStore({
    baseUrl: server.url,
    protocol,
    token,
    retry: { maxAttempts: 1 },
  });
  clients.push(store);
  return store;
}

function claims(extra: Record<string, unknown>) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    runstore_role: "write",
    runstore_users: ["alice"],
    iss: "https://issuer.example",
    aud: "runstore",
    iat: now,
    exp: now + 300,
    ...extra,
  });
}

const hs256 = (extra: Record<string, unknown> = {}) =>
  claims(extra).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
const rs256 = (extra: Record<string, unknown> = {}) =>
  claims(extra).setProtectedHeader({ alg: "RS256", kid: "k1" }).sign(privateKey);

async function code(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "OK";
  } catch (error) {
    return Code[ConnectError.from(error).code] ?? "?";
  }
}

describe.each([
  ["HS256", hs256],
  ["RS256 from a JWKS file", rs256],
])("JWT %s", (_name, sign) => {
  it.each(["grpc", "connect"] as const)("maps users and role over %s", async (protocol) => {
    const alice = as(await sign(), protocol);
    expect((await alice.get("ra"))?.runId).toBe("ra");
    expect(await alice.get("rb")).toBeNull();
    expect(await code(alice.get("rb", { userId: "bob" }))).toBe("PermissionDenied");
    expect(await code(alice.updateStatus("rb", "error"))).toBe("PermissionDenied");
    expect((await backend.get("rb"))?.status).toBe("pending");
    const reader = as(await sign({ runstore_role: "read" }), protocol);
    expect(await code(reader.updateStatus("ra", "running"))).toBe("PermissionDenied");
    expect((await reader.get("ra"))?.status).toBe("pending");
    const admin = as(await sign({ runstore_role: "admin", runstore_users: undefined }), protocol);
    expect((await admin.get("rb"))?.runId).toBe("rb");
  });

  it("refuses expired, wrongly issued and ill-claimed tokens as UNAUTHENTICATED", async () => {
    const expired = await sign({ exp: 1_000_000 });
    expect(await code(as(expired).get("ra"))).toBe("Unauthenticated");
    expect(await code(as(await sign({ iss: "https://other.example" })).get("ra"))).toBe(
      "Unauthenticated",
    );
    expect(await code(as(await sign({ runstore_role: "root" })).get("ra"))).toBe("Unauthenticated");
    expect(await code(as(await sign({ runstore_users: [] })).get("ra"))).toBe("Unauthenticated");
    expect(
      await code(as(await sign({ runstore_users: ["alice"], runstore_role: "admin" })).get("ra")),
    ).toBe("Unauthenticated");
  });
});

describe("JWT", () => {
  it("refuses an HS256 token signed with another secret and an unsigned one", async () => {
    const forged = await claims({})
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode("another-secret-of-thirty-two-chars!!"));
    expect(await code(as(forged).get("ra"))).toBe("Unauthenticated");
    const [head, body] = (await hs256()).split(".");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${body}.`;
    expect(head).toBeDefined();
    expect(await code(as(none).get("ra"))).toBe("Unauthenticated");
  });

  it("config: a short secret, a private JWKS and claims without a key are refused by name", () => {
    expect(() => readConfig({ AUTH_JWT_SECRET: "short" })).toThrow(
      new ConfigError("AUTH_JWT_SECRET must be at least 32 characters"),
    );
    expect(() => readConfig({ AUTH_JWT_ISSUER: "x" })).toThrow(
      new ConfigError("AUTH_JWT_ISSUER needs AUTH_JWT_SECRET or AUTH_JWT_JWKS_FILE"),
    );
    writeFileSync(
      join(dir, "private.json"),
      JSON.stringify({ keys: [{ kty: "RSA", d: "x", n: "y", e: "AQAB" }] }),
    );
    expect(() => readConfig({ AUTH_JWT_JWKS_FILE: join(dir, "private.json") })).toThrow(
      /AUTH_JWT_JWKS_FILE=.* must hold public keys only/,
    );
  });
});

/** The answer's headers (and Connect's JSON body) to a Put whose body is never finished. */
async function refusedAtHeaders(
  token: string,
  protocol: "grpc" | "connect",
): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  const client = http2.connect(server.url);
  client.on("error", () => {});
  try {
    const grpc = protocol === "grpc";
    const stream = client.request(
      {
        ":method": "POST",
        ":path": "/runstore.v1.RunStoreService/Put",
        "content-type": grpc ? "application/grpc" : "application/proto",
        authorization: `Bearer ${token}`,
        ...(grpc ? { te: "trailers" } : {}),
      },
      { endStream: false },
    );
    stream.on("error", () => {});
    // Part of a body and never its end: only a check on the headers can answer.
    stream.write(Buffer.alloc(1024));
    let body = "";
    stream.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
      stream.once("response", resolve),
    );
    await new Promise((resolve) => stream.once("close", resolve));
    return { headers, body };
  } finally {
    client.destroy();
  }
}

describe("JWT checked before the body is read", () => {
  it.each(["grpc", "connect"] as const)(
    "an expired or forged JWT with an unfinished body is UNAUTHENTICATED over %s",
    async (protocol) => {
      const expired = await hs256({ exp: 1_000_000 });
      const forged = await claims({})
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode("another-secret-of-thirty-two-chars!!"));
      const cases: [string, string][] = [
        [expired, "invalid bearer token (JWT: ERR_JWT_EXPIRED)"],
        [forged, "invalid bearer token (JWT: ERR_JWS_SIGNATURE_VERIFICATION_FAILED)"],
        [await rs256({ exp: 1_000_000 }), "invalid bearer token (JWT: ERR_JWT_EXPIRED)"],
      ];
      for (const [token, message] of cases) {
        const { headers, body } = await refusedAtHeaders(token, protocol);
        if (protocol === "grpc") {
          expect([headers[":status"], headers["grpc-status"], headers["grpc-message"]]).toEqual([
            200,
            "16",
            encodeURIComponent(message),
          ]);
        } else {
          expect([headers[":status"], JSON.parse(body)]).toEqual([
            401,
            { code: "unauthenticated", message },
          ]);
        }
      }
      expect((await backend.get("ra"))?.status).toBe("pending");
    },
  );
});
