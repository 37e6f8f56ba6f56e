import { type Client, Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RunStoreService } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// The page rules of docs/contract.md part 3 that only the wire can state,
// since neither SDK sends them (the rest are history-*.json, run by every
// runner): a list request without page fields answers as in part 1, an
// explicit page_size of 0 pages (and is refused), and ListByThread's limit
// cannot be combined with paging. A raw gRPC client to a real server on port 0.

describe("history pages on the wire", () => {
  let server: RunningServer;
  let sessions: Http2SessionManager;
  let raw: Client<typeof RunStoreService>;

  beforeAll(async () => {
    const store = new MemoryRunStore();
    for (const [i, runId] of ["r1", "r2", "r3"].entries()) {
      await store.put(runId, { threadId: "t1", createdAt: `2025-03-01T00:00:0${i}Z` });
    }
    server = await startServer({ store, port: 0 });
    sessions = new Http2SessionManager(server.url);
    raw = createClient(
      RunStoreService,
      createGrpcTransport({ baseUrl: server.url, sessionManager: sessions }),
    );
  });

  afterAll(async () => {
    sessions.abort();
    await server.close();
  });

  it("a list without page_size or page_token answers as in part 1: has_more false, no token", async () => {
    const byThread = await raw.listByThread({ threadId: "t1", limit: 2 });
    expect(byThread.runs.map((run) => run.runId)).toEqual(["r3", "r2"]);
    expect([byThread.hasMore, byThread.nextPageToken]).toEqual([false, ""]);
    const pending = await raw.listPending({});
    expect(pending.runs.map((run) => run.runId)).toEqual(["r1", "r2", "r3"]);
    expect([pending.hasMore, pending.nextPageToken]).toEqual([false, ""]);
  });

  it("limit with page_size or page_token is INVALID_ARGUMENT naming limit", async () => {
    for (const page of [{ pageSize: 2 }, { pageToken: "x" }, { pageSize: 2, pageToken: "x" }]) {
      const error = await failureOf(raw.listByThread({ threadId: "t1", limit: 2, ...page }));
      expect([error.code, error.rawMessage]).toEqual([
        Code.InvalidArgument,
        "limit cannot be combined with page_size or page_token",
      ]);
    }
  });

  it("page_size 0 sent explicitly pages, and is INVALID_ARGUMENT naming page_size", async () => {
    const calls = [
      raw.listByThread({ threadId: "t1", pageSize: 0 }),
      raw.listPending({ pageSize: 0 }),
      raw.listInflight({ pageSize: 0 }),
      raw.listInflightWithExpiredLease({ pageSize: 0 }),
      raw.searchRuns({ pageSize: 0 }),
      raw.listThreads({ pageSize: 0 }),
    ];
    for (const call of calls) {
      const error = await failureOf(call);
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith("page_size ")).toBe(true);
    }
  });

  it("a page: has_more with a token, then the last page without one", async () => {
    const first = await raw.listByThread({ threadId: "t1", pageSize: 2 });
    expect(first.runs.map((run) => run.runId)).toEqual(["r3", "r2"]);
    expect(first.hasMore).toBe(true);
    const last = await raw.listByThread({ threadId: "t1", pageToken: first.nextPageToken });
    expect(last.runs.map((run) => run.runId)).toEqual(["r1"]);
    expect([last.hasMore, last.nextPageToken]).toEqual([false, ""]);
  });
});
