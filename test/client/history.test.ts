import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type RemoteProtocol,
  RemoteRunStore,
  type RunRecord,
  type RunSearch,
  type RunStats,
  type ThreadSummary,
} from "@runstore/client";
import {
  pb,
  searchFromProto,
  searchToProto,
  statsFromProto,
  statsToProto,
  threadFromProto,
  threadToProto,
} from "@runstore/client/internal";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";
import { FlakyStore } from "../support/flaky-store.js";

// RemoteRunStore's history methods and the drop-in lists that walk pages,
// against a real server on port 0 over the memory store. The server records
// every request it receives (method and page fields), so a test counts the
// pages a walk asked for.

/** One request as the server received it. */
interface Received {
  method: string;
  pageSize: number | undefined;
  pageToken: string;
}

/** The four part-1/part-2 lists that take page fields. */
const PAGED_LISTS = new Set([
  "ListByThread",
  "ListPending",
  "ListInflight",
  "ListInflightWithExpiredLease",
]);

/** Records every request of RunStoreService (the outermost interceptor: what the client sent). */
function recorder(received: Received[]): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      const message = req.message as { pageSize?: number; pageToken?: string };
      received.push({
        method: req.method.name,
        pageSize: message.pageSize,
        pageToken: message.pageToken ?? "",
      });
    }
    return next(req);
  };
}

/** A server that predates pages: the lists' page fields are unknown to it, so unread. */
const ignoringPageFields: Interceptor = (next) => async (req) => {
  if (!req.stream && PAGED_LISTS.has(req.method.name)) {
    const message = req.message as { pageSize?: number; pageToken?: string };
    message.pageSize = undefined;
    message.pageToken = "";
  }
  return next(req);
};

interface Harness {
  memory: MemoryRunStore;
  store: RemoteRunStore;
  received: Received[];
}

const opened: { store: RemoteRunStore; server: RunningServer }[] = [];

async function open(
  memory = new MemoryRunStore(),
  options: Partial<ServerOptions> = {},
  protocol: RemoteProtocol = "grpc",
): Promise<Harness> {
  const received: Received[] = [];
  const server = await startServer({
    store: memory,
    port: 0,
    ...options,
    interceptors: [recorder(received), ...(options.interceptors ?? [])],
  });
  const store = new RemoteRunStore({
    baseUrl: server.url,
    protocol,
    timeoutMs: 30_000,
    retry: { maxAttempts: 4, initialBackoffMs: 1, maxBackoffMs: 1 },
  });
  opened.push({ store, server });
  return { memory, store, received };
}

afterEach(async () => {
  for (const { store, server } of opened.splice(0)) {
    store.close();
    await server.close();
  }
});

/** The instant `i` ms after a fixed past start, so every run has its own created_at. */
function instant(i: number): string {
  return new Date(Date.UTC(2026, 0, 1) + i).toISOString();
}

/** `count` pending runs on thread-0, oldest first, put in-process; their ids. */
async function seedPending(
  memory: MemoryRunStore,
  count: number,
  metadata?: Record<string, string>,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(`run-${String(i).padStart(5, "0")}`);
    await memory.put(ids[i] as string, { threadId: "thread-0", createdAt: instant(i), metadata });
  }
  return ids;
}

/**
 * A server whose store cannot page (as the server answered before every
 * store had the page methods): a list request with page fields is UNIMPLEMENTED.
 */
const unpageable: Interceptor = (next) => async (req) => {
  const message = req.message as { pageSize?: number; pageToken?: string };
  if (!req.stream && PAGED_LISTS.has(req.method.name)) {
    if (message.pageSize !== undefined || message.pageToken !== "") {
      throw new ConnectError(
        `${req.method.name} pages is not built on this store`,
        Code.Unimplemented,
      );
    }
  }
  return next(req);
};

const ids = (runs: RunRecord[]) => runs.map((run) => run.runId);

describe("the drop-in lists on a server that cannot page", () => {
  it("a store that cannot page: the first page is UNIMPLEMENTED and one unpaged call answers", async () => {
    const { memory, store, received } = await open(undefined, { interceptors: [unpageable] });
    await seedPending(memory, 2500);
    const runs = await store.listPending();
    expect(runs).toEqual(await memory.listPending());
    expect(runs).toHaveLength(2500);
    expect(received).toEqual([
      { method: "ListPending", pageSize: 500, pageToken: "" },
      { method: "ListPending", pageSize: undefined, pageToken: "" },
    ]);
  });

  it("a store that cannot page: listByThread past a page asks with part 1's limit", async () => {
    const { memory, store, received } = await open(undefined, { interceptors: [unpageable] });
    await seedPending(memory, 1200);
    const runs = await store.listByThread("thread-0", { limit: 1100 });
    expect(ids(runs)).toEqual(ids(await memory.listByThread("thread-0", { limit: 1100 })));
    expect(runs).toHaveLength(1100);
    expect(received.map((r) => r.pageSize)).toEqual([500, undefined]);
  });

  it("an older server (page fields unknown) answers every row at once: one request", async () => {
    const { memory, store, received } = await open(undefined, {
      interceptors: [ignoringPageFields],
    });
    await seedPending(memory, 2500);
    expect(await store.listPending()).toEqual(await memory.listPending());
    expect(await store.listInflight()).toEqual(await memory.listInflight());
    expect(await store.listInflightWithExpiredLease()).toEqual(
      await memory.listInflightWithExpiredLease(),
    );
    expect(received.map((r) => [r.method, r.pageSize])).toEqual([
      ["ListPending", 500],
      ["ListInflight", 500],
      ["ListInflightWithExpiredLease", 500],
    ]);
  });

  it("an older server: listByThread past a page ends after the one answer (its default 100)", async () => {
    const { memory, store, received } = await open(undefined, {
      interceptors: [ignoringPageFields],
    });
    await seedPending(memory, 1200);
    const runs = await store.listByThread("thread-0", { limit: 2000 });
    expect(ids(runs)).toEqual(ids(await memory.listByThread("thread-0")));
    expect(runs).toHaveLength(100);
    expect(received).toHaveLength(1);
  });

  it("listByThread up to a page is part 1's call on any server", async () => {
    const { memory, store, received } = await open(undefined, {
      interceptors: [ignoringPageFields],
    });
    await seedPending(memory, 600);
    const runs = await store.listByThread("thread-0", { limit: 500 });
    expect(ids(runs)).toEqual(ids(await memory.listByThread("thread-0", { limit: 500 })));
    expect(received).toEqual([{ method: "ListByThread", pageSize: undefined, pageToken: "" }]);
  });
});

describe("the drop-in lists walk pages", () => {
  it("2,500 pending runs: each recovery list reads 5 pages of 500, the rows of the unpaged call", async () => {
    const { memory, store, received } = await open();
    const seeded = await seedPending(memory, 2500);
    expect(await store.listPending()).toEqual(await memory.listPending());
    expect(await store.listInflight()).toEqual(await memory.listInflight());
    const expired = await store.listInflightWithExpiredLease();
    expect(expired).toEqual(await memory.listInflightWithExpiredLease());
    expect(ids(expired)).toEqual(seeded);
    for (const method of ["ListPending", "ListInflight", "ListInflightWithExpiredLease"]) {
      const pages = received.filter((r) => r.method === method);
      expect(pages.map((r) => r.pageSize)).toEqual([500, 500, 500, 500, 500]);
      expect(pages[0]?.pageToken).toBe("");
      expect(new Set(pages.map((r) => r.pageToken)).size).toBe(5);
    }
  });

  it("listByThread past a page reads pages up to its limit; up to a page it is one call", async () => {
    const { memory, store, received } = await open();
    const newestFirst = (await seedPending(memory, 2500)).reverse();
    expect(ids(await store.listByThread("thread-0", { limit: 1234 }))).toEqual(
      newestFirst.slice(0, 1234),
    );
    expect(received.map((r) => r.pageSize)).toEqual([500, 500, 234]);
    received.length = 0;
    expect(ids(await store.listByThread("thread-0", { limit: 10_000 }))).toEqual(newestFirst);
    expect(received.map((r) => r.pageSize)).toEqual([500, 500, 500, 500, 500]);
    received.length = 0;
    expect(ids(await store.listByThread("thread-0"))).toEqual(newestFirst.slice(0, 100));
    expect(received.map((r) => r.pageSize)).toEqual([undefined]);
  });

  it("a page over the server's response budget is asked again at half the size", async () => {
    const memory = new MemoryRunStore();
    // ~3.1 KB a run: 500 of them are over 1 MiB, 250 are not.
    const { store, received } = await open(memory, { limits: { maxResponseBytes: 1024 * 1024 } });
    const seeded = await seedPending(memory, 600, { blob: "x".repeat(3000) });
    expect(ids(await store.listPending())).toEqual(seeded);
    expect(received.map((r) => r.pageSize)).toEqual([500, 250, 250, 250]);
  });
});

describe("the history RPCs end to end", () => {
  /** alice's runs on two threads (one busy) and one of bob's; what the store says of them. */
  async function seedHistory(memory: MemoryRunStore) {
    await memory.put("a1", {
      threadId: "ta",
      userId: "alice",
      modelName: "gpt-4o",
      createdAt: "2026-03-01T15:00:00Z",
      metadata: { source: "api" },
    });
    await memory.put("a2", {
      threadId: "ta",
      userId: "alice",
      modelName: "claude",
      createdAt: "2026-03-01T17:00:00Z",
      metadata: { source: "console", n: 1 },
    });
    await memory.updateRunCompletion("a1", {
      status: "success",
      totalInputTokens: 10,
      totalOutputTokens: 5,
      totalTokens: 15,
    });
    await memory.updateRunCompletion("a2", {
      status: "error",
      totalInputTokens: 20,
      totalOutputTokens: 10,
      totalTokens: 30,
      tokenUsageByModel: {
        claude: { inputTokens: 20, outputTokens: 10, totalTokens: 30, cacheReadTokens: 4 },
      },
    });
    await memory.put("a3", {
      threadId: "tb",
      userId: "alice",
      status: "running",
      createdAt: "2026-03-02T03:00:00Z",
    });
    await memory.put("b1", { threadId: "ta", userId: "bob", status: "error" });
  }

  for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
    it(`${protocol}: searchRuns iterates every page; searchRunsPage filters`, async () => {
      const { memory, store, received } = await open(undefined, {}, protocol);
      await seedHistory(memory);
      const found: string[] = [];
      for await (const run of store.searchRuns({ userId: "alice" }, 1)) found.push(run.runId);
      expect(found).toEqual(["a3", "a2", "a1"]);
      expect(received.filter((r) => r.method === "SearchRuns")).toHaveLength(3);
      const failed: RunRecord[] = [];
      for await (const run of store.searchRuns({ userId: "alice", statuses: ["error"] })) {
        failed.push(run);
      }
      expect(failed).toEqual([await memory.get("a2")]);
      const page = await store.searchRunsPage(
        { metadata: { source: "console", n: 1.0 } },
        { pageSize: 5 },
      );
      expect([ids(page.items), page.nextPageToken, page.hasMore]).toEqual([["a2"], null, false]);
      const first = await store.searchRunsPage({ userId: "alice" }, { pageSize: 2 });
      expect(first).toEqual(await memory.searchRunsPage({ userId: "alice" }, { pageSize: 2 }));
      const rest = await store.searchRunsPage(
        { userId: "alice" },
        { pageSize: 2, pageToken: first.nextPageToken },
      );
      expect([ids(rest.items), rest.hasMore]).toEqual([["a1"], false]);
    });
  }

  it("getRunStats: the store's statistics, days in the caller's offset", async () => {
    const { memory, store } = await open();
    await seedHistory(memory);
    const options = { userId: "alice", utcOffset: "+08:00" };
    const stats = await store.getRunStats(options);
    expect(stats).toEqual(await memory.getRunStats(options));
    expect([stats.totalRuns, stats.byStatus, stats.activeRuns, stats.failedRuns]).toEqual([
      3,
      { running: 1, success: 1, error: 1 },
      1,
      1,
    ]);
    expect(stats.days.map((day) => [day.date, day.tokens.runs])).toEqual([
      ["2026-03-01", 1],
      ["2026-03-02", 2],
    ]);
    expect(stats.byModel.claude?.cacheReadTokens).toBe(4);
  });

  it("listThreads iterates threads, most recent activity first", async () => {
    const { memory, store } = await open();
    await seedHistory(memory);
    const threads: ThreadSummary[] = [];
    for await (const thread of store.listThreads({ userId: "alice" }, 1)) threads.push(thread);
    expect(threads.map((t) => [t.threadId, t.runCount, t.status, t.totalTokens])).toEqual([
      ["tb", 1, "busy", 0],
      ["ta", 2, "error", 45],
    ]);
    expect(await store.listThreadsPage({ userId: "alice" }, { pageSize: 5 })).toEqual(
      await memory.listThreadsPage({ userId: "alice" }, { pageSize: 5 }),
    );
  });

  it("deleteThread: FailedPrecondition on a busy thread, then forced; counts rows", async () => {
    const { memory, store } = await open();
    await seedHistory(memory);
    const refused = await failureOf(store.deleteThread("tb"));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("tb");
    expect(await memory.get("a3")).not.toBeNull();
    expect(await store.deleteThread("tb", { force: true })).toBe(1);
    expect(await store.deleteThread("tb")).toBe(0);
    expect(await store.deleteThread("ta", { userId: "alice" })).toBe(2);
    expect(ids(await memory.listByThread("ta"))).toEqual(["b1"]);
  });
});

describe("the history RPCs are retried on UNAVAILABLE", () => {
  const METHODS = ["searchRunsPage", "getRunStats", "listThreadsPage", "deleteThread"] as const;
  const CALLS: Record<(typeof METHODS)[number], (s: RemoteRunStore) => Promise<unknown>> = {
    searchRunsPage: (s) => s.searchRunsPage({}),
    getRunStats: (s) => s.getRunStats(),
    listThreadsPage: (s) => s.listThreadsPage(),
    deleteThread: (s) => s.deleteThread("thread-1"),
  };
  for (const method of METHODS) {
    it(method, async () => {
      const backend = new FlakyStore(METHODS);
      const { store } = await open(backend);
      backend.fail(method, 2);
      await CALLS[method](store);
      expect(backend.calls(method)).toBe(3);
    });
  }
});

describe("arguments the wire cannot carry are refused before any request", () => {
  it.each([
    [{ pageSize: 2.5 }, "page_size must be an integer from 1 to 1000"],
    [{ pageSize: 2 ** 31 }, "page_size must be an integer from 1 to 1000"],
    [{ pageToken: 7 as unknown as string }, "page_token must be a string, got number"],
  ])("page %o", async (page, message) => {
    const { store, received } = await open();
    const error = await failureOf(store.listPendingPage({}, page));
    expect([error.code, error.rawMessage]).toEqual([Code.InvalidArgument, message]);
    expect(received).toEqual([]);
  });

  it.each([
    [{ statuses: "error" }, "statuses must be a list"],
    [
      { statuses: ["failed"] },
      "statuses[0] must be one of pending, running, success, error, timeout, interrupted",
    ],
    [
      { operationKinds: ["task"] },
      "operation_kinds[0] must be one of run, checkpoint_write, artifact_write, delete",
    ],
    [{ metadata: { score: Number.NaN } }, "metadata.score must be a string, number or bool"],
    [{ metadata: { tags: ["a"] } }, "metadata.tags must be a string, number or bool"],
    [{ userId: "\ud800" }, "user_id must be valid Unicode (it has a lone surrogate)"],
  ])("search %o", async (search, message) => {
    const { store, received } = await open();
    const error = await failureOf(store.searchRunsPage(search as unknown as RunSearch));
    expect([error.code, error.rawMessage]).toEqual([Code.InvalidArgument, message]);
    expect(received).toEqual([]);
  });

  it("deleteThread's force must be a boolean", async () => {
    const { store, received } = await open();
    const error = await failureOf(
      store.deleteThread("thread-1", { force: "yes" as unknown as boolean }),
    );
    expect([error.code, error.rawMessage]).toEqual([
      Code.InvalidArgument,
      "force must be a boolean, got string",
    ]);
    expect(received).toEqual([]);
  });
});

describe("the history records survive the wire", () => {
  it("a search: every filter, through SearchRunsRequest bytes", () => {
    const search: RunSearch = {
      userId: "alice",
      threadId: "thread-1",
      statuses: ["error", "timeout"],
      assistantId: "lead_agent",
      modelName: "gpt-4o",
      operationKinds: ["run", "delete"],
      createdAfter: "2026-01-01T00:00:00.000000Z",
      createdBefore: "2026-02-01T00:00:00.000000Z",
      metadata: { source: "console", priority: 2, pinned: true },
    };
    const bytes = toBinary(
      pb.SearchRunsRequestSchema,
      create(pb.SearchRunsRequestSchema, searchToProto(search)),
    );
    expect(searchFromProto(fromBinary(pb.SearchRunsRequestSchema, bytes))).toEqual(search);
  });

  it("run statistics, through GetRunStatsResponse bytes", () => {
    const totals = (runs: number) => ({
      runs,
      inputTokens: 10 * runs,
      outputTokens: 5 * runs,
      totalTokens: 15 * runs,
      cacheReadTokens: runs,
    });
    const stats: RunStats = {
      totalRuns: 3,
      byStatus: { running: 1, error: 2 },
      activeRuns: 1,
      failedRuns: 2,
      tokens: totals(3),
      byModel: { "gpt-4o": totals(2), unknown: totals(1) },
      days: [
        { date: "2026-01-01", tokens: totals(1), byModel: { unknown: totals(1) } },
        { date: "2026-01-02", tokens: totals(2), byModel: { "gpt-4o": totals(2) } },
      ],
    };
    const bytes = toBinary(
      pb.GetRunStatsResponseSchema,
      create(pb.GetRunStatsResponseSchema, statsToProto(stats)),
    );
    expect(statsFromProto(fromBinary(pb.GetRunStatsResponseSchema, bytes))).toEqual(stats);
  });

  it("a thread summary of each status, through ThreadSummary bytes", () => {
    for (const status of ["idle", "busy", "interrupted", "error"] as const) {
      const thread: ThreadSummary = {
        threadId: "thread-1",
        runCount: 4,
        latestRunId: "run-4",
        latestRunStatus: "interrupted",
        latestRunUpdatedAt: "2026-01-02T03:04:05.123456Z",
        lastActivityAt: "2026-01-02T03:04:06.000001Z",
        totalTokens: 1234,
        status,
      };
      const bytes = toBinary(
        pb.ThreadSummarySchema,
        create(pb.ThreadSummarySchema, threadToProto(thread)),
      );
      expect(threadFromProto(fromBinary(pb.ThreadSummarySchema, bytes))).toEqual(thread);
    }
  });
});
