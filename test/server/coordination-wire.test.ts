import { type Client, Code, createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import {
  type CancelAction,
  idempotencyConflict,
  type Lease,
  type RemoteProtocol,
  RemoteRunStore,
  type RunRecord,
  type RunStore,
  RunStoreService,
  type TakeoverOptions,
  type ThreadOperationFields,
  threadConflict,
} from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MAX_INLINE_ROW_BYTES } from "../../src/bounded-details.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// docs/contract.md part 2 over the wire: every new RPC round-trips through a
// real server on port 0 in front of a MemoryRunStore, over gRPC, Connect and
// gRPC-Web. The service hands the store exactly what the client sent (a
// recording proxy sees each store call), conflicts arrive with their typed
// details and are never retried, and bad input is INVALID_ARGUMENT naming
// the field, refused by the server or, where the SDK cannot send it, by
// RemoteRunStore with the store's own message.

const PROTOCOLS: RemoteProtocol[] = ["grpc", "connect", "grpc-web"];

/** One store call as the service made it: method name and arguments. */
type StoreCall = [string, unknown[]];

/** `store`, with every call the service makes on it appended to `calls`. */
function recording(store: RunStore, calls: StoreCall[]): RunStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        calls.push([String(property), args]);
        return value.apply(target, args);
      };
    },
  });
}

/** Appends the name of every RPC the server answers to `names`. */
function rpcNames(names: string[]): Interceptor {
  return (next) => async (req) => {
    names.push(req.method.name);
    return next(req);
  };
}

/** The raw generated client over `protocol`, to send what RemoteRunStore refuses to. */
function rawClient(
  url: string,
  protocol: RemoteProtocol | "grpc+json",
  sessions: Http2SessionManager,
): Client<typeof RunStoreService> {
  const options = { baseUrl: url, sessionManager: sessions };
  switch (protocol) {
    case "grpc":
      return createClient(RunStoreService, createGrpcTransport(options));
    case "grpc+json":
      // application/grpc+json: not the lean unary path, connect-node's router answers.
      return createClient(
        RunStoreService,
        createGrpcTransport({ ...options, useBinaryFormat: false }),
      );
    case "connect":
      return createClient(
        RunStoreService,
        createConnectTransport({ ...options, httpVersion: "2" }),
      );
    case "grpc-web":
      return createClient(
        RunStoreService,
        createGrpcWebTransport({ ...options, httpVersion: "2" }),
      );
  }
}

const FAR = "2100-01-01T00:00:00.000000Z";

for (const protocol of PROTOCOLS) {
  describe(`part-2 RPCs over ${protocol} → server → MemoryRunStore`, () => {
    let backend: MemoryRunStore;
    let server: RunningServer;
    let store: RemoteRunStore;
    let sessions: Http2SessionManager;
    let raw: Client<typeof RunStoreService>;
    const rpcs: string[] = [];
    const received: StoreCall[] = [];

    beforeAll(async () => {
      backend = new MemoryRunStore();
      server = await startServer({
        store: recording(backend, received),
        port: 0,
        interceptors: [rpcNames(rpcs)],
      });
      store = new RemoteRunStore({ baseUrl: server.url, protocol });
      sessions = new Http2SessionManager(server.url);
      raw = rawClient(server.url, protocol, sessions);
    });
    afterAll(async () => {
      store.close();
      sessions.abort();
      await server.close();
    });
    beforeEach(() => {
      rpcs.length = 0;
      received.length = 0;
    });

    it("CreateThreadOperation hands the store every field and answers the row; a lost answer's retry gets it again", async () => {
      const fields: ThreadOperationFields = {
        threadId: "t-admit",
        ownerWorkerId: "worker-1",
        lease: { expiresAt: "2030-01-02T03:04:05.678901Z" },
        operationKind: "checkpoint_write",
        multitaskStrategy: "reject",
        assistantId: "lead",
        userId: "alice",
        modelName: "gpt-x",
        metadata: { source: "wire", n: [1, null] },
        kwargs: { input: "hi" },
        createdAt: "2026-01-01T00:00:00.000001Z",
        graceSeconds: 3,
        idempotencyKey: "key-admit",
        followUpToRunId: "r-before",
      };
      const admission = await store.createThreadOperation("r-admit", fields);
      expect(received).toEqual([["createThreadOperation", ["r-admit", fields]]]);
      expect(admission.takenOver).toEqual([]);
      expect(admission.run).toEqual(await backend.get("r-admit"));
      expect(admission.run).toMatchObject({
        runId: "r-admit",
        threadId: "t-admit",
        status: "pending",
        operationKind: "checkpoint_write",
        ownerWorkerId: "worker-1",
        leaseExpiresAt: "2030-01-02T03:04:05.678901Z",
        idempotencyKey: "key-admit",
        followUpToRunId: "r-before",
        createdAt: "2026-01-01T00:00:00.000001Z",
        metadata: { source: "wire", n: [1, null] },
        kwargs: { input: "hi" },
        cancelAction: null,
        cancelRequestedAt: null,
        stopReason: null,
        tokenUsageByModel: {},
        queued: false,
      });

      const { idempotencyKey: _, ...retry } = fields;
      expect(await store.createThreadOperation("r-admit", retry)).toEqual({
        run: admission.run,
        takenOver: [],
      });
    });

    it("CreateThreadOperation with interrupt answers the rows it took over, as they now are", async () => {
      await store.createThreadOperation("r-int-old", {
        threadId: "t-int",
        ownerWorkerId: "w1",
        lease: { expiresAt: FAR },
      });
      const { run, takenOver } = await store.createThreadOperation("r-int-new", {
        threadId: "t-int",
        ownerWorkerId: "w1",
        multitaskStrategy: "interrupt",
      });
      expect(run).toEqual(await backend.get("r-int-new"));
      expect(takenOver).toEqual([await backend.get("r-int-old")]);
      expect(takenOver[0]).toMatchObject({
        status: "interrupted",
        error: "Cancelled by newer run",
        ownerWorkerId: "w1",
      });
    });

    it("a thread conflict is ABORTED with a ThreadConflict detail, sent once and never retried", async () => {
      await store.createThreadOperation("r-busy", {
        threadId: "t-busy",
        ownerWorkerId: "w1",
        lease: { expiresAt: FAR },
      });
      for (const multitaskStrategy of ["reject", "rollback"] as const) {
        rpcs.length = 0;
        const error = await failureOf(
          store.createThreadOperation(`r-${multitaskStrategy}`, {
            threadId: "t-busy",
            ownerWorkerId: "w2",
            multitaskStrategy,
          }),
        );
        expect(error.code).toBe(Code.Aborted);
        expect(error.rawMessage).toBe("thread_id t-busy is busy: run r-busy is active");
        expect(threadConflict(error)).toEqual({ threadId: "t-busy", conflictingRunId: "r-busy" });
        expect(idempotencyConflict(error)).toBeNull();
        expect(rpcs).toEqual(["CreateThreadOperation"]);
        expect(await backend.get(`r-${multitaskStrategy}`)).toBeNull();
      }
      const rawError = await failureOf(
        raw.createThreadOperation({ runId: "r-raw", threadId: "t-busy", ownerWorkerId: "w2" }),
      );
      expect(rawError.findDetails(pb.ThreadConflictSchema)).toMatchObject([
        { threadId: "t-busy", conflictingRunId: "r-busy" },
      ]);
    });

    it("an idempotency conflict is ALREADY_EXISTS carrying the existing row, for admission and put alike", async () => {
      const { run: holder } = await store.createThreadOperation("r-key", {
        threadId: "t-key",
        ownerWorkerId: "w1",
        idempotencyKey: "key-1",
      });
      const attempts = [
        store.createThreadOperation("r-key-2", {
          threadId: "t-elsewhere",
          ownerWorkerId: "w2",
          idempotencyKey: "key-1",
        }),
        store.put("r-key-3", { threadId: "t-put", idempotencyKey: "key-1" }),
      ];
      for (const attempt of attempts) {
        rpcs.length = 0;
        const error = await failureOf(attempt);
        expect(error.code).toBe(Code.AlreadyExists);
        expect(error.rawMessage).toBe("idempotency_key is held by run r-key");
        expect(idempotencyConflict(error)).toEqual(holder);
        expect(threadConflict(error)).toBeNull();
      }
      expect(await backend.get("r-key-2")).toBeNull();
      expect(await backend.get("r-key-3")).toBeNull();
    });

    it("a row too large for a gRPC trailer travels as a reference, and the SDK reads it with Get", async () => {
      const metadata = { blob: "x".repeat(100_000) };
      const { run: holder } = await store.createThreadOperation("r-big", {
        threadId: "t-big",
        ownerWorkerId: "w1",
        metadata,
        idempotencyKey: "key-big",
      });
      rpcs.length = 0;
      const error = await failureOf(
        store.createThreadOperation("r-big-2", {
          threadId: "t-big-2",
          ownerWorkerId: "w1",
          idempotencyKey: "key-big",
        }),
      );
      expect(error.code).toBe(Code.AlreadyExists);
      expect(error.rawMessage).toBe("idempotency_key is held by run r-big");
      expect(idempotencyConflict(error)).toEqual(holder);
      expect(rpcs).toEqual(["CreateThreadOperation", "Get"]);

      const rawError = await failureOf(
        raw.put({ runId: "r-big-3", threadId: "t-big-3", idempotencyKey: "key-big" }),
      );
      expect(rawError.code).toBe(Code.AlreadyExists);
      const [detail] = rawError.findDetails(pb.IdempotencyConflictSchema);
      expect(detail?.existing).toMatchObject({ runId: "r-big", idempotencyKey: "key-big" });
      expect(detail?.existing?.createdAt).toBeUndefined();
      expect(detail?.existing?.metadata).toBeUndefined();
    });

    it("a run id taken by another operation is ALREADY_EXISTS without a detail", async () => {
      await store.createThreadOperation("r-taken", { threadId: "t-taken", ownerWorkerId: "w1" });
      rpcs.length = 0;
      const error = await failureOf(
        store.createThreadOperation("r-taken", { threadId: "t-taken", ownerWorkerId: "w2" }),
      );
      expect(error.code).toBe(Code.AlreadyExists);
      expect(error.rawMessage).toBe("run_id r-taken already exists as a different operation");
      expect(error.details).toEqual([]);
      expect(idempotencyConflict(error)).toBeNull();
      expect(threadConflict(error)).toBeNull();
      expect(rpcs).toEqual(["CreateThreadOperation"]);
    });

    it("StartRun, RenewLease, UpdateLease, RequestCancel, FinalizeIfNotCancelled: the cancel reaches the owner and beats completion", async () => {
      await store.createThreadOperation("r-life", {
        threadId: "t-life",
        ownerWorkerId: "w1",
        lease: { durationMs: 60_000 },
      });
      expect(await store.startRun("r-life")).toBe(true);
      expect(await store.startRun("r-life")).toBe(false);
      expect(await store.startRun("r-missing")).toBe(false);
      expect(await store.renewLease("r-life", "w1", { durationMs: 60_000 })).toEqual({
        renewed: true,
        cancelAction: null,
      });
      expect(await store.renewLease("r-life", "w2", { durationMs: 60_000 })).toEqual({
        renewed: false,
        cancelAction: null,
      });
      rpcs.length = 0;
      expect(await store.updateLease("r-life", "w1", { expiresAt: FAR })).toBe(true);
      expect(rpcs).toEqual(["RenewLease"]);
      expect((await backend.get("r-life"))?.leaseExpiresAt).toBe(FAR);

      expect(await store.requestCancel("r-life", "rollback")).toBe("rollback");
      expect(await store.requestCancel("r-life", "interrupt")).toBe("rollback");
      expect(await store.requestCancel("r-missing", "interrupt")).toBeNull();
      expect(await store.renewLease("r-life", "w1", { durationMs: 1000 })).toEqual({
        renewed: true,
        cancelAction: "rollback",
      });
      expect(await store.finalizeIfNotCancelled("r-life", "success")).toEqual({
        finalized: false,
        cancelAction: "rollback",
      });
      expect((await backend.get("r-life"))?.status).toBe("running");

      await store.createThreadOperation("r-done", { threadId: "t-done", ownerWorkerId: "w1" });
      expect(await store.startRun("r-done")).toBe(true);
      received.length = 0;
      expect(
        await store.finalizeIfNotCancelled("r-done", "error", {
          error: "boom",
          stopReason: "failed",
        }),
      ).toEqual({ finalized: true, cancelAction: null });
      expect(received).toEqual([
        ["finalizeIfNotCancelled", ["r-done", "error", { error: "boom", stopReason: "failed" }]],
      ]);
      expect(await backend.get("r-done")).toMatchObject({
        status: "error",
        error: "boom",
        stopReason: "failed",
      });
    });

    it("a lease reaches the store exactly: an instant to the microsecond, or a duration", async () => {
      await store.createThreadOperation("r-lease", { threadId: "t-lease", ownerWorkerId: "w1" });
      received.length = 0;
      await store.renewLease("r-lease", "w1", { durationMs: 90_061.5 });
      await store.renewLease("r-lease", "w1", { durationMs: 0 });
      await store.renewLease("r-lease", "w1", { expiresAt: "2030-01-02T03:04:05.678901Z" });
      await store.renewLease("r-lease", "w1", {
        expiresAt: new Date("2030-01-02T04:04:05.678+01:00"),
      });
      await store.claimNextRun("w1", { durationMs: 1500 }, { threadId: "t-nothing-queued" });
      expect(received).toEqual([
        ["renewLease", ["r-lease", "w1", { durationMs: 90_061.5 }]],
        ["renewLease", ["r-lease", "w1", { durationMs: 0 }]],
        ["renewLease", ["r-lease", "w1", { expiresAt: "2030-01-02T03:04:05.678901Z" }]],
        ["renewLease", ["r-lease", "w1", { expiresAt: "2030-01-02T03:04:05.678000Z" }]],
        ["claimNextRun", ["w1", { durationMs: 1500 }, { threadId: "t-nothing-queued" }]],
      ]);
    });

    it("ClaimForTakeover and ListInflightWithExpiredLease reclaim an expired lease, never a live one", async () => {
      await store.createThreadOperation("r-orphan", {
        threadId: "t-orphan",
        ownerWorkerId: "w-dead",
        lease: { expiresAt: "2020-01-01T00:00:00Z" },
        createdAt: "2019-01-01T00:00:00Z",
      });
      await store.createThreadOperation("r-alive", {
        threadId: "t-alive",
        ownerWorkerId: "w1",
        lease: { expiresAt: FAR },
        createdAt: "2019-01-02T00:00:00Z",
      });
      const before = "2019-12-31T00:00:00Z";
      const expired = await store.listInflightWithExpiredLease({ before, graceSeconds: 0 });
      expect(expired).toEqual([await backend.get("r-orphan")]);
      expect(await store.listInflightWithExpiredLease({ before })).toEqual(expired);

      const takeover: TakeoverOptions = {
        error: "worker died",
        stopReason: "orphan_recovered",
        graceSeconds: 0,
      };
      expect(await store.claimForTakeover("r-alive", takeover)).toBe(false);
      received.length = 0;
      expect(await store.claimForTakeover("r-orphan", takeover)).toBe(true);
      expect(received).toEqual([["claimForTakeover", ["r-orphan", takeover]]]);
      expect(await store.claimForTakeover("r-orphan", { error: "again" })).toBe(false);
      expect(await backend.get("r-orphan")).toMatchObject({
        status: "error",
        error: "worker died",
        stopReason: "orphan_recovered",
      });
      expect(await store.listInflightWithExpiredLease({ before, graceSeconds: 0 })).toEqual([]);
    });

    it("ClaimNextRun starts a thread's queued runs oldest first, one at a time", async () => {
      for (const [runId, createdAt] of [
        ["r-q2", "2019-02-02T00:00:00Z"],
        ["r-q1", "2019-02-01T00:00:00Z"],
      ]) {
        const { run } = await store.createThreadOperation(runId, {
          threadId: "t-queue",
          ownerWorkerId: "w-admit",
          multitaskStrategy: "enqueue",
          lease: { expiresAt: FAR },
          createdAt,
        });
        expect(run).toMatchObject({ queued: true, ownerWorkerId: null, leaseExpiresAt: null });
      }
      const first = await store.claimNextRun(
        "w-claim",
        { expiresAt: FAR },
        { threadId: "t-queue" },
      );
      expect(first).toEqual(await backend.get("r-q1"));
      expect(first).toMatchObject({
        status: "running",
        ownerWorkerId: "w-claim",
        leaseExpiresAt: FAR,
        queued: false,
      });
      expect(
        await store.claimNextRun("w-claim", { durationMs: 1000 }, { threadId: "t-queue" }),
      ).toBeNull();
      expect(await store.finalizeIfNotCancelled("r-q1", "success")).toEqual({
        finalized: true,
        cancelAction: null,
      });
      const second = await store.claimNextRun(
        "w-claim",
        { expiresAt: FAR },
        { threadId: "t-queue" },
      );
      expect(second?.runId).toBe("r-q2");
      expect(
        await store.claimNextRun("w-claim", { expiresAt: FAR }, { threadId: "t-queue" }),
      ).toBeNull();
    });

    it("GetManyByThread, the regenerate reads and DeleteThreadOperation", async () => {
      const rows: [
        string,
        string | null,
        "success" | "error" | "pending",
        Record<string, string>,
      ][] = [
        ["r-a", "alice", "success", { regenerate_from_run_id: "src-2" }],
        ["r-b", "alice", "success", { regenerate_from_run_id: "src-1" }],
        ["r-c", "bob", "success", { regenerate_from_run_id: "src-2" }],
        ["r-d", "alice", "error", { regenerate_from_run_id: "src-3" }],
        ["r-e", "alice", "pending", { replay_kind: "edit", regenerate_from_run_id: "src-1" }],
        ["r-f", "alice", "pending", { replay_kind: "edit", regenerate_from_run_id: "" }],
      ];
      for (const [runId, userId, status, metadata] of rows) {
        await store.put(runId, { threadId: "t-reads", userId, status, metadata });
      }
      const read = async (runId: string) => (await backend.get(runId)) as RunRecord;

      expect(
        await store.getManyByThread("t-reads", ["r-a", "r-e", "r-missing", "r-a", "r-int-new"]),
      ).toEqual({ "r-a": await read("r-a"), "r-e": await read("r-e") });
      expect(await store.getManyByThread("t-reads", ["r-a", "r-c"], { userId: "bob" })).toEqual({
        "r-c": await read("r-c"),
      });
      expect(await store.getManyByThread("t-reads", [])).toEqual({});
      expect(await store.listSuccessfulRegenerateSources("t-reads")).toEqual(["src-1", "src-2"]);
      expect(await store.listSuccessfulRegenerateSources("t-reads", { userId: "bob" })).toEqual([
        "src-2",
      ]);
      expect(await store.listEditRegenerateRuns("t-reads")).toEqual([await read("r-e")]);
      expect(await store.listEditRegenerateRuns("t-reads", { userId: "bob" })).toEqual([]);

      rpcs.length = 0;
      received.length = 0;
      await store.deleteThreadOperation("r-a", "bob");
      expect(await backend.get("r-a")).not.toBeNull();
      await store.deleteThreadOperation("r-a", null);
      expect(await backend.get("r-a")).toBeNull();
      expect(rpcs).toEqual(["Delete", "Delete"]);
      expect(received).toEqual([
        ["delete", ["r-a", { userId: "bob" }]],
        ["delete", ["r-a", { userId: null }]],
      ]);
    });

    it("part 1's RPCs carry part 2's inputs: put's new fields, guarded writes, stop reasons, usage maps", async () => {
      await store.put("r-p1", {
        threadId: "t-p1",
        status: "running",
        operationKind: "artifact_write",
        stopReason: "why",
        ownerWorkerId: "w9",
        leaseExpiresAt: FAR,
        idempotencyKey: "key-p1",
        followUpToRunId: "r-p0",
      });
      expect(await store.get("r-p1")).toMatchObject({
        operationKind: "artifact_write",
        stopReason: "why",
        ownerWorkerId: "w9",
        leaseExpiresAt: FAR,
        idempotencyKey: "key-p1",
        followUpToRunId: "r-p0",
      });

      const usage = {
        "gpt-x": { inputTokens: 1, outputTokens: 2, totalTokens: 3, cacheReadTokens: 0 },
      };
      received.length = 0;
      await store.updateRunProgress("r-p1", { totalTokens: 3, tokenUsageByModel: usage });
      await store.updateRunProgress("r-p1", { lastAiMessage: "partial" });
      await store.updateRunProgress("r-p1", { tokenUsageByModel: {} });
      expect(received.map(([, [, progress]]) => progress)).toEqual([
        { totalTokens: 3, lastAiMessage: null, firstHumanMessage: null, tokenUsageByModel: usage },
        { lastAiMessage: "partial", firstHumanMessage: null, tokenUsageByModel: null },
        { lastAiMessage: null, firstHumanMessage: null, tokenUsageByModel: {} },
      ]);
      await store.updateRunProgress("r-p1", { tokenUsageByModel: usage });
      expect((await store.get("r-p1"))?.tokenUsageByModel).toEqual(usage);

      expect(
        await store.updateStatus("r-p1", "interrupted", { stopReason: "user", guarded: true }),
      ).toBe(true);
      const final = { m: { inputTokens: 5, outputTokens: 5, totalTokens: 10 } };
      expect(
        await store.updateRunCompletion("r-p1", {
          status: "error",
          guarded: true,
          tokenUsageByModel: final,
        }),
      ).toBe(true);
      expect(await store.updateRunCompletion("r-p1", { status: "success", guarded: true })).toBe(
        false,
      );
      expect(await store.updateStatus("r-p1", "running", { guarded: true })).toBe(false);
      expect(await store.get("r-p1")).toMatchObject({
        status: "error",
        stopReason: "user",
        tokenUsageByModel: final,
      });
      // Unguarded, part 1's behaviour: always applied; an omitted map is written as {}.
      expect(await store.updateRunCompletion("r-p1", { status: "success" })).toBe(true);
      expect((await store.get("r-p1"))?.tokenUsageByModel).toEqual({});
    });

    it("bad input is INVALID_ARGUMENT naming the field, from the server and changes nothing", async () => {
      const cases: [Promise<unknown>, string][] = [
        [raw.renewLease({ runId: "r-bad", ownerWorkerId: "w1" }), "lease is required"],
        [
          raw.renewLease({ runId: "r-bad", ownerWorkerId: "w1", lease: {} }),
          "lease must have one of expires_at and duration",
        ],
        [
          raw.renewLease({
            runId: "r-bad",
            ownerWorkerId: "w1",
            lease: { lease: { case: "duration", value: { seconds: -1n } } },
          }),
          "lease.duration must be 0 to 31622400000 ms",
        ],
        [raw.claimNextRun({ ownerWorkerId: "w1" }), "lease is required"],
        [
          raw.requestCancel({ runId: "r-bad", action: pb.CancelAction.UNSPECIFIED }),
          "action is required: interrupt or rollback",
        ],
        [
          raw.requestCancel({ runId: "r-bad", action: 7 as pb.CancelAction }),
          "action has unknown value 7",
        ],
        [
          raw.createThreadOperation({
            runId: "r-bad",
            threadId: "t-bad",
            ownerWorkerId: "w1",
            graceSeconds: -1n,
          }),
          "grace_seconds must be >= 0, got -1",
        ],
        [
          raw.createThreadOperation({
            runId: "r-bad",
            threadId: "t-bad",
            ownerWorkerId: "w1",
            operationKind: 9 as pb.OperationKind,
          }),
          "operation_kind has unknown value 9",
        ],
        [
          raw.createThreadOperation({ runId: "r-bad", threadId: "t-bad" }),
          "owner_worker_id must be 1 to 128 characters, got 0",
        ],
        [
          raw.claimForTakeover({ runId: "r-bad", error: "e", graceSeconds: -1n }),
          "grace_seconds must be >= 0, got -1",
        ],
        [
          raw.listInflightWithExpiredLease({ graceSeconds: -5n }),
          "grace_seconds must be >= 0, got -5",
        ],
        [
          raw.finalizeIfNotCancelled({ runId: "r-bad", status: pb.RunStatus.UNSPECIFIED }),
          "status is required",
        ],
        [
          raw.getManyByThread({ threadId: "t-bad", runIds: ["r-ok", ""] }),
          "run_ids must be 1 to 64 characters, got 0",
        ],
        [
          raw.put({ runId: "r-bad", threadId: "t-bad", operationKind: 9 as pb.OperationKind }),
          "operation_kind has unknown value 9",
        ],
        [
          raw.updateStatus({
            runId: "r-bad",
            status: pb.RunStatus.RUNNING,
            stopReason: "x".repeat(51),
          }),
          "stop_reason must be at most 50 characters, got 51",
        ],
      ];
      for (const [call, message] of cases) {
        const error = await failureOf(call);
        expect(error.code, message).toBe(Code.InvalidArgument);
        expect(error.rawMessage).toBe(message);
      }
      expect(await backend.get("r-bad")).toBeNull();
    });

    it("what the SDK cannot send is refused locally with the store's own message, and nothing is sent", async () => {
      const fields = { threadId: "t-local", ownerWorkerId: "w1" };
      const pairs: [(s: RunStore) => Promise<unknown>, string][] = [
        [
          (s) => s.createThreadOperation("r-local", { ...fields, graceSeconds: -1 }),
          "grace_seconds",
        ],
        [
          (s) => s.createThreadOperation("r-local", { ...fields, operationKind: "nope" as "run" }),
          "operation_kind",
        ],
        [(s) => s.requestCancel("r-local", "stop" as CancelAction), "action"],
        [(s) => s.renewLease("r-local", "w1", null as unknown as Lease), "lease"],
        [(s) => s.renewLease("r-local", "w1", { durationMs: -1 }), "lease.duration"],
        [(s) => s.claimNextRun("w1", {} as Lease), "lease"],
        [(s) => s.claimForTakeover("r-local", {} as TakeoverOptions), "error"],
        [(s) => s.listInflightWithExpiredLease({ graceSeconds: 1.5 }), "grace_seconds"],
        [
          (s) =>
            s.updateRunCompletion("r-local", {
              status: "success",
              tokenUsageByModel: { m: { inputTokens: -1, outputTokens: 0, totalTokens: 0 } },
            }),
          "token_usage_by_model.input_tokens",
        ],
      ];
      for (const [call, field] of pairs) {
        rpcs.length = 0;
        const remote = await failureOf(call(store));
        const local = await failureOf(call(backend));
        expect(remote.code, field).toBe(Code.InvalidArgument);
        expect(remote.rawMessage).toBe(local.rawMessage);
        expect(remote.rawMessage.startsWith(`${field} `), remote.rawMessage).toBe(true);
        expect(rpcs).toEqual([]);
      }
    });
  });
}

describe("RemoteRunStore's part-2 methods share the call options and close()", () => {
  it("an aborted signal and a closed store end every new method with CANCELED, sending nothing", async () => {
    const rpcs: string[] = [];
    const server = await startServer({
      store: new MemoryRunStore(),
      port: 0,
      interceptors: [rpcNames(rpcs)],
    });
    const store = new RemoteRunStore({ baseUrl: server.url });
    const calls = (call?: { signal: AbortSignal }): Promise<unknown>[] => [
      store.createThreadOperation("r", { threadId: "t", ownerWorkerId: "w" }, call),
      store.startRun("r", call),
      store.renewLease("r", "w", { durationMs: 1 }, call),
      store.updateLease("r", "w", { durationMs: 1 }, call),
      store.requestCancel("r", "interrupt", call),
      store.finalizeIfNotCancelled("r", "success", {}, call),
      store.claimForTakeover("r", { error: "e" }, call),
      store.listInflightWithExpiredLease({}, call),
      store.claimNextRun("w", { durationMs: 1 }, {}, call),
      store.deleteThreadOperation("r", null, call),
      store.getManyByThread("t", ["r"], {}, call),
      store.listSuccessfulRegenerateSources("t", {}, call),
      store.listEditRegenerateRuns("t", {}, call),
    ];
    try {
      const aborted = AbortSignal.abort();
      for (const call of calls({ signal: aborted })) {
        expect((await failureOf(call)).code).toBe(Code.Canceled);
      }
      store.close();
      for (const call of calls()) expect((await failureOf(call)).code).toBe(Code.Canceled);
      expect(rpcs).toEqual([]);
    } finally {
      store.close();
      await server.close();
    }
  });
});

describe("conflict details on every server path", () => {
  let server: RunningServer;
  let sessions: Http2SessionManager;

  beforeAll(async () => {
    const backend = new MemoryRunStore();
    server = await startServer({ store: backend, port: 0 });
    await backend.createThreadOperation("r-holder", {
      threadId: "t-holder",
      ownerWorkerId: "w1",
      idempotencyKey: "key-holder",
    });
    sessions = new Http2SessionManager(server.url);
  });
  afterAll(async () => {
    sessions.abort();
    await server.close();
  });

  for (const protocol of ["grpc", "grpc+json", "connect", "grpc-web"] as const) {
    it(`${protocol}: ThreadConflict and IdempotencyConflict decode from the raw error`, async () => {
      const raw = rawClient(server.url, protocol, sessions);
      const busy = await failureOf(
        raw.createThreadOperation({ runId: "r-x", threadId: "t-holder", ownerWorkerId: "w2" }),
      );
      expect(busy.code).toBe(Code.Aborted);
      expect(threadConflict(busy)).toEqual({
        threadId: "t-holder",
        conflictingRunId: "r-holder",
      });
      const held = await failureOf(
        raw.createThreadOperation({
          runId: "r-y",
          threadId: "t-other",
          ownerWorkerId: "w2",
          idempotencyKey: "key-holder",
        }),
      );
      expect(held.code).toBe(Code.AlreadyExists);
      expect(idempotencyConflict(held)).toMatchObject({
        runId: "r-holder",
        threadId: "t-holder",
        ownerWorkerId: "w1",
        idempotencyKey: "key-holder",
        status: "pending",
      });
    });
  }

  it("no row a store can hold makes a trailer too large: the connection keeps serving", async () => {
    const backend = new MemoryRunStore();
    const other = await startServer({ store: backend, port: 0 });
    const store = new RemoteRunStore({ baseUrl: other.url });
    try {
      // Just over the inline bound, and a megabyte (Node refuses header blocks over 64 KiB).
      for (const size of [MAX_INLINE_ROW_BYTES, 1024 * 1024]) {
        const metadata = { blob: "x".repeat(size) };
        await store.put(`r-${size}`, { threadId: "t", metadata, idempotencyKey: `k-${size}` });
        const error = await failureOf(
          store.put(`r-${size}-2`, { threadId: "t", idempotencyKey: `k-${size}` }),
        );
        expect(idempotencyConflict(error)?.metadata).toEqual(metadata);
        expect((await store.get(`r-${size}`))?.metadata).toEqual(metadata);
      }
    } finally {
      store.close();
      await other.close();
    }
  });

  it("a referenced row deleted before the SDK reads it: ALREADY_EXISTS without a detail", async () => {
    /** A store whose rows vanish for readers, as if deleted right after the conflict. */
    class Vanishing extends MemoryRunStore {
      override async get(): Promise<RunRecord | null> {
        return null;
      }
    }
    const backend = new Vanishing();
    const other = await startServer({ store: backend, port: 0 });
    const store = new RemoteRunStore({ baseUrl: other.url });
    try {
      const metadata = { blob: "x".repeat(10_000) };
      await store.put("r-gone", { threadId: "t", metadata, idempotencyKey: "k-gone" });
      const error = await failureOf(
        store.put("r-gone-2", { threadId: "t", idempotencyKey: "k-gone" }),
      );
      expect(error.code).toBe(Code.AlreadyExists);
      expect(error.rawMessage).toBe("idempotency_key is held by run r-gone");
      expect(idempotencyConflict(error)).toBeNull();
    } finally {
      store.close();
      await other.close();
    }
  });
});
