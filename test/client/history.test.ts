import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, type Interceptor } from "@connectrpc/connect";
import {
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
): Promise<Harness> {
  const received: Received[] = [];
  const server = await startServer({
    store: memory,
    port: 0,
    ...options,
    interceptors: [recorder(received), ...(options.interceptors ?? [])],
  });
  const store = new RemoteRunStore({ baseUrl: server.url, timeoutMs: 30_000 });
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

/** `count` pending runs on `threads` threads, put in-process. */
async function seedPending(memory: MemoryRunStore, count: number, threads = 1): Promise<void> {
  for (let i = 0; i < count; i++) {
    const runId = `run-${String(i).padStart(5, "0")}`;
    await memory.put(runId, { threadId: `thread-${i % threads}`, createdAt: instant(i) });
  }
}

/** A store whose page methods are missing, as a RunStore may lack them (they are optional). */
function withoutPages(memory: MemoryRunStore): MemoryRunStore {
  for (const name of [
    "listByThreadPage",
    "listPendingPage",
    "listInflightPage",
    "listInflightWithExpiredLeasePage",
  ]) {
    Object.defineProperty(memory, name, { value: undefined });
  }
  return memory;
}

const ids = (runs: RunRecord[]) => runs.map((run) => run.runId);

describe("the drop-in lists on a server that cannot page", () => {
  it("a store without pages: the first page is UNIMPLEMENTED and one unpaged call answers", async () => {
    const { memory, store, received } = await open(withoutPages(new MemoryRunStore()));
    await seedPending(memory, 2500);
    const runs = await store.listPending();
    expect(runs).toEqual(await memory.listPending());
    expect(runs).toHaveLength(2500);
    expect(received).toEqual([
      { method: "ListPending", pageSize: 500, pageToken: "" },
      { method: "ListPending", pageSize: undefined, pageToken: "" },
    ]);
  });

  it("a store without pages: listByThread past a page asks with part 1's limit", async () => {
    const { memory, store, received } = await open(withoutPages(new MemoryRunStore()));
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
