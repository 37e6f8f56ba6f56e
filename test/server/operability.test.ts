import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { logLines, runUntilExit, spawnServer } from "../support/child-server.js";
import { failureOf } from "../support/failure.js";

// The server process as an operator configures it: tokens from a file, TLS
// from files, metrics and reflection, debug request logs, safe defaults.

const run = promisify(execFile);
const TOKEN_A = "token-a-0123456789abcdef";
const TOKEN_B = "token-b-0123456789abcdef";

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
  writeFileSync(join(certs.dir, "tokens"), `# rotated monthly\n${TOKEN_A}\n\n${TOKEN_B}\n`);
  writeFileSync(join(certs.dir, "server.pem"), certs.serverCert);
});
afterAll(() => certs.remove());

describe("a configured server process", () => {
  it("tokens file + TLS: both tokens work over https, none is refused, and the logs never hold a token", async () => {
    const server = await spawnServer({
      AUTH_TOKENS_FILE: join(certs.dir, "tokens"),
      TLS_CERT_FILE: join(certs.dir, "server.crt"),
      TLS_KEY_FILE: join(certs.dir, "server.key"),
      LOG_LEVEL: "debug",
    });
    const stores: RemoteRunStore[] = [];
    const open = (token?: string) => {
      const store = new RemoteRunStore({
        baseUrl: server.url,
        tls: { ca: certs.ca },
        ...(token ? { token } : {}),
      });
      stores.push(store);
      return store;
    };
    try {
      expect(server.url).toMatch(/^https:/);
      await open(TOKEN_A).put("r1", { threadId: "t1", kwargs: { secret_prompt: "do not log me" } });
      expect((await open(TOKEN_B).get("r1"))?.threadId).toBe("t1");
      expect((await failureOf(open().get("r1"))).code).toBe(Code.Unauthenticated);
    } finally {
      for (const store of stores) store.close();
      expect(await server.stop()).toBe(0);
    }
    const lines = logLines(server.stderr());
    expect(
      lines.find((l) => l.msg === `listening on ${server.url} (gRPC, gRPC-Web, Connect)`),
    ).toMatchObject({
      auth: "2 bearer token(s)",
      tls: "on",
    });
    const calls = lines.filter((l) => l.msg === "call");
    expect(calls.map((l) => [l.level, l.procedure, l.code])).toEqual([
      [20, "runstore.v1.RunStoreService/Put", "ok"],
      [20, "runstore.v1.RunStoreService/Get", "ok"],
      [20, "runstore.v1.RunStoreService/Get", "Unauthenticated"],
    ]);
    const everything = server.stderr();
    for (const secret of [TOKEN_A, TOKEN_B, "do not log me"])
      expect(everything).not.toContain(secret);
  });

  it("metrics on their own port and reflection for buf curl", async () => {
    const server = await spawnServer({ METRICS_PORT: "0" });
    const store = new RemoteRunStore({ baseUrl: server.url });
    try {
      await store.put("r1", { threadId: "t1" });
      await failureOf(store.get(""));
      const metricsUrl = logLines(server.stderr()).find(
        (l) => l.msg === "serving Prometheus metrics",
      )?.url;
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const text = await (await fetch(String(metricsUrl))).text();
      expect(text).toContain(
        'grpc_server_handled_total{grpc_type="unary",grpc_service="runstore.v1.RunStoreService",grpc_method="Put",grpc_code="OK"} 1',
      );
      expect(text).toContain(
        'grpc_server_handled_total{grpc_type="unary",grpc_service="runstore.v1.RunStoreService",grpc_method="Get",grpc_code="INVALID_ARGUMENT"} 1',
      );
      expect(text).toContain("process_resident_memory_bytes");

      const { stdout } = await run("node_modules/.bin/buf", [
        "curl",
        "--http2-prior-knowledge",
        "--list-services",
        server.url,
      ]);
      expect(stdout.trim().split("\n").sort()).toEqual([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "runstore.v1.RunStoreService",
      ]);
      const got = await run("node_modules/.bin/buf", [
        "curl",
        "--http2-prior-knowledge",
        "-d",
        '{"run_id":"r1"}',
        `${server.url}/runstore.v1.RunStoreService/Get`,
      ]);
      expect(JSON.parse(got.stdout).run).toMatchObject({
        runId: "r1",
        threadId: "t1",
        status: "RUN_STATUS_PENDING",
      });
    } finally {
      store.close();
      expect(await server.stop()).toBe(0);
    }
  });

  it("refuses to serve a non-loopback address without tokens and TLS unless ALLOW_INSECURE=true", async () => {
    const refused = await runUntilExit({ HOST: "0.0.0.0" });
    expect(refused.code).toBe(2);
    expect(logLines(refused.output).map((l) => [l.level, l.msg])).toEqual([
      [
        60,
        "HOST=0.0.0.0 is reachable from other machines but AUTH_TOKENS and TLS_CERT_FILE/TLS_KEY_FILE are not set: set them, or ALLOW_INSECURE=true to serve without",
      ],
    ]);
    const tokensOnly = await runUntilExit({ HOST: "0.0.0.0", AUTH_TOKENS: TOKEN_A });
    expect(tokensOnly.code).toBe(2);
    expect(tokensOnly.output).toContain("but TLS_CERT_FILE/TLS_KEY_FILE is not set");
    const allowed = await spawnServer({ HOST: "0.0.0.0", ALLOW_INSECURE: "true" });
    expect(allowed.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(await allowed.stop()).toBe(0);
  });
});
