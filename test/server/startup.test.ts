import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, describe, expect, it } from "vitest";
import { SETTINGS } from "../../src/config.js";
import { MIGRATIONS } from "../../src/stores/mysql-migrations.js";
import { logLines, runUntilExit, spawnServer } from "../support/child-server.js";
import { createTestDatabase } from "../support/mysql.js";

// The server as an operator starts it: a child process reading its settings
// from the environment.

const FROM_SOURCE = ["--conditions=source", "--import", "tsx", "src/main.ts"];
const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

describe("start-up", () => {
  it("without DATABASE_URL serves from memory and says data will not survive a restart", async () => {
    const server = await spawnServer({});
    const store = new RemoteRunStore({ baseUrl: server.url });
    try {
      await store.put("r1", { threadId: "t1" });
      expect((await store.get("r1"))?.threadId).toBe("t1");
      expect(server.stderr()).toContain("in-memory store (data will not survive a restart)");
    } finally {
      store.close();
      expect(await server.stop()).toBe(0);
    }
  });

  it("refuses a malformed DATABASE_URL with one line naming it, exit code 2", async () => {
    for (const url of ["not a url", "postgres://u@h/db", "mysql://root@127.0.0.1:3306/"]) {
      const { code, output } = await runUntilExit({ DATABASE_URL: url });
      expect(code, url).toBe(2);
      expect(output.trim().split("\n"), url).toHaveLength(1);
      expect(logLines(output)[0], url).toMatchObject({ level: 60, version: VERSION });
      expect(logLines(output)[0]?.msg, url).toMatch(/^DATABASE_URL /);
    }
  });

  it("refuses a bad setting with one line naming it", async () => {
    const { code, output } = await runUntilExit({
      DB_POOL_SIZE: "lots",
      DATABASE_URL: "mysql://u@h/db",
    });
    expect(code).toBe(2);
    expect(output.trim().split("\n")).toHaveLength(1);
    expect(logLines(output).map((l) => [l.level, l.msg])).toEqual([
      [60, 'DB_POOL_SIZE must be an integer from 1 to 1000, got "lots"'],
    ]);
  });

  it("gives up on an unreachable database after the bounded retry, with one final line and no password", async () => {
    const { code, output, ms } = await runUntilExit({
      DATABASE_URL: "mysql://root:hunter2@127.0.0.1:1/runstore",
      DB_CONNECT_ATTEMPTS: "3",
    });
    expect(code).toBe(1);
    const lines = logLines(output);
    expect(output.trim().split("\n")).toHaveLength(lines.length);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, `runstore ${VERSION} starting`],
      [
        40,
        "database at mysql://root:***@127.0.0.1:1/runstore not reachable (connect ECONNREFUSED 127.0.0.1:1); attempt 1 of 3, retrying in 1000 ms",
      ],
      [
        40,
        "database at mysql://root:***@127.0.0.1:1/runstore not reachable (connect ECONNREFUSED 127.0.0.1:1); attempt 2 of 3, retrying in 2000 ms",
      ],
      [
        60,
        "cannot use the database at mysql://root:***@127.0.0.1:1/runstore: connect ECONNREFUSED 127.0.0.1:1 (gave up after 3 attempts)",
      ],
    ]);
    expect(output).not.toContain("hunter2");
    // A lower bound, not a speed limit: the 1 s and 2 s backoffs are the
    // behaviour under test, and a timer never fires early, so this cannot flake.
    expect(ms).toBeGreaterThanOrEqual(3000);
  });

  it("--help lists every setting with its default", async () => {
    const { spawnSync } = await import("node:child_process");
    const result = spawnSync(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "src/main.ts", "--help"],
      {
        encoding: "utf8",
      },
    );
    expect(result.status).toBe(0);
    for (const name of [
      "PORT",
      "HOST",
      "DATABASE_URL",
      "DB_POOL_SIZE",
      "DB_CONNECT_TIMEOUT_MS",
      "DB_QUERY_TIMEOUT_MS",
      "DB_CONNECT_ATTEMPTS",
    ]) {
      expect(result.stdout).toContain(name);
    }
  });
});

describe("the command line and the start line", () => {
  it("--version and -v print the version and exit 0; -h is --help; any other argument is refused", () => {
    for (const flag of ["--version", "-v"]) {
      const result = spawnSync(process.execPath, [...FROM_SOURCE, flag], { encoding: "utf8" });
      expect([result.status, result.stdout], flag).toEqual([0, `${VERSION}\n`]);
    }
    const help = spawnSync(process.execPath, [...FROM_SOURCE, "-h"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("AUTH_TOKENS");
    const other = spawnSync(process.execPath, [...FROM_SOURCE, "--port=1"], { encoding: "utf8" });
    expect(other.status).toBe(2);
    expect(logLines(other.stdout)).toMatchObject([{ level: 60, args: ["--port=1"] }]);
  });

  it(".env.example lists every setting with its default", () => {
    const listed = new Map(
      readFileSync(new URL("../../.env.example", import.meta.url), "utf8")
        .split("\n")
        .flatMap((line) => {
          const match = /^#([A-Z0-9_]+)=(.*)$/.exec(line);
          return match ? [[match[1], match[2]] as const] : [];
        }),
    );
    for (const [name, fallback] of SETTINGS) {
      expect(listed.get(name), name).toBe(fallback === "(unset)" ? "" : fallback);
    }
  });

  it("--help states every rule a setting is checked against", () => {
    const { stdout } = spawnSync(process.execPath, [...FROM_SOURCE, "--help"], {
      encoding: "utf8",
    });
    for (const rule of [
      "each at least 16 characters without spaces",
      "or mariadb://",
      "percent-encode @ / # : ? % in user and password",
      "?ssl={",
      "an integer from 0 to 65535",
      "1 to 1000",
      "SIGHUP re-reads AUTH_TOKENS_FILE and the TLS files",
    ]) {
      expect(stdout).toContain(rule);
    }
  });

  // The metrics port is bound before the gRPC port, so whichever is taken
  // fails before health is ever SERVING.
  it.each([
    ["PORT", (port: number) => ({ PORT: String(port) })],
    ["METRICS_PORT", (port: number) => ({ PORT: "0", METRICS_PORT: String(port) })],
    ["PORT (METRICS_PORT free)", (port: number) => ({ PORT: String(port), METRICS_PORT: "0" })],
  ])(
    "the first line carries the version; a taken %s is one fatal JSON line, exit 1, and nothing says SERVING",
    async (_name, env) => {
      const taken = createNetServer();
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
      const port = (taken.address() as AddressInfo).port;
      try {
        const { code, output } = await runUntilExit(env(port));
        expect(code).toBe(1);
        expect(output.trim().split("\n")).toHaveLength(logLines(output).length);
        expect(logLines(output).map((l) => [l.level, l.msg])).toEqual([
          [30, `runstore ${VERSION} starting`],
          [
            30,
            "no database configured; using the in-memory store (data will not survive a restart)",
          ],
          [60, `cannot serve: listen EADDRINUSE: address already in use 127.0.0.1:${port}`],
        ]);
        expect(logLines(output)[0]).toMatchObject({ version: VERSION, node: process.version });
      } finally {
        taken.close();
      }
    },
  );

  it("an unusable TLS key is one fatal JSON line naming the files, exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "runstore-badkey-"));
    try {
      writeFileSync(join(dir, "cert.pem"), "not a certificate");
      writeFileSync(join(dir, "key.pem"), "not a key");
      const { code, output } = await runUntilExit({
        TLS_CERT_FILE: join(dir, "cert.pem"),
        TLS_KEY_FILE: join(dir, "key.pem"),
      });
      expect(code).toBe(2);
      expect(logLines(output)).toHaveLength(1);
      expect(logLines(output)[0]?.msg).toMatch(
        new RegExp(
          `^TLS_CERT_FILE=${join(dir, "cert.pem")}, TLS_KEY_FILE=${join(dir, "key.pem")} are not a usable`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const db = await createTestDatabase("startup", { migrate: false });

describe("start-up on MySQL", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  afterAll(() => db.drop());

  it("migrates, serves every write from MySQL, and has it all after a restart", async () => {
    const env = { DATABASE_URL: db.url };
    const first = await spawnServer(env);
    expect(logLines(first.stderr()).map((l) => l.msg)).toContain(
      `using MySQL at ${db.url}; applied migrations ${Object.keys(MIGRATIONS).join(", ")}`,
    );
    let store = new RemoteRunStore({ baseUrl: first.url });
    await store.put("r1", { threadId: "t1", userId: "alice", metadata: { k: "🦌" } });
    await store.updateStatus("r1", "running");
    await store.updateRunProgress("r1", { totalTokens: 5, lastAiMessage: "thinking" });
    await store.put("r2", { threadId: "t1", createdAt: "2026-01-01T00:00:00.123456Z" });
    await store.updateRunCompletion("r2", { status: "success", totalTokens: 9 });
    const before = await store.listByThread("t1");
    store.close();
    expect(await first.stop()).toBe(0);

    const second = await spawnServer(env);
    expect(second.stderr()).not.toContain("applied migrations");
    store = new RemoteRunStore({ baseUrl: second.url });
    try {
      expect(await store.listByThread("t1")).toEqual(before);
      expect(await store.get("r1", { userId: "alice" })).toMatchObject({
        status: "running",
        totalTokens: 5,
        lastAiMessage: "thinking",
        metadata: { k: "🦌" },
      });
      expect((await store.listInflight()).map((r) => r.runId)).toEqual(["r1"]);
    } finally {
      store.close();
      expect(await second.stop()).toBe(0);
    }
  });

  it("accepts a mariadb:// URL as it does mysql://", async () => {
    const server = await spawnServer({ DATABASE_URL: db.url.replace(/^mysql:/, "mariadb:") });
    const store = new RemoteRunStore({ baseUrl: server.url });
    try {
      await store.put("maria-1", { threadId: "t-maria" });
      expect((await store.get("maria-1"))?.threadId).toBe("t-maria");
    } finally {
      store.close();
      expect(await server.stop()).toBe(0);
    }
  });
});
