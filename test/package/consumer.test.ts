import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// The SDK as another project gets it: `npm pack` (prepack builds it), the
// tarball installed into a fresh project with its peer dependencies, a
// program type-checked under strict + exactOptionalPropertyTypes + NodeNext,
// then run against a live server on port 0.

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const tsc = join(root, "node_modules/typescript/bin/tsc");

/** The SDK's public names, exactly: anything more is a leak of internals. */
const PUBLIC_NAMES = [
  "CANCEL_ACTIONS",
  "Code",
  "ConnectError",
  "DEFAULT_KEEPALIVE_INTERVAL_MS",
  "DEFAULT_MAX_REQUEST_BYTES",
  "DEFAULT_RETRY_POLICY",
  "MULTITASK_STRATEGIES",
  "OPERATION_KINDS",
  "RUN_CHANGE_KINDS",
  "RUN_STATUSES",
  "RemoteRunStore",
  "RunStoreService",
  "THREAD_STATUSES",
  "idempotencyConflict",
  "isTransientError",
  "keepByteOrderMarks",
  "nowTimestamp",
  "retryPolicy",
  "threadConflict",
  "withRetry",
];

const PROGRAM = `
import { Code, ConnectError, RemoteRunStore, type RunRecord } from "@runstore/client";

const token: string | undefined = process.env.RUNSTORE_TOKEN;
// Optional options spelled as a consumer under exactOptionalPropertyTypes must.
const store = new RemoteRunStore({
  baseUrl: process.argv[2] ?? "http://127.0.0.1:50051",
  ...(token === undefined ? {} : { token }),
});
await store.put("run-1", { threadId: "thread-1", status: "running", metadata: { source: "consumer" } });
const run: RunRecord | null = await store.get("run-1");
let refused = "";
try {
  await store.put("", { threadId: "thread-1" });
} catch (error) {
  const e = ConnectError.from(error);
  refused = e.code === Code.InvalidArgument ? "INVALID_ARGUMENT" : String(e.code);
}
const names = Object.keys(await import("@runstore/client")).sort();
store.close();
console.log(JSON.stringify({ run, refused, names }));
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    outDir: "dist",
    types: ["node"],
  },
  include: ["index.ts"],
};

describe("the packed SDK in a consumer project", () => {
  let work: string;
  let server: RunningServer;
  const store = new MemoryRunStore();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "runstore-consumer-"));
    server = await startServer({ store, port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it("packs (prepack builds), installs, type-checks strictly and talks to a live server", async () => {
    const packed = await run(
      "npm",
      ["pack", "-w", "@runstore/client", "--pack-destination", work],
      {
        cwd: root,
      },
    );
    const tarball = join(work, packed.stdout.trim().split("\n").at(-1) ?? "");
    const app = join(work, "app");
    await run("mkdir", ["-p", app]);
    await writeFile(join(app, "package.json"), JSON.stringify({ type: "module", private: true }));
    await writeFile(join(app, "tsconfig.json"), JSON.stringify(TSCONFIG));
    await writeFile(join(app, "index.ts"), PROGRAM);
    // Peers at the versions the SDK names. --prefer-offline takes what npm's
    // cache holds: the tarballs the repository's own install fetched, but not
    // the version lists (packuments) needed to resolve these specs, which
    // `npm ci` does not cache, so npm may still ask the registry for them
    // (reachable on our machines and in CI).
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        tarball,
        "@bufbuild/protobuf@2.13.0",
        "@connectrpc/connect@2.1.2",
        "@connectrpc/connect-node@2.1.2",
        "@types/node@20",
      ],
      { cwd: app },
    );

    const shipped = await readdir(join(app, "node_modules/@runstore/client/dist"), {
      recursive: true,
    });
    expect(shipped).toContain("index.d.ts");
    expect(shipped.filter((f) => /health|reflection|framing|\.spec\./.test(f))).toEqual([]);

    await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app });
    const { stdout } = await run(process.execPath, ["dist/index.js", server.url], { cwd: app });
    const answer = JSON.parse(stdout);
    expect(answer.refused).toBe("INVALID_ARGUMENT");
    expect(answer.names).toEqual(PUBLIC_NAMES);
    expect(answer.run).toMatchObject({
      runId: "run-1",
      threadId: "thread-1",
      status: "running",
      metadata: { source: "consumer" },
    });
    expect(await store.get("run-1")).toMatchObject({ runId: "run-1", status: "running" });
  }, 180_000);
});
