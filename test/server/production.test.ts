import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { RemoteRunStore } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../support/until.js";

// The production recipe of docs/operations.md, for real: `npm run build` in a
// build directory of its own (a copy of the sources, so a build here never
// races another test reading dist/), the artefact (package.json,
// package-lock.json, dist/, client/package.json, client/dist/) copied into a
// fresh directory, `npm ci --omit=dev` there (no TypeScript, no tsx), then
// the server started from it as a container would, called, and stopped.

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const version = (
  JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
).version;

/** The files a production image needs besides node_modules (docs/operations.md#production). */
const ARTEFACT = [
  "package.json",
  "package-lock.json",
  "dist",
  "client/package.json",
  "client/dist",
];

let work: string;
let app: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "runstore-production-"));
  const build = join(work, "build");
  for (const path of [
    "package.json",
    "package-lock.json",
    "tsconfig.base.json",
    "tsconfig.build.json",
    "src",
    "client/package.json",
    "client/tsconfig.build.json",
    "client/src",
    "console",
    "scripts/build-console.mjs",
  ]) {
    cpSync(join(root, path), join(build, path), { recursive: true });
  }
  // The repository's dev dependencies, linked rather than installed again;
  // the workspace link points at this copy's client.
  mkdirSync(join(build, "node_modules/@runstore"), { recursive: true });
  for (const name of readdirSync(join(root, "node_modules"))) {
    if (name !== "@runstore" && !name.startsWith(".package-lock")) {
      symlinkSync(join(root, "node_modules", name), join(build, "node_modules", name));
    }
  }
  symlinkSync(join(build, "client"), join(build, "node_modules/@runstore/client"));
  await run("npm", ["run", "build"], { cwd: build });

  app = join(work, "app");
  for (const path of ARTEFACT) cpSync(join(build, path), join(app, path), { recursive: true });
  await run("npm", ["ci", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund"], {
    cwd: app,
  });
}, 300_000);
afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves on "close": the exit code once every process writing to the pipes is gone. */
  exited: Promise<number | null>;
}

function launch(command: string, args: string[]): Started {
  const child = spawn(command, args, {
    cwd: app,
    env: { PATH: process.env.PATH ?? "", PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** The server's JSON lines; a line that is not JSON fails the parse, and with it the test. */
function jsonLines(output: string): { level: number; msg: string; [key: string]: unknown }[] {
  return output
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith(">"))
    .map((line) => JSON.parse(line));
}

async function listeningUrl(server: Started): Promise<string> {
  await until(() => /listening on https?:\/\//.test(server.output()), "the listening line", 30_000);
  const line = jsonLines(server.output()).find((l) => l.msg.startsWith("listening on "));
  return String(line?.url);
}

describe("production install (npm ci --omit=dev on the built artefact)", () => {
  it("has no dev dependency: neither TypeScript nor tsx is installed", () => {
    expect(existsSync(join(app, "node_modules/typescript"))).toBe(false);
    expect(existsSync(join(app, "node_modules/tsx"))).toBe(false);
    expect(existsSync(join(app, "node_modules/pino"))).toBe(true);
  });

  it("node dist/main.js starts, answers a call, and exits 0 on SIGTERM with every line JSON", async () => {
    const server = launch(process.execPath, ["dist/main.js"]);
    const store = new RemoteRunStore({ baseUrl: await listeningUrl(server) });
    try {
      await store.put("r1", { threadId: "t1" });
      expect((await store.get("r1"))?.threadId).toBe("t1");
    } finally {
      store.close();
    }
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    const lines = jsonLines(server.output());
    expect(lines[0]).toMatchObject({ msg: `runstore ${version} starting`, version });
    expect(lines.at(-1)?.msg).toBe("stopped");
  }, 60_000);

  it("npm start runs the build without rebuilding, and SIGTERM to npm stops the server gracefully", async () => {
    const server = launch("npm", ["start"]);
    const url = await listeningUrl(server);
    const pid = Number(jsonLines(server.output())[0]?.pid);
    const store = new RemoteRunStore({ baseUrl: url });
    try {
      await store.put("r1", { threadId: "t1" });
    } finally {
      store.close();
    }
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    const lines = jsonLines(server.output());
    expect(lines.find((l) => l.msg === "shutting down")).toMatchObject({ signal: "SIGTERM" });
    expect(lines.at(-1)?.msg).toBe("stopped");
    // The server process itself is gone, not orphaned.
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  }, 60_000);

  it("--help, -h and --version answer and exit 0 without starting", async () => {
    for (const flag of ["--help", "-h"]) {
      const { stdout } = await run(process.execPath, ["dist/main.js", flag], { cwd: app });
      expect(stdout).toContain(`runstore ${version}:`);
      expect(stdout).toContain("AUTH_TOKENS");
      expect(stdout).not.toContain("listening");
    }
    const { stdout } = await run(process.execPath, ["dist/main.js", "--version"], { cwd: app });
    expect(stdout).toBe(`${version}\n`);
  });
});
