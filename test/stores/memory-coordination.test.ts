import {
  Code,
  idempotencyConflict,
  nowTimestamp,
  type RunRecord,
  type ThreadOperationFields,
  threadConflict,
} from "@runstore/client";
import { addMicroseconds } from "@runstore/client/internal";
import { beforeEach, describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";

// MemoryRunStore's part 2 (docs/contract.md, "Coordination"), rule by rule,
// with exact answers. The shared contract cases run every backend through the
// same rules; these stay as the reference store's own unit tests.

const T0 = "2026-01-01T00:00:00.000000Z";
const T1 = "2026-01-01T00:00:01.000000Z";
const T2 = "2026-01-01T00:00:02.000000Z";
const T3 = "2026-01-01T00:00:03.000000Z";
/** A lease long expired, past any grace used here. */
const PAST = "2000-01-01T00:00:00.000000Z";
/** A lease that is live for the whole test. */
const FUTURE = "9000-01-01T00:00:00.000000Z";
const LIVE = { expiresAt: FUTURE };
const EXPIRED = { expiresAt: PAST };

/** The full record a row has by default, with `fields` over it; updated_at is not compared. */
function record(runId: string, threadId: string, fields: Partial<RunRecord> = {}): RunRecord {
  return {
    runId,
    threadId,
    assistantId: null,
    userId: null,
    modelName: null,
    status: "pending",
    multitaskStrategy: "reject",
    metadata: {},
    kwargs: {},
    error: null,
    createdAt: expect.any(String),
    updatedAt: expect.any(String),
    totalInputTokens: 0,
    totalOutputTokens: 0,
    totalTokens: 0,
    llmCallCount: 0,
    leadAgentTokens: 0,
    subagentTokens: 0,
    middlewareTokens: 0,
    messageCount: 0,
    lastAiMessage: null,
    firstHumanMessage: null,
    operationKind: "run",
    stopReason: null,
    ownerWorkerId: null,
    leaseExpiresAt: null,
    cancelAction: null,
    cancelRequestedAt: null,
    idempotencyKey: null,
    followUpToRunId: null,
    tokenUsageByModel: {},
    queued: false,
    ...fields,
  };
}

let store: MemoryRunStore;

beforeEach(() => {
  store = new MemoryRunStore();
});

/** Admits `runId` on `threadId` as `owner` (default w1) with a live lease unless given. */
function admit(runId: string, threadId: string, fields: Partial<ThreadOperationFields> = {}) {
  return store.createThreadOperation(runId, {
    threadId,
    ownerWorkerId: "w1",
    lease: LIVE,
    ...fields,
  });
}

/** The stored row, which must exist. */
async function row(runId: string): Promise<RunRecord> {
  const found = await store.get(runId);
  expect(found, `run ${runId}`).not.toBeNull();
  return found as RunRecord;
}

/** A snapshot of every row named, to prove a refused call changed nothing. */
function rows(...runIds: string[]) {
  return Promise.all(runIds.map((id) => store.get(id)));
}

describe("new rows", () => {
  it("put inserts part 2's defaults", async () => {
    await store.put("r1", { threadId: "t", createdAt: T0 });
    expect(await row("r1")).toEqual(record("r1", "t", { createdAt: T0 }));
  });

  it("an admission inserts a pending row owned by the caller, holding the given lease", async () => {
    const admission = await admit("r1", "t", {
      createdAt: T0,
      modelName: " m ",
      metadata: { a: 1 },
      idempotencyKey: "k",
      followUpToRunId: "r0",
      operationKind: "checkpoint_write",
    });
    const expected = record("r1", "t", {
      createdAt: T0,
      modelName: "m",
      metadata: { a: 1 },
      ownerWorkerId: "w1",
      leaseExpiresAt: FUTURE,
      idempotencyKey: "k",
      followUpToRunId: "r0",
      operationKind: "checkpoint_write",
    });
    expect(admission).toEqual({ run: expected, takenOver: [] });
    expect(await row("r1")).toEqual(admission.run);
  });

  it("a relative lease is an instant on the store's clock", async () => {
    const before = nowTimestamp();
    const { run } = await admit("r1", "t", { lease: { durationMs: 30_000 } });
    const after = nowTimestamp();
    const lease = run.leaseExpiresAt as string;
    expect(lease >= addMicroseconds(before, 30_000_000)).toBe(true);
    expect(lease <= addMicroseconds(after, 30_000_000)).toBe(true);
  });

  it("answers copies: changing one changes nothing stored", async () => {
    const { run } = await admit("r1", "t", { metadata: { a: 1 } });
    await store.updateStatus("r1", "running");
    await store.updateRunProgress("r1", {
      tokenUsageByModel: { m: { inputTokens: 1, outputTokens: 0, totalTokens: 0 } },
    });
    run.metadata.a = 2;
    const read = await row("r1");
    read.tokenUsageByModel.m = { inputTokens: 9, outputTokens: 9, totalTokens: 9 };
    expect((await row("r1")).metadata).toEqual({ a: 1 });
    expect((await row("r1")).tokenUsageByModel).toEqual({
      m: { inputTokens: 1, outputTokens: 0, totalTokens: 0 },
    });
  });
});

describe("admission: reject", () => {
  it("fails with a thread conflict naming the oldest active row, changing nothing", async () => {
    await admit("r1", "t", { createdAt: T1 });
    await store.put("p0", { threadId: "t", createdAt: T0, status: "running" });
    const before = await rows("r1", "p0");
    const error = await failureOf(admit("r2", "t", { ownerWorkerId: "w2" }));
    expect(error.code).toBe(Code.Aborted);
    expect(error.rawMessage).toBe("thread_id t is busy: run p0 is active");
    expect(threadConflict(error)).toEqual({ threadId: "t", conflictingRunId: "p0" });
    expect(idempotencyConflict(error)).toBeNull();
    expect(await rows("r1", "p0", "r2")).toEqual([...before, null]);
  });

  it("sees active rows of every kind, expired leases and queued rows too", async () => {
    await admit("op", "t1", { operationKind: "delete", lease: EXPIRED });
    await admit("q", "t2", { multitaskStrategy: "enqueue" });
    for (const [thread, busy] of [
      ["t1", "op"],
      ["t2", "q"],
    ]) {
      const error = await failureOf(admit("new", thread as string));
      expect(threadConflict(error)).toEqual({ threadId: thread, conflictingRunId: busy });
    }
  });

  it("admits once the thread's rows are terminal, and on other threads", async () => {
    await admit("r1", "t");
    await store.updateStatus("r1", "success");
    expect((await admit("r2", "t")).run.runId).toBe("r2");
    expect((await admit("r3", "other")).run.runId).toBe("r3");
  });
});

describe("admission: interrupt and rollback", () => {
  it("a live lease of another worker blocks; nothing changes", async () => {
    await admit("r1", "t", { createdAt: T0 });
    const before = await rows("r1");
    for (const strategy of ["interrupt", "rollback"] as const) {
      const error = await failureOf(
        admit("r2", "t", { ownerWorkerId: "w2", multitaskStrategy: strategy }),
      );
      expect(error.code).toBe(Code.Aborted);
      expect(threadConflict(error)).toEqual({ threadId: "t", conflictingRunId: "r1" });
    }
    expect(await rows("r1", "r2")).toEqual([...before, null]);
  });

  it("a live lease with no owner counts as another worker's", async () => {
    await store.put("p", { threadId: "t", leaseExpiresAt: FUTURE });
    const error = await failureOf(admit("r2", "t", { multitaskStrategy: "interrupt" }));
    expect(threadConflict(error)).toEqual({ threadId: "t", conflictingRunId: "p" });
  });

  it("the caller's own live run is taken over", async () => {
    await admit("r1", "t", { createdAt: T0 });
    const { run, takenOver } = await admit("r2", "t", {
      createdAt: T1,
      multitaskStrategy: "interrupt",
    });
    const over = record("r1", "t", {
      createdAt: T0,
      status: "interrupted",
      error: "Cancelled by newer run",
      ownerWorkerId: "w1",
      leaseExpiresAt: FUTURE,
    });
    expect(takenOver).toEqual([over]);
    expect(await row("r1")).toEqual(takenOver[0]);
    expect(run).toEqual(
      record("r2", "t", {
        createdAt: T1,
        multitaskStrategy: "interrupt",
        ownerWorkerId: "w1",
        leaseExpiresAt: FUTURE,
      }),
    );
  });

  it("takes over every active row, oldest first, owned by the caller afterwards", async () => {
    await store.put("b", { threadId: "t", createdAt: T1, status: "running" });
    await store.put("a", { threadId: "t", createdAt: T1 });
    await store.put("old", {
      threadId: "t",
      createdAt: T0,
      ownerWorkerId: "w1",
      leaseExpiresAt: PAST,
    });
    await store.put("done", { threadId: "t", createdAt: T0, status: "success" });
    await admit("q", "t", { createdAt: T2, multitaskStrategy: "enqueue" });
    const { takenOver } = await admit("new", "t", {
      ownerWorkerId: "w2",
      multitaskStrategy: "rollback",
    });
    expect(takenOver.map((r) => [r.runId, r.status, r.error, r.ownerWorkerId, r.queued])).toEqual(
      ["old", "a", "b", "q"].map((id) => [
        id,
        "interrupted",
        "Cancelled by newer run",
        "w2",
        false,
      ]),
    );
    expect((await row("done")).status).toBe("success");
    // The queue and the slot are gone with them: nothing to claim, the new row blocks.
    expect(await store.claimNextRun("w3", LIVE)).toBeNull();
    expect(threadConflict(await failureOf(admit("x", "t")))?.conflictingRunId).toBe("new");
  });

  it("a non-run operation blocks while its lease is live, even the caller's own", async () => {
    await admit("cp", "t", { operationKind: "checkpoint_write" });
    const error = await failureOf(admit("r2", "t", { multitaskStrategy: "interrupt" }));
    expect(threadConflict(error)).toEqual({ threadId: "t", conflictingRunId: "cp" });
  });

  it("all or nothing: one blocking row keeps every other row as it was", async () => {
    await store.put("free", { threadId: "t", createdAt: T0 });
    await admit("live", "t", {
      createdAt: T1,
      ownerWorkerId: "w2",
      multitaskStrategy: "interrupt",
    });
    const before = await rows("free", "live");
    const error = await failureOf(admit("r", "t", { multitaskStrategy: "rollback" }));
    expect(threadConflict(error)?.conflictingRunId).toBe("live");
    expect(await rows("free", "live", "r")).toEqual([...before, null]);
  });

  it("a lease counts as expired only past grace", async () => {
    const fiveSecondsAgo = addMicroseconds(nowTimestamp(), -5_000_000);
    await admit("r1", "t", { ownerWorkerId: "w2", lease: { expiresAt: fiveSecondsAgo } });
    const error = await failureOf(admit("r2", "t", { multitaskStrategy: "interrupt" }));
    expect(threadConflict(error)?.conflictingRunId).toBe("r1");
    const defaultGrace = await failureOf(
      admit("r2", "t", { multitaskStrategy: "interrupt", graceSeconds: 10 }),
    );
    expect(defaultGrace.code).toBe(Code.Aborted);
    const { takenOver } = await admit("r2", "t", {
      multitaskStrategy: "interrupt",
      graceSeconds: 0,
    });
    expect(takenOver.map((r) => r.runId)).toEqual(["r1"]);
  });
});

describe("admission: enqueue", () => {
  it("inserts a queued row without owner or lease and without a conflict check", async () => {
    await admit("r1", "t");
    const admission = await admit("q1", "t", {
      createdAt: T0,
      multitaskStrategy: "enqueue",
      lease: LIVE,
    });
    expect(admission).toEqual({
      run: record("q1", "t", { createdAt: T0, multitaskStrategy: "enqueue", queued: true }),
      takenOver: [],
    });
    expect((await row("r1")).status).toBe("pending");
  });

  it("queued rows are listed by list_pending and list_inflight", async () => {
    await admit("q1", "t", { createdAt: T0, multitaskStrategy: "enqueue" });
    expect((await store.listPending()).map((r) => r.runId)).toEqual(["q1"]);
    expect((await store.listInflight()).map((r) => r.runId)).toEqual(["q1"]);
  });
});

describe("admission: retries and run ids", () => {
  it("the same run id, thread, kind and owner answers the stored row and changes nothing", async () => {
    await admit("r1", "t");
    const stored = await row("r1");
    const again = await admit("r1", "t", { lease: EXPIRED, metadata: { other: true } });
    expect(again).toEqual({ run: stored, takenOver: [] });
    expect(again.run.updatedAt).toBe(stored.updatedAt);
    expect(await row("r1")).toEqual(stored);
  });

  it("a queued row answers a retry with enqueue whatever the owner", async () => {
    await admit("q", "t", { multitaskStrategy: "enqueue" });
    const stored = await row("q");
    expect(await admit("q", "t", { ownerWorkerId: "w9", multitaskStrategy: "enqueue" })).toEqual({
      run: stored,
      takenOver: [],
    });
    const error = await failureOf(admit("q", "t", { ownerWorkerId: "w9" }));
    expect([error.code, error.rawMessage]).toEqual([
      Code.AlreadyExists,
      "run_id q already exists as a different operation",
    ]);
  });

  it("another owner, thread or kind fails with AlreadyExists and no detail", async () => {
    await admit("r1", "t");
    await store.put("p", { threadId: "t" });
    const before = await rows("r1", "p");
    for (const fields of [
      { ownerWorkerId: "w2" },
      { threadId: "t2" },
      { operationKind: "artifact_write" as const },
    ]) {
      const error = await failureOf(admit("r1", "t", fields));
      expect(error.code).toBe(Code.AlreadyExists);
      expect(idempotencyConflict(error)).toBeNull();
      expect(threadConflict(error)).toBeNull();
    }
    // A put row has no owner: an admission of its id is another operation.
    expect((await failureOf(admit("p", "t"))).code).toBe(Code.AlreadyExists);
    expect(await rows("r1", "p")).toEqual(before);
  });
});

describe("idempotency keys", () => {
  it("an admission whose key is held fails with the holder in the details", async () => {
    await admit("r1", "t", { idempotencyKey: "k", metadata: { x: [1] } });
    await store.updateStatus("r1", "success");
    const holder = await row("r1");
    for (const [runId, threadId] of [
      ["r2", "other-thread"],
      ["r1", "t"],
    ]) {
      const error = await failureOf(
        admit(runId as string, threadId as string, { idempotencyKey: "k" }),
      );
      expect([error.code, error.rawMessage]).toEqual([
        Code.AlreadyExists,
        "idempotency_key is held by run r1",
      ]);
      expect(idempotencyConflict(error)).toEqual(holder);
      expect(threadConflict(error)).toBeNull();
    }
    expect(await store.get("r2")).toBeNull();
  });

  it("the key is checked before the run id and before the thread", async () => {
    await admit("r1", "t", { idempotencyKey: "k" });
    await admit("r2", "t2", { idempotencyKey: "k2", ownerWorkerId: "w2" });
    const error = await failureOf(admit("r2", "t", { idempotencyKey: "k" }));
    expect(idempotencyConflict(error)?.runId).toBe("r1");
  });

  it("put checks the key against other runs and moves it", async () => {
    await admit("r1", "t", { idempotencyKey: "k" });
    const before = await rows("r1");
    const error = await failureOf(store.put("p", { threadId: "t", idempotencyKey: "k" }));
    expect(idempotencyConflict(error)).toEqual(before[0]);
    expect(await store.get("p")).toBeNull();
    await store.put("r1", { threadId: "t", idempotencyKey: "k" });
    await store.put("r1", { threadId: "t" });
    expect((await row("r1")).idempotencyKey).toBeNull();
    expect((await admit("r2", "t2", { idempotencyKey: "k" })).run.idempotencyKey).toBe("k");
  });

  it("a deleted row frees its key", async () => {
    await admit("r1", "t", { idempotencyKey: "k" });
    await store.deleteThreadOperation("r1", null);
    expect((await admit("r2", "t", { idempotencyKey: "k" })).run.runId).toBe("r2");
  });
});

describe("start_run", () => {
  it("moves pending to running once", async () => {
    await admit("r1", "t");
    expect(await store.startRun("r1")).toBe(true);
    expect((await row("r1")).status).toBe("running");
    expect(await store.startRun("r1")).toBe(false);
    expect(await store.startRun("missing")).toBe(false);
  });

  it("never starts a queued, cancelled or taken-over run", async () => {
    await admit("q", "t", { multitaskStrategy: "enqueue" });
    expect(await store.startRun("q")).toBe(false);
    await admit("r", "t2", { lease: EXPIRED });
    expect(await store.claimForTakeover("r", { error: "orphan" })).toBe(true);
    expect(await store.startRun("r")).toBe(false);
    expect((await row("q")).status).toBe("pending");
    expect((await row("r")).status).toBe("error");
  });
});

describe("renew_lease / update_lease", () => {
  it("renews an active run for its owner and answers the recorded cancel", async () => {
    await admit("r1", "t", { lease: EXPIRED });
    const later = "2100-01-01T00:00:00.000000Z";
    expect(await store.renewLease("r1", "w1", { expiresAt: later })).toEqual({
      renewed: true,
      cancelAction: null,
    });
    expect((await row("r1")).leaseExpiresAt).toBe(later);
    await store.requestCancel("r1", "rollback");
    expect(await store.renewLease("r1", "w1", LIVE)).toEqual({
      renewed: true,
      cancelAction: "rollback",
    });
    expect(await store.updateLease("r1", "w1", { expiresAt: later })).toBe(true);
    expect((await row("r1")).leaseExpiresAt).toBe(later);
  });

  it("a relative renewal counts from the store's clock", async () => {
    await admit("r1", "t");
    const before = nowTimestamp();
    await store.renewLease("r1", "w1", { durationMs: 1500 });
    const after = nowTimestamp();
    const lease = (await row("r1")).leaseExpiresAt as string;
    expect(lease >= addMicroseconds(before, 1_500_000)).toBe(true);
    expect(lease <= addMicroseconds(after, 1_500_000)).toBe(true);
  });

  it("refuses another worker, a terminal run and a missing one, changing nothing", async () => {
    await admit("r1", "t");
    await store.requestCancel("r1", "interrupt");
    await admit("r2", "t2");
    await store.updateStatus("r2", "success");
    const before = await rows("r1", "r2");
    for (const [runId, owner] of [
      ["r1", "w2"],
      ["r2", "w1"],
      ["missing", "w1"],
    ]) {
      expect(await store.renewLease(runId as string, owner as string, EXPIRED)).toEqual({
        renewed: false,
        cancelAction: null,
      });
      expect(await store.updateLease(runId as string, owner as string, EXPIRED)).toBe(false);
    }
    expect(await rows("r1", "r2")).toEqual(before);
  });
});

describe("request_cancel", () => {
  it("the first request wins; status stays; a later one changes neither field", async () => {
    await admit("r1", "t");
    await store.startRun("r1");
    expect(await store.requestCancel("r1", "interrupt")).toBe("interrupt");
    const first = await row("r1");
    expect([first.status, first.cancelAction]).toEqual(["running", "interrupt"]);
    expect(first.cancelRequestedAt).toBe(first.updatedAt);
    expect(await store.requestCancel("r1", "rollback")).toBe("interrupt");
    const second = await row("r1");
    expect([second.cancelAction, second.cancelRequestedAt]).toEqual([
      "interrupt",
      first.cancelRequestedAt,
    ]);
    expect(second.updatedAt >= first.updatedAt).toBe(true);
  });

  it("a missing or terminal run answers none and changes nothing", async () => {
    await admit("r1", "t");
    await store.updateStatus("r1", "timeout");
    const before = await rows("r1");
    expect(await store.requestCancel("r1", "interrupt")).toBeNull();
    expect(await store.requestCancel("missing", "interrupt")).toBeNull();
    expect(await rows("r1")).toEqual(before);
  });

  it("an unknown action is InvalidArgument naming the field", async () => {
    await admit("r1", "t");
    const error = await failureOf(store.requestCancel("r1", "stop" as "interrupt"));
    expect([error.code, error.rawMessage]).toEqual([
      Code.InvalidArgument,
      "action must be one of interrupt, rollback",
    ]);
    expect((await row("r1")).cancelAction).toBeNull();
  });

  it("interrupts a queued run at once; it is never claimed", async () => {
    await admit("q", "t", { createdAt: T0, multitaskStrategy: "enqueue" });
    expect(await store.requestCancel("q", "rollback")).toBe("rollback");
    const cancelled = await row("q");
    expect(cancelled).toEqual(
      record("q", "t", {
        createdAt: T0,
        multitaskStrategy: "enqueue",
        status: "interrupted",
        error: "Cancelled before start",
        cancelAction: "rollback",
        cancelRequestedAt: cancelled.updatedAt,
      }),
    );
    expect(await store.claimNextRun("w1", LIVE)).toBeNull();
    expect(await store.listPending()).toEqual([]);
  });
});

describe("finalize_if_not_cancelled", () => {
  it("finalizes an active run without a cancel, with error and stop_reason when given", async () => {
    await admit("r1", "t");
    await store.startRun("r1");
    expect(
      await store.finalizeIfNotCancelled("r1", "error", { error: "boom", stopReason: "crashed" }),
    ).toEqual({ finalized: true, cancelAction: null });
    const done = await row("r1");
    expect([done.status, done.error, done.stopReason]).toEqual(["error", "boom", "crashed"]);
    // Now terminal: a cancel comes too late, a second finalize too.
    expect(await store.requestCancel("r1", "interrupt")).toBeNull();
    expect(await store.finalizeIfNotCancelled("r1", "success")).toEqual({
      finalized: false,
      cancelAction: null,
    });
  });

  it("loses to a recorded cancel and answers it, changing nothing", async () => {
    await admit("r1", "t");
    await store.startRun("r1");
    await store.requestCancel("r1", "rollback");
    const before = await rows("r1");
    expect(await store.finalizeIfNotCancelled("r1", "success", { error: "x" })).toEqual({
      finalized: false,
      cancelAction: "rollback",
    });
    expect(await rows("r1")).toEqual(before);
    // The owner then stops the run itself; the recorded cancel still answers.
    await store.updateStatus("r1", "interrupted");
    expect(await store.finalizeIfNotCancelled("r1", "success")).toEqual({
      finalized: false,
      cancelAction: "rollback",
    });
  });

  it("a missing run is not finalized", async () => {
    expect(await store.finalizeIfNotCancelled("missing", "success")).toEqual({
      finalized: false,
      cancelAction: null,
    });
  });
});

describe("claim_for_takeover", () => {
  it("reclaims an active run whose lease expired past grace, once", async () => {
    await admit("r1", "t", { lease: EXPIRED });
    await store.startRun("r1");
    expect(
      await store.claimForTakeover("r1", { error: "worker died", stopReason: "orphan_recovered" }),
    ).toBe(true);
    const claimed = await row("r1");
    expect([claimed.status, claimed.error, claimed.stopReason, claimed.ownerWorkerId]).toEqual([
      "error",
      "worker died",
      "orphan_recovered",
      "w1",
    ]);
    expect(await store.claimForTakeover("r1", { error: "again" })).toBe(false);
    expect((await row("r1")).error).toBe("worker died");
  });

  it("a null lease is expired; the slot is free afterwards", async () => {
    await admit("r1", "t", { lease: null });
    expect(await store.claimForTakeover("r1", { error: "e" })).toBe(true);
    expect((await row("r1")).stopReason).toBeNull();
    expect((await admit("r2", "t")).run.status).toBe("pending");
  });

  it("leaves a live lease, a lease within grace, a queued, terminal or missing run", async () => {
    const fiveSecondsAgo = addMicroseconds(nowTimestamp(), -5_000_000);
    await admit("live", "t1");
    await admit("grace", "t2", { lease: { expiresAt: fiveSecondsAgo } });
    await admit("q", "t3", { multitaskStrategy: "enqueue" });
    await admit("done", "t4", { lease: EXPIRED });
    await store.updateStatus("done", "success");
    const before = await rows("live", "grace", "q", "done");
    for (const id of ["live", "grace", "q", "done", "missing"]) {
      expect(await store.claimForTakeover(id, { error: "e" }), id).toBe(false);
    }
    expect(await rows("live", "grace", "q", "done")).toEqual(before);
    expect(await store.claimForTakeover("grace", { error: "e", graceSeconds: 0 })).toBe(true);
  });
});

describe("list_inflight_with_expired_lease", () => {
  it("lists active, unqueued rows of every kind whose lease expired past grace, oldest first", async () => {
    const fiveSecondsAgo = addMicroseconds(nowTimestamp(), -5_000_000);
    await store.put("no-lease", { threadId: "a", createdAt: T1, status: "running" });
    await admit("expired", "b", { createdAt: T1, lease: EXPIRED });
    await admit("op", "c", { createdAt: T0, lease: EXPIRED, operationKind: "artifact_write" });
    await admit("grace", "d", { createdAt: T0, lease: { expiresAt: fiveSecondsAgo } });
    await admit("live", "e", { createdAt: T0 });
    await admit("q", "f", { createdAt: T0, multitaskStrategy: "enqueue" });
    await admit("late", "g", { createdAt: T3, lease: EXPIRED });
    await store.put("done", { threadId: "h", createdAt: T0, status: "error" });
    const listed = await store.listInflightWithExpiredLease({ before: T2 });
    expect(listed.map((r) => r.runId)).toEqual(["op", "expired", "no-lease"]);
    expect(listed[0]).toEqual(await row("op"));
    const noGrace = await store.listInflightWithExpiredLease({ before: T2, graceSeconds: 0 });
    expect(noGrace.map((r) => r.runId)).toEqual(["grace", "op", "expired", "no-lease"]);
    const byNow = await store.listInflightWithExpiredLease();
    expect(byNow.map((r) => r.runId)).toEqual(["op", "expired", "no-lease", "late"]);
  });
});

describe("claim_next_run", () => {
  it("claims in creation order across threads, one at a time per thread", async () => {
    await admit("holder", "b", { createdAt: T0 });
    await admit("b1", "b", { createdAt: T0, multitaskStrategy: "enqueue" });
    await admit("a2", "a", { createdAt: T2, multitaskStrategy: "enqueue" });
    await admit("a1", "a", { createdAt: T1, multitaskStrategy: "enqueue" });
    await admit("c1", "c", { createdAt: T1, multitaskStrategy: "enqueue" });
    const before = nowTimestamp();
    const first = await store.claimNextRun("w2", { durationMs: 60_000 });
    expect(first).toEqual(
      record("a1", "a", {
        createdAt: T1,
        multitaskStrategy: "enqueue",
        status: "running",
        ownerWorkerId: "w2",
        leaseExpiresAt: expect.any(String),
      }),
    );
    expect((first?.leaseExpiresAt as string) >= addMicroseconds(before, 60_000_000)).toBe(true);
    expect(await row("a1")).toEqual(first);
    // b is held by "holder", a by a1: c1 is next, then nothing.
    expect((await store.claimNextRun("w3", LIVE))?.runId).toBe("c1");
    expect(await store.claimNextRun("w3", LIVE)).toBeNull();
    await store.finalizeIfNotCancelled("a1", "success");
    await store.finalizeIfNotCancelled("holder", "success");
    expect((await store.claimNextRun("w3", LIVE, { threadId: "a" }))?.runId).toBe("a2");
    expect((await store.claimNextRun("w3", LIVE))?.runId).toBe("b1");
    expect(await store.claimNextRun("w3", LIVE)).toBeNull();
  });

  it("the claimed run holds the slot: an admission now conflicts with it", async () => {
    await admit("q", "t", { multitaskStrategy: "enqueue" });
    await store.claimNextRun("w2", LIVE);
    const error = await failureOf(admit("r", "t", { multitaskStrategy: "interrupt" }));
    expect(threadConflict(error)).toEqual({ threadId: "t", conflictingRunId: "q" });
    expect(await store.startRun("q")).toBe(false);
    expect(await store.renewLease("q", "w2", LIVE)).toEqual({ renewed: true, cancelAction: null });
  });

  it("a put row holds no slot and a future created_at is not claimable yet", async () => {
    await store.put("p", { threadId: "t", status: "running" });
    await admit("q", "t", { createdAt: T0, multitaskStrategy: "enqueue" });
    await admit("later", "u", { createdAt: FUTURE, multitaskStrategy: "enqueue" });
    expect((await store.claimNextRun("w2", LIVE))?.runId).toBe("q");
    expect(await store.claimNextRun("w2", LIVE)).toBeNull();
    expect(await store.claimNextRun("w2", LIVE, { threadId: "nothing-here" })).toBeNull();
  });

  it("a put over an admitted row keeps its slot and queue flag", async () => {
    await admit("holder", "t");
    await admit("q", "t", { createdAt: T0, multitaskStrategy: "enqueue" });
    await store.put("holder", { threadId: "t", status: "running" });
    await store.put("q", { threadId: "t", createdAt: T1, ownerWorkerId: "w9" });
    expect((await row("q")).queued).toBe(true);
    expect(await store.claimNextRun("w2", LIVE)).toBeNull();
    await store.updateStatus("holder", "success");
    expect((await store.claimNextRun("w2", LIVE))?.runId).toBe("q");
  });

  it("a put moving a slot holder to another thread drops its slot: neither thread's slot is held", async () => {
    await admit("holder", "t", { createdAt: T0 });
    await admit("other", "u", { createdAt: T0 });
    // Onto a thread whose slot another row holds: no conflict.
    await store.put("holder", { threadId: "u", status: "running" });
    expect(await row("holder")).toEqual(record("holder", "u", { status: "running" }));
    await admit("q", "u", { createdAt: T1, multitaskStrategy: "enqueue" });
    expect(await store.claimNextRun("w2", LIVE)).toBeNull();
    await store.updateStatus("other", "success");
    // "holder" is active on u but holds nothing there; t has no active row.
    expect((await store.claimNextRun("w2", LIVE))?.runId).toBe("q");
    expect((await admit("fresh", "t")).takenOver).toEqual([]);
  });
});

describe("part 1 methods in part 2", () => {
  it("put overwrites the part 2 inputs and keeps cancel, usage map and counters", async () => {
    await admit("r1", "t", { idempotencyKey: "k", followUpToRunId: "r0" });
    await store.startRun("r1");
    await store.updateRunProgress("r1", {
      totalTokens: 5,
      tokenUsageByModel: { m: { inputTokens: 1, outputTokens: 2, totalTokens: 3 } },
    });
    await store.requestCancel("r1", "interrupt");
    const before = await row("r1");
    await store.put("r1", { threadId: "t", status: "running", operationKind: "delete" });
    expect(await row("r1")).toEqual({
      ...before,
      operationKind: "delete",
      ownerWorkerId: null,
      leaseExpiresAt: null,
      idempotencyKey: null,
      followUpToRunId: null,
      updatedAt: expect.any(String),
    });
  });

  it("update_status writes stop_reason when given; guarded locks terminal rows", async () => {
    await admit("r1", "t");
    expect(
      await store.updateStatus("r1", "interrupted", { stopReason: "user", guarded: true }),
    ).toBe(true);
    expect(await store.updateStatus("r1", "error", { error: "rolled back", guarded: true })).toBe(
      true,
    );
    const after = await row("r1");
    expect([after.status, after.error, after.stopReason]).toEqual(["error", "rolled back", "user"]);
    for (const status of ["running", "success", "error"] as const) {
      expect(await store.updateStatus("r1", status, { guarded: true, stopReason: "x" })).toBe(
        false,
      );
    }
    expect(await row("r1")).toEqual(after);
    expect(await store.updateStatus("missing", "running", { guarded: true })).toBe(false);
    expect(await store.updateStatus("r1", "running")).toBe(true);
  });

  it("a write that moves a queued row off pending unqueues it", async () => {
    await admit("q", "t", { multitaskStrategy: "enqueue" });
    await store.updateStatus("q", "running");
    expect((await row("q")).queued).toBe(false);
    expect(await store.claimNextRun("w1", LIVE)).toBeNull();
  });

  it("a usage map with a key that is not a counter is refused and changes nothing", async () => {
    await admit("r1", "t");
    await store.updateStatus("r1", "running");
    const before = await row("r1");
    const usage = { m: { totalTokens: 2, reasoningTokens: 1 } } as never;
    for (const call of [
      store.updateRunProgress("r1", { tokenUsageByModel: usage }),
      store.updateRunCompletion("r1", { status: "success", tokenUsageByModel: usage }),
    ]) {
      const error = await failureOf(call);
      expect([error.code, error.rawMessage]).toEqual([
        Code.InvalidArgument,
        "token_usage_by_model.m has reasoningTokens, which is not a usage counter (inputTokens, outputTokens, totalTokens, cacheReadTokens)",
      ]);
    }
    expect(await row("r1")).toEqual(before);
  });

  it("guarded completion never replaces another terminal outcome", async () => {
    await admit("r1", "t");
    const usage = { m: { inputTokens: 1, outputTokens: 1, totalTokens: 2, cacheReadTokens: 0 } };
    expect(
      await store.updateRunCompletion("r1", {
        status: "success",
        totalTokens: 2,
        tokenUsageByModel: usage,
        guarded: true,
      }),
    ).toBe(true);
    expect((await row("r1")).tokenUsageByModel).toEqual(usage);
    expect(await store.updateRunCompletion("r1", { status: "success", guarded: true })).toBe(true);
    expect((await row("r1")).tokenUsageByModel).toEqual({});
    const before = await row("r1");
    for (const status of ["error", "timeout", "interrupted", "running"] as const) {
      expect(await store.updateRunCompletion("r1", { status, guarded: true })).toBe(false);
    }
    expect(await row("r1")).toEqual(before);
    await admit("r2", "t2");
    await store.updateStatus("r2", "interrupted");
    expect(await store.updateRunCompletion("r2", { status: "success", guarded: true })).toBe(false);
    expect(await store.updateRunCompletion("r2", { status: "error", guarded: true })).toBe(true);
    expect(await store.updateRunCompletion("missing", { status: "error", guarded: true })).toBe(
      false,
    );
  });

  it("progress writes the usage map only when given and only while running", async () => {
    const usage = { a: { inputTokens: 1, outputTokens: 2, totalTokens: 3 } };
    await admit("r1", "t");
    await store.updateRunProgress("r1", { tokenUsageByModel: usage });
    expect((await row("r1")).tokenUsageByModel).toEqual({});
    await store.startRun("r1");
    await store.updateRunProgress("r1", { tokenUsageByModel: usage });
    await store.updateRunProgress("r1", { totalTokens: 3, tokenUsageByModel: null });
    expect((await row("r1")).tokenUsageByModel).toEqual(usage);
    expect((await row("r1")).tokenUsageByModel.a).not.toHaveProperty("cacheReadTokens");
  });

  it("aggregate builds by_model from the usage map, else from model_name", async () => {
    const counters = { totalTokens: 20, totalInputTokens: 12, totalOutputTokens: 8 };
    await store.put("two-models", { threadId: "t", modelName: "ignored" });
    await store.updateRunCompletion("two-models", {
      status: "success",
      ...counters,
      leadAgentTokens: 20,
      tokenUsageByModel: {
        m1: { inputTokens: 5, outputTokens: 5, totalTokens: 10 },
        m2: { inputTokens: 3, outputTokens: 4, totalTokens: 7 },
      },
    });
    await store.put("plain", { threadId: "t", modelName: "m1" });
    await store.updateRunCompletion("plain", { status: "error", totalTokens: 4 });
    await store.put("nameless", { threadId: "t" });
    await store.updateRunCompletion("nameless", { status: "success", totalTokens: 1 });
    await store.put("op", { threadId: "t", operationKind: "checkpoint_write", modelName: "m1" });
    await store.updateRunCompletion("op", { status: "success", totalTokens: 100 });
    expect(await store.aggregateTokensByThread("t")).toEqual({
      totalTokens: 25,
      totalInputTokens: 12,
      totalOutputTokens: 8,
      totalRuns: 3,
      byModel: {
        m1: { tokens: 14, runs: 2 },
        m2: { tokens: 7, runs: 1 },
        unknown: { tokens: 1, runs: 1 },
      },
      byCaller: { leadAgent: 20, subagent: 0, middleware: 0 },
    });
  });

  it("a by_model sum past 2^53-1 is OutOfRange, as the totals are", async () => {
    const max = Number.MAX_SAFE_INTEGER;
    for (const id of ["r1", "r2"]) {
      await store.put(id, { threadId: "t" });
      await store.updateRunCompletion(id, {
        status: "success",
        tokenUsageByModel: { m: { inputTokens: 0, outputTokens: 0, totalTokens: max } },
      });
    }
    const error = await failureOf(store.aggregateTokensByThread("t"));
    expect([error.code, error.rawMessage]).toEqual([
      Code.OutOfRange,
      `token sums of this thread exceed ${max}, the largest exact value`,
    ]);
  });

  it("only runs are listed by thread and as pending; every kind by get and list_inflight", async () => {
    await admit("op", "t", { createdAt: T0, operationKind: "delete" });
    await store.put("run", { threadId: "t", createdAt: T1 });
    expect((await store.listByThread("t")).map((r) => r.runId)).toEqual(["run"]);
    expect((await store.listPending()).map((r) => r.runId)).toEqual(["run"]);
    expect((await store.listInflight()).map((r) => r.runId)).toEqual(["op", "run"]);
    expect((await row("op")).operationKind).toBe("delete");
  });

  it("delete_thread_operation deletes with the given owner, freeing the slot", async () => {
    await admit("r1", "t", { userId: "alice" });
    await store.deleteThreadOperation("r1", "bob");
    expect((await row("r1")).userId).toBe("alice");
    await store.deleteThreadOperation("r1", "alice");
    expect(await store.get("r1")).toBeNull();
    await admit("r2", "t", { userId: "carol" });
    await store.deleteThreadOperation("r2", null);
    expect(await store.get("r2")).toBeNull();
    expect((await admit("r3", "t")).run.runId).toBe("r3");
  });
});

describe("thread reads", () => {
  it("get_many_by_thread answers the visible runs of the thread among the ids", async () => {
    await store.put("a", { threadId: "t", userId: "u1" });
    await store.put("b", { threadId: "t", userId: "u2" });
    await store.put("other", { threadId: "t2" });
    await store.put("op", { threadId: "t", operationKind: "artifact_write" });
    const ids = ["a", "b", "a", "other", "op", "missing"];
    const all = await store.getManyByThread("t", ids);
    expect(Object.keys(all).sort()).toEqual(["a", "b"]);
    expect(all.a).toEqual(await row("a"));
    // No protobuf map can carry a "__proto__" key, so no store takes one.
    const refused = await failureOf(store.getManyByThread("t", ["a", "__proto__"]));
    expect([refused.code, refused.rawMessage]).toEqual([
      Code.InvalidArgument,
      'run_ids must not hold "__proto__" (no protobuf map key can carry it)',
    ]);
    const mine = await store.getManyByThread("t", ids, { userId: "u1" });
    expect(mine).toEqual({ a: await row("a") });
    expect(await store.getManyByThread("t", [])).toEqual({});
  });

  it("get_many_by_thread refuses more than 10000 ids", async () => {
    const error = await failureOf(store.getManyByThread("t", Array(10_001).fill("a")));
    expect([error.code, error.rawMessage]).toEqual([
      Code.InvalidArgument,
      "run_ids must hold at most 10000 ids, got 10001",
    ]);
  });

  it("regenerate sources: distinct non-empty strings of success runs, sorted", async () => {
    const runs: [string, Record<string, unknown>, string, string | null][] = [
      ["s1", { regenerate_from_run_id: "z" }, "success", null],
      ["s2", { regenerate_from_run_id: "a" }, "success", "u1"],
      ["s3", { regenerate_from_run_id: "z" }, "success", null],
      ["s4", { regenerate_from_run_id: "\u{1F600}" }, "success", null],
      ["s5", { regenerate_from_run_id: "\uFFFF" }, "success", null],
      ["e", { regenerate_from_run_id: "err" }, "error", null],
      ["empty", { regenerate_from_run_id: "" }, "success", null],
      ["num", { regenerate_from_run_id: 7 }, "success", null],
    ];
    for (const [id, metadata, status, userId] of runs) {
      await store.put(id, { threadId: "t", metadata, status: status as "success", userId });
    }
    await store.put("op", {
      threadId: "t",
      status: "success",
      operationKind: "checkpoint_write",
      metadata: { regenerate_from_run_id: "op-source" },
    });
    expect(await store.listSuccessfulRegenerateSources("t")).toEqual([
      "a",
      "z",
      "\uFFFF",
      "\u{1F600}",
    ]);
    expect(await store.listSuccessfulRegenerateSources("t", { userId: "u1" })).toEqual(["a"]);
    expect(await store.listSuccessfulRegenerateSources("empty-thread")).toEqual([]);
  });

  it("edit regenerate runs: replay_kind edit with a source, oldest first, any status", async () => {
    await store.put("late", {
      threadId: "t",
      createdAt: T2,
      metadata: { replay_kind: "edit", regenerate_from_run_id: "x" },
    });
    await store.put("early", {
      threadId: "t",
      createdAt: T1,
      status: "error",
      metadata: { replay_kind: "edit", regenerate_from_run_id: "y" },
    });
    await store.put("no-source", { threadId: "t", metadata: { replay_kind: "edit" } });
    await store.put("regen", {
      threadId: "t",
      metadata: { replay_kind: "regenerate", regenerate_from_run_id: "x" },
    });
    await store.put("op", {
      threadId: "t",
      metadata: { replay_kind: "edit", regenerate_from_run_id: "x" },
      operationKind: "delete",
    });
    const runs = await store.listEditRegenerateRuns("t");
    expect(runs.map((r) => r.runId)).toEqual(["early", "late"]);
    expect(runs[0]).toEqual(await row("early"));
  });
});
