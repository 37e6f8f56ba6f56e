import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { CONSOLE_CSP } from "../../src/console-server.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// The console's HTTP/1.1 port without a browser: the bundle's files with
// their security headers, nothing else (404, traversal refused, 405), the
// Connect routes of RunStoreService behind the same bearer auth, the
// CONSOLE_* settings, and the port closing with the server.

const TOKEN = "console-server-token-0123456789";

/** A raw request: the path goes out exactly as written (no URL normalisation, unlike fetch). */
function request(
  port: number,
  method: string,
  path: string,
  body?: { json: unknown; token?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> =
      body === undefined ? {} : { "content-type": "application/json" };
    if (body?.token !== undefined) headers.authorization = `Bearer ${body.token}`;
    const options = { host: "127.0.0.1", port, method, path, headers, agent: false };
    const req = http.request(options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body.json));
  });
}

describe("console server", () => {
  let bundle: string;
  let server: RunningServer;
  let port: number;

  beforeAll(async () => {
    bundle = await mkdtemp(join(tmpdir(), "runstore-console-files-"));
    await writeFile(join(bundle, "index.html"), "<!doctype html><title>t</title>");
    await writeFile(join(bundle, "app.js"), "export {};\n");
    await writeFile(join(bundle, "notes.txt"), "not a bundle type\n");
    const store = new MemoryRunStore();
    await store.put("r1", { threadId: "t1" });
    server = await startServer({
      store,
      tokens: [TOKEN],
      console: { port: 0, host: "127.0.0.1", root: bundle },
    });
    port = Number(new URL(server.consoleUrl ?? "").port);
  });

  afterAll(async () => {
    await server?.close(0);
    await rm(bundle, { recursive: true, force: true });
  });

  it("serves the page with the strict Content-Security-Policy and nosniff", async () => {
    const page = await request(port, "GET", "/");
    expect(page.status).toBe(200);
    expect(page.text).toBe("<!doctype html><title>t</title>");
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
        "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(page.headers["content-security-policy"]).toBe(CONSOLE_CSP);
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    const script = await request(port, "GET", "/app.js?v=1");
    expect([script.status, script.headers["content-type"], script.text]).toEqual([
      200,
      "text/javascript; charset=utf-8",
      "export {};\n",
    ]);
    const head = await request(port, "HEAD", "/index.html");
    expect([head.status, head.text]).toEqual([200, ""]);
  });

  it("answers 404 outside the bundle, traversal included, and 405 to other methods", async () => {
    const paths = [
      "/missing.js",
      "/notes.txt",
      "/../package.json",
      "/%2e%2e/package.json",
      "/app.js/../../package.json",
      "//etc/passwd",
      "/..%2f..%2fpackage.json",
      "/index.html/",
    ];
    for (const path of paths) {
      const answer = await request(port, "GET", path);
      expect([path, answer.status, answer.text]).toEqual([path, 404, "not found\n"]);
      expect(answer.headers["x-content-type-options"]).toBe("nosniff");
    }
    const post = await request(port, "POST", "/index.html");
    expect([post.status, post.headers.allow]).toEqual([405, "GET, HEAD"]);
  });

  it("serves RunStoreService over Connect on the same origin, behind the same bearer auth", async () => {
    const path = "/runstore.v1.RunStoreService/Get";
    const refused = await request(port, "POST", path, { json: { runId: "r1" } });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text).code).toBe("unauthenticated");
    const answered = await request(port, "POST", path, { json: { runId: "r1" }, token: TOKEN });
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.text).run.runId).toBe("r1");
    expect(answered.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("closes the console's port with the server", async () => {
    const other = await startServer({
      store: new MemoryRunStore(),
      console: { port: 0, host: "127.0.0.1", root: bundle },
    });
    const otherPort = Number(new URL(other.consoleUrl ?? "").port);
    expect((await request(otherPort, "GET", "/")).status).toBe(200);
    await other.close(0);
    const error = await request(otherPort, "GET", "/").then(
      () => null,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(error).toBe("ECONNREFUSED");
  });

  it("refuses to start without a bundle, naming the build step", async () => {
    const empty = await mkdtemp(join(tmpdir(), "runstore-console-empty-"));
    const start = startServer({
      store: new MemoryRunStore(),
      console: { port: 0, host: "127.0.0.1", root: empty },
    });
    await expect(start).rejects.toThrow(
      `the console's bundle is not in ${empty}: run npm run build`,
    );
    await rm(empty, { recursive: true, force: true });
  });
});

describe("CONSOLE_* settings", () => {
  it("are off unless CONSOLE_PORT is set; loopback by default", () => {
    expect(readConfig({}).console).toBe(null);
    expect(readConfig({ CONSOLE_PORT: "8080" }).console).toEqual({ port: 8080, host: "127.0.0.1" });
    expect(readConfig({ CONSOLE_PORT: "0", CONSOLE_HOST: "::1" }).console).toEqual({
      port: 0,
      host: "::1",
    });
  });

  it("refuse a bad port and a non-loopback host without ALLOW_INSECURE, naming the setting", () => {
    expect(() => readConfig({ CONSOLE_PORT: "70000" })).toThrow(
      new ConfigError('CONSOLE_PORT must be an integer from 0 to 65535, got "70000"'),
    );
    expect(() => readConfig({ CONSOLE_PORT: "8080", CONSOLE_HOST: "0.0.0.0" })).toThrow(
      new ConfigError(
        "CONSOLE_HOST=0.0.0.0 is reachable from other machines but the console is plain HTTP: " +
          "serve it on a loopback address behind a TLS proxy, or set ALLOW_INSECURE=true",
      ),
    );
    expect(
      readConfig({
        CONSOLE_PORT: "8080",
        CONSOLE_HOST: "0.0.0.0",
        ALLOW_INSECURE: "true",
        AUTH_TOKENS: TOKEN,
      }).console,
    ).toEqual({ port: 8080, host: "0.0.0.0" });
  });
});
