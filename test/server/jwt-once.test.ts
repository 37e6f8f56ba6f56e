import { Code, ConnectError, RemoteRunStore } from "@runstore/client";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jwtVerifications } from "../../src/auth/jwt.js";
import { readConfig } from "../../src/config.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// A JWT is verified once per call: at the headers, before the body is read
// (src/auth/header-check.ts); the bearer-auth interceptor takes the principal
// found there from the call's context values instead of verifying again.
// jwtVerifications() counts every verification this process makes, and the
// server runs in this process.

const SECRET = "a-shared-hs256-secret-of-32-chars-or-more";
let server: RunningServer;
let backend: MemoryRunStore;
const clients: RemoteRunStore[] = [];

beforeAll(async () => {
  const config = readConfig({ AUTH_JWT_SECRET: SECRET });
  backend = new MemoryRunStore();
  await backend.put("ra", { threadId: "ta", userId: "alice" });
  await backend.put("rb", { threadId: "tb", userId: "bob" });
  server = await startServer({ store: backend, jwt: config.jwt });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server.close(0);
});

function as(token: string, protocol: "grpc" | "connect" | "grpc-web"): RemoteRunStore {
  const store = new RemoteRunStore({
    baseUrl: server.url,
    protocol,
    token,
    retry: { maxAttempts: 1 },
  });
  clients.push(store);
  return store;
}

function jwt(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    runstore_role: "write",
    runstore_users: ["alice"],
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));
}

/** The call's outcome (a code name, or what `ok` makes of the answer) and the JWTs verified for it. */
async function counted<T>(
  call: () => Promise<T>,
  ok: (value: T) => unknown,
): Promise<{ outcome: unknown; verified: number }> {
  const before = jwtVerifications();
  let outcome: unknown;
  try {
    outcome = ok(await call());
  } catch (error) {
    outcome = Code[ConnectError.from(error).code];
  }
  return { outcome, verified: jwtVerifications() - before };
}

describe("a JWT is verified once per call", () => {
  it.each(["grpc", "connect", "grpc-web"] as const)(
    "one get, one verification, and its principal still decides (%s)",
    async (protocol) => {
      const alice = as(await jwt({}), protocol);
      expect(
        await counted(
          () => alice.get("ra"),
          (run) => run?.runId,
        ),
      ).toEqual({
        outcome: "ra",
        verified: 1,
      });
      // The principal from the header check still filters to alice's runs.
      expect(
        await counted(
          () => alice.get("rb"),
          (run) => run,
        ),
      ).toEqual({
        outcome: null,
        verified: 1,
      });
      expect(
        await counted(
          () => alice.get("rb", { userId: "bob" }),
          () => "OK",
        ),
      ).toEqual({ outcome: "PermissionDenied", verified: 1 });
      // And its role: read may not write.
      const reader = as(await jwt({ runstore_role: "read" }), protocol);
      expect(
        await counted(
          () => reader.updateStatus("ra", "running"),
          () => "OK",
        ),
      ).toEqual({ outcome: "PermissionDenied", verified: 1 });
      expect((await backend.get("ra"))?.status).toBe("pending");
    },
  );

  it("a forged JWT is verified once too, and refused", async () => {
    const forged = as(await jwt({}, "another-secret-of-thirty-two-chars!!"), "grpc");
    expect(
      await counted(
        () => forged.get("ra"),
        () => "OK",
      ),
    ).toEqual({ outcome: "Unauthenticated", verified: 1 });
  });
});
