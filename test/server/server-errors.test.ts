import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  type OwnerOptions,
  type RunRecord,
  type RunStatus,
  type RunStore,
  RunStoreService,
} from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { expectInvalid } from "../contract/run-store-contract.js";
import { deferred } from "../support/deferred.js";
import { failureOf } from "../support/failure.js";
import { openRemote, type RemoteHandle } from "../support/remote.js";

// docs/contract.md "Errors": the codes that only exist over the wire, and the wire-only
// input rules (enum numbers, Timestamp and int64 ranges) the SDK cannot send.

const open: RemoteHandle[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((h) => h.close()));
});

async function remote(backend: RunStore, options: Parameters<typeof openRemote>[2] = {}) {
  const handle = await openRemote(backend, "grpc", options);
  open.push(handle);
  return handle;
}

/** The raw generated client, to send what RemoteRunStore would refuse to. */
function rawClient(url: string) {
  const sessionManager = new Http2SessionManager(url);
  open.push({ close: async () => sessionManager.abort() } as RemoteHandle);
  return createClient(RunStoreService, createGrpcTransport({ baseUrl: url, sessionManager }));
}

describe("request size limit → RESOURCE_EXHAUSTED", () => {
  it("refuses a request over the default 4 MiB and stores nothing", async () => {
    const backend = new MemoryRunStore();
    const { store } = await remote(backend);
    const big = "x".repeat(4 * 1024 * 1024 + 1);
    const error = await failureOf(store.put("r1", { threadId: "t1", metadata: { big } }));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(await backend.get("r1")).toBeNull();
    await store.put("r2", { threadId: "t1", metadata: { small: "x".repeat(1024 * 1024) } });
    expect((await backend.get("r2"))?.threadId).toBe("t1");
  });

  it("honours a configured maximum", async () => {
    const backend = new MemoryRunStore();
    const { store } = await remote(backend, { maxRequestBytes: 1024 });
    const error = await failureOf(store.put("r1", { threadId: "t1", error: "e".repeat(2048) }));
    expect(error.code).toBe(Code.ResourceExhausted);
    await store.put("r1", { threadId: "t1", error: "e".repeat(512) });
    expect((await backend.get("r1"))?.error).toBe("e".repeat(512));
  });
});

describe("anything unexpected → INTERNAL with no SQL, stack or credentials", () => {
  it("scrubs the message and reports the original to the server's hook", async () => {
    const secret = "mysql://root:hunter2@db/runs";
    const failing = new MemoryRunStore();
    failing.get = async () => {
      throw new Error(
        `ER_PARSE_ERROR: You have an error in your SQL syntax near 'SELECT * FROM runs' (${secret})`,
      );
    };
    const seen: string[] = [];
    const { store } = await remote(failing, {
      onInternalError: (error, procedure) => seen.push(`${procedure}: ${String(error)}`),
    });
    const error = await failureOf(store.get("r1"));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.message).not.toMatch(/SQL|SELECT|hunter2|root|at /);
    expect(seen).toEqual([
      `Get: Error: ER_PARSE_ERROR: You have an error in your SQL syntax near 'SELECT * FROM runs' (${secret})`,
    ]);
  });
});

describe("BoolValue results: true / false / unknown", () => {
  it("maps a store that cannot tell (null) to an unset BoolValue and back to null", async () => {
    /** A store that, like DeerFlow's base class, cannot tell whether an update matched. */
    class CannotTell extends MemoryRunStore {
      override async updateStatus(runId: string, status: RunStatus): Promise<boolean> {
        await super.updateStatus(runId, status);
        return null as unknown as boolean;
      }
      override async updateRunCompletion(): Promise<boolean> {
        return null as unknown as boolean;
      }
    }
    const { store, server } = await remote(new CannotTell());
    await store.put("r1", { threadId: "t1" });
    expect(await store.updateStatus("r1", "running")).toBeNull();
    expect(await store.updateRunCompletion("r1", { status: "success" })).toBeNull();
    const raw = rawClient(server.url);
    const response = await raw.updateStatus({ runId: "r1", status: pb.RunStatus.RUNNING });
    expect(response.updated).toBeUndefined();
  });

  it("sends true and false as set BoolValues", async () => {
    const { store, server } = await remote(new MemoryRunStore());
    await store.put("r1", { threadId: "t1" });
    const raw = rawClient(server.url);
    expect((await raw.updateStatus({ runId: "r1", status: pb.RunStatus.RUNNING })).updated).toBe(
      true,
    );
    expect((await raw.updateStatus({ runId: "nope", status: pb.RunStatus.RUNNING })).updated).toBe(
      false,
    );
    expect(
      (await raw.updateRunCompletion({ runId: "nope", status: pb.RunStatus.SUCCESS })).updated,
    ).toBe(false);
  });
});

describe("wire-only input rules → INVALID_ARGUMENT naming the field", () => {
  it("status: UNSPECIFIED is pending in Put, required in UpdateStatus / UpdateRunCompletion; unknown numbers refused", async () => {
    const backend = new MemoryRunStore();
    const { server } = await remote(backend);
    const raw = rawClient(server.url);
    await raw.put({ runId: "r1", threadId: "t1", status: pb.RunStatus.UNSPECIFIED });
    expect((await backend.get("r1"))?.status).toBe("pending");
    await expectInvalid(raw.updateStatus({ runId: "r1" }), "status");
    await expectInvalid(raw.updateStatus({ runId: "r1", status: 99 as pb.RunStatus }), "status");
    await expectInvalid(raw.updateRunCompletion({ runId: "r1" }), "status");
    await expectInvalid(
      raw.put({ runId: "r2", threadId: "t1", status: 7 as pb.RunStatus }),
      "status",
    );
    await expectInvalid(
      raw.put({ runId: "r2", threadId: "t1", multitaskStrategy: 42 as pb.MultitaskStrategy }),
      "multitask_strategy",
    );
    expect(await backend.get("r2")).toBeNull();
    expect((await backend.get("r1"))?.status).toBe("pending");
  });

  it("Timestamp: nanos out of range, or outside years 1000..9999", async () => {
    const backend = new MemoryRunStore();
    const { server } = await remote(backend);
    const raw = rawClient(server.url);
    const ts = (seconds: bigint, nanos: number) => create(TimestampSchema, { seconds, nanos });
    await expectInvalid(
      raw.put({ runId: "r1", threadId: "t1", createdAt: ts(0n, 1_000_000_000) }),
      "created_at",
    );
    await expectInvalid(
      raw.put({ runId: "r1", threadId: "t1", createdAt: ts(0n, -1) }),
      "created_at",
    );
    await expectInvalid(
      raw.put({ runId: "r1", threadId: "t1", createdAt: ts(253402300800n, 0) }),
      "created_at",
    );
    await expectInvalid(raw.listPending({ before: ts(-30610224001n, 0) }), "before");
    await expectInvalid(raw.listInflight({ before: ts(-(2n ** 62n), 0) }), "before");
    expect(await backend.get("r1")).toBeNull();
    await raw.put({ runId: "r1", threadId: "t1", createdAt: ts(1767225600n, 123456789) });
    expect((await backend.get("r1"))?.createdAt).toBe("2026-01-01T00:00:00.123456Z");
  });

  it("int64 counters: negative, or beyond 2^53-1", async () => {
    const backend = new MemoryRunStore();
    const { server } = await remote(backend);
    const raw = rawClient(server.url);
    await backend.put("r1", { threadId: "t1", status: "running" });
    await expectInvalid(
      raw.updateRunCompletion({
        runId: "r1",
        status: pb.RunStatus.SUCCESS,
        totalTokens: 2n ** 53n,
      }),
      "total_tokens",
    );
    await expectInvalid(
      raw.updateRunCompletion({ runId: "r1", status: pb.RunStatus.SUCCESS, messageCount: -1n }),
      "message_count",
    );
    await expectInvalid(
      raw.updateRunProgress({ runId: "r1", llmCallCount: 2n ** 63n - 1n }),
      "llm_call_count",
    );
    expect((await backend.get("r1")) as RunRecord).toMatchObject({
      status: "running",
      totalTokens: 0,
    });
  });
});

describe("cancellation and deadlines", () => {
  /**
   * A MemoryRunStore whose reads hang until release(), as a stuck database
   * would; `entered` resolves when a read has reached the store.
   */
  function stuckStore() {
    const store = new MemoryRunStore();
    const entered = deferred();
    const released = deferred();
    const get = store.get.bind(store);
    store.get = async (runId: string, options?: OwnerOptions) => {
      entered.resolve();
      await released.promise;
      return get(runId, options);
    };
    // Released before afterEach closes the server, which waits for its calls.
    return { store, entered: entered.promise, release: () => released.resolve() };
  }

  it("a passed deadline is DEADLINE_EXCEEDED", async () => {
    const stuck = stuckStore();
    const { store } = await remote(stuck.store);
    try {
      const error = await failureOf(store.get("r1", {}, { timeoutMs: 30 }));
      expect(error.code).toBe(Code.DeadlineExceeded);
    } finally {
      stuck.release();
    }
  });

  it("an aborted signal is CANCELED", async () => {
    const stuck = stuckStore();
    const { store } = await remote(stuck.store);
    const controller = new AbortController();
    const call = store.get("r1", {}, { signal: controller.signal });
    await stuck.entered;
    controller.abort();
    try {
      expect((await failureOf(call)).code).toBe(Code.Canceled);
    } finally {
      stuck.release();
    }
  });
});
