import { Code, ConnectError } from "@connectrpc/connect";
import { nowTimestamp, type RunRecord, type RunStore } from "@runstore/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

/** A fresh, empty store for one test, and how to dispose of it. */
export interface StoreHandle {
  store: RunStore;
  close(): Promise<void>;
}

/** Fixed-width UTC with microseconds, as SPEC.md "Timestamps" prescribes. */
const TIMESTAMP_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const ZERO_COUNTERS = {
  totalInputTokens: 0,
  totalOutputTokens: 0,
  totalTokens: 0,
  llmCallCount: 0,
  leadAgentTokens: 0,
  subagentTokens: 0,
  middlewareTokens: 0,
  messageCount: 0,
};

const COUNTERS = {
  totalInputTokens: 11,
  totalOutputTokens: 12,
  totalTokens: 23,
  llmCallCount: 3,
  leadAgentTokens: 14,
  subagentTokens: 6,
  middlewareTokens: 3,
  messageCount: 7,
};

/** Asserts that the call rejects with INVALID_ARGUMENT and a message naming `field`. */
export async function expectInvalid(call: Promise<unknown>, field: string): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected INVALID_ARGUMENT naming ${field}`).toBeDefined();
  const ce = ConnectError.from(error);
  expect(ce.code).toBe(Code.InvalidArgument);
  expect(ce.rawMessage).toContain(field);
}

/** Milliseconds part of a fixed-width timestamp: what two processes' clocks agree on. */
function ms(timestamp: string): string {
  return timestamp.slice(0, 23);
}

/**
 * An instant at least 2 ms after every timestamp written so far, so that
 * `ms(updatedAt) >= ms(mark)` proves a later write moved updated_at.
 */
async function laterMark(): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 2));
  return nowTimestamp();
}

/**
 * The behaviour contract of shared/SPEC.md, written once against the RunStore
 * interface. Each describe block names the SPEC.md section it checks; each
 * test names the rule. `open` gives a fresh empty store per test.
 */
export function runStoreContract(name: string, open: () => Promise<StoreHandle>): void {
  describe(`RunStore contract: ${name}`, () => {
    let handle: StoreHandle;
    let store: RunStore;
    beforeEach(async () => {
      handle = await open();
      store = handle.store;
    });
    afterEach(async () => {
      await handle.close();
    });

    async function mustGet(runId: string): Promise<RunRecord> {
      const record = await store.get(runId);
      expect(record, `run ${runId} should exist`).not.toBeNull();
      return record as RunRecord;
    }

    describe("put", () => {
      it("inserts an absent row with defaults: pending, reject, {} JSON, null optionals, counters 0, messages null", async () => {
        const before = nowTimestamp();
        await store.put("r1", { threadId: "t1" });
        const after = nowTimestamp();
        const run = await mustGet("r1");
        expect(run).toEqual({
          runId: "r1",
          threadId: "t1",
          assistantId: null,
          userId: null,
          modelName: null,
          status: "pending",
          multitaskStrategy: "reject",
          metadata: {},
          kwargs: {},
          error: null,
          createdAt: run.createdAt,
          updatedAt: run.updatedAt,
          ...ZERO_COUNTERS,
          lastAiMessage: null,
          firstHumanMessage: null,
        });
        expect(run.createdAt).toMatch(TIMESTAMP_FORMAT);
        expect(run.updatedAt).toMatch(TIMESTAMP_FORMAT);
        expect(ms(run.createdAt) >= ms(before)).toBe(true);
        expect(ms(run.createdAt) <= ms(after)).toBe(true);
        expect(ms(run.updatedAt) >= ms(before)).toBe(true);
      });

      it("stores every given field and uses the given created_at", async () => {
        await store.put("r1", {
          threadId: "t1",
          assistantId: "lead_agent",
          userId: "alice",
          modelName: "gpt-4o",
          status: "running",
          multitaskStrategy: "enqueue",
          metadata: { source: "api", nested: { list: [1, "two", true, null] } },
          kwargs: { input: { messages: ["hi"] }, config: { recursion_limit: 100 } },
          error: "previous failure",
          createdAt: "2026-01-02T03:04:05.123456Z",
        });
        const run = await mustGet("r1");
        expect(run).toMatchObject({
          runId: "r1",
          threadId: "t1",
          assistantId: "lead_agent",
          userId: "alice",
          modelName: "gpt-4o",
          status: "running",
          multitaskStrategy: "enqueue",
          metadata: { source: "api", nested: { list: [1, "two", true, null] } },
          kwargs: { input: { messages: ["hi"] }, config: { recursion_limit: 100 } },
          error: "previous failure",
          createdAt: "2026-01-02T03:04:05.123456Z",
        });
      });

      it("overwrites a present row's descriptive fields; an omitted optional becomes null / {}", async () => {
        await store.put("r1", {
          threadId: "t1",
          assistantId: "a",
          userId: "alice",
          modelName: "m1",
          status: "running",
          multitaskStrategy: "rollback",
          metadata: { a: 1 },
          kwargs: { b: 2 },
          error: "e",
        });
        await store.put("r1", { threadId: "t2" });
        const run = await mustGet("r1");
        expect(run).toMatchObject({
          threadId: "t2",
          assistantId: null,
          userId: null,
          modelName: null,
          status: "pending",
          multitaskStrategy: "reject",
          metadata: {},
          kwargs: {},
          error: null,
        });
        expect(await store.listByThread("t1")).toEqual([]);
        expect((await store.listByThread("t2")).map((r) => r.runId)).toEqual(["r1"]);
      });

      it("keeps created_at, the eight counters and both messages on overwrite, and moves updated_at", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00Z" });
        await store.updateStatus("r1", "running");
        await store.updateRunCompletion("r1", {
          status: "success",
          ...COUNTERS,
          lastAiMessage: "bye",
          firstHumanMessage: "hi",
        });
        const mark = await laterMark();
        await store.put("r1", {
          threadId: "t1",
          status: "running",
          createdAt: "2030-01-01T00:00:00Z",
        });
        const run = await mustGet("r1");
        expect(run.createdAt).toBe("2026-01-01T00:00:00.000000Z");
        expect(run).toMatchObject({ ...COUNTERS, lastAiMessage: "bye", firstHumanMessage: "hi" });
        expect(run.status).toBe("running");
        expect(ms(run.updatedAt) >= ms(mark)).toBe(true);
      });

      it("is idempotent under retries: the same put twice leaves one identical row", async () => {
        const fields = { threadId: "t1", userId: "u", metadata: { k: "v" } };
        await store.put("r1", fields);
        const first = await mustGet("r1");
        await store.put("r1", fields);
        const second = await mustGet("r1");
        expect({ ...second, updatedAt: "" }).toEqual({ ...first, updatedAt: "" });
        expect(await store.listByThread("t1")).toHaveLength(1);
      });

      it("keeps assistant_id null distinct from the empty string", async () => {
        await store.put("r-null", { threadId: "t1" });
        await store.put("r-empty", { threadId: "t1", assistantId: "" });
        expect((await mustGet("r-null")).assistantId).toBeNull();
        expect((await mustGet("r-empty")).assistantId).toBe("");
      });

      it("keeps error null distinct from the empty string", async () => {
        await store.put("r-null", { threadId: "t1" });
        await store.put("r-empty", { threadId: "t1", error: "" });
        expect((await mustGet("r-null")).error).toBeNull();
        expect((await mustGet("r-empty")).error).toBe("");
      });

      it("normalises model_name: trimmed, cut to 128 code points (an emoji is one)", async () => {
        await store.put("r1", { threadId: "t1", modelName: "  gpt-4o \n" });
        expect((await mustGet("r1")).modelName).toBe("gpt-4o");
        await store.put("r2", { threadId: "t1", modelName: "🦌".repeat(200) });
        expect((await mustGet("r2")).modelName).toBe("🦌".repeat(128));
        await store.put("r3", { threadId: "t1", modelName: `  ${"m".repeat(127)}🦌🦌  ` });
        expect((await mustGet("r3")).modelName).toBe(`${"m".repeat(127)}🦌`);
        await store.put("r4", { threadId: "t1", modelName: " \t\n " });
        expect((await mustGet("r4")).modelName).toBe("");
        // Stripped as Python's str.strip() strips: U+001C and U+3000 go, U+FEFF stays.
        await store.put("r5", { threadId: "t1", modelName: "\u001c\u3000gpt\ufeff\u00a0" });
        expect((await mustGet("r5")).modelName).toBe("gpt\ufeff");
      });

      it("round-trips metadata and kwargs as JSON objects (numbers, strings, booleans, null, nesting, unicode)", async () => {
        const metadata = {
          int: 42,
          float: 1.5,
          negative: -7,
          text: "héllo 🦌 中文",
          yes: true,
          no: false,
          nothing: null,
          list: [1, [2, [3]], { deep: { deeper: "x" } }],
          empty: {},
        };
        await store.put("r1", { threadId: "t1", metadata, kwargs: { metadata } });
        const run = await mustGet("r1");
        expect(run.metadata).toEqual(metadata);
        expect(run.kwargs).toEqual({ metadata });
      });

      it("converts kwargs JSON cannot hold as JSON.stringify would, and never fails because of them", async () => {
        class Point {
          constructor(
            public x: number,
            public y: number,
          ) {}
        }
        const circular: Record<string, unknown> = { name: "loop" };
        circular.self = circular;
        const shared = { s: 1 };
        await store.put("r1", {
          threadId: "t1",
          kwargs: {
            big: 12345678901234567890n,
            when: new Date("2026-01-01T00:00:00.000Z"),
            gone: undefined,
            fn: () => 1,
            point: new Point(1, 2),
            notANumber: Number.NaN,
            infinite: Number.POSITIVE_INFINITY,
            list: [undefined, 1n, () => 2],
            circular,
            twice: [shared, shared],
            boxed: [new Number(3), new String("s"), new Boolean(false)],
          },
        });
        expect((await mustGet("r1")).kwargs).toEqual({
          big: "12345678901234567890",
          when: "2026-01-01T00:00:00.000Z",
          point: { x: 1, y: 2 },
          notANumber: null,
          infinite: null,
          list: [null, "1", null],
          circular: { name: "loop", self: "[Circular]" },
          twice: [{ s: 1 }, { s: 1 }],
          boxed: [3, "s", false],
        });
      });

      it('accepts JSON nested 31 containers deep (JSON_DEPTH 32) and refuses deeper, or a "__proto__" key', async () => {
        const nest = (levels: number): Record<string, unknown> => {
          let value: Record<string, unknown> = { leaf: true };
          for (let i = 1; i < levels; i++) value = { level: value };
          return value;
        };
        await store.put("r1", { threadId: "t1", metadata: nest(31), kwargs: { list: [nest(29)] } });
        expect((await mustGet("r1")).metadata).toEqual(nest(31));
        expect((await mustGet("r1")).kwargs).toEqual({ list: [nest(29)] });
        await expectInvalid(store.put("r2", { threadId: "t1", metadata: nest(32) }), "metadata");
        await expectInvalid(
          store.put("r2", { threadId: "t1", kwargs: { a: [nest(30)] } }),
          "kwargs",
        );
        await expectInvalid(
          store.put("r2", { threadId: "t1", kwargs: JSON.parse('{"x": {"__proto__": 1}}') }),
          "kwargs",
        );
        expect(await store.get("r2")).toBeNull();
      });

      it("stores a copy: changing the caller's object afterwards changes nothing", async () => {
        const metadata = { a: { b: 1 } };
        await store.put("r1", { threadId: "t1", metadata });
        metadata.a.b = 2;
        const run = await mustGet("r1");
        expect(run.metadata).toEqual({ a: { b: 1 } });
        (run.metadata.a as { b: number }).b = 3;
        expect((await mustGet("r1")).metadata).toEqual({ a: { b: 1 } });
      });
    });

    describe("get", () => {
      it("returns null for a missing run", async () => {
        expect(await store.get("missing")).toBeNull();
      });

      it("user_id filter: the owner sees the run; another user, and any user for an unowned run, see null", async () => {
        await store.put("owned", { threadId: "t1", userId: "alice" });
        await store.put("unowned", { threadId: "t1" });
        expect((await store.get("owned", { userId: "alice" }))?.runId).toBe("owned");
        expect(await store.get("owned", { userId: "bob" })).toBeNull();
        expect(await store.get("unowned", { userId: "alice" })).toBeNull();
      });

      it("no user_id: no filter applies (single-user mode)", async () => {
        await store.put("owned", { threadId: "t1", userId: "alice" });
        await store.put("unowned", { threadId: "t1" });
        expect((await store.get("owned"))?.userId).toBe("alice");
        expect((await store.get("unowned", { userId: null }))?.userId).toBeNull();
      });
    });

    describe("list_by_thread", () => {
      it("lists newest first: created_at descending, ties by run_id descending", async () => {
        await store.put("b", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000002Z" });
        await store.put("a", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000002Z" });
        await store.put("c", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000002Z" });
        await store.put("z", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000001Z" });
        await store.put("y", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000003Z" });
        await store.put("other", { threadId: "t2", createdAt: "2026-01-01T00:00:00.000009Z" });
        expect((await store.listByThread("t1")).map((r) => r.runId)).toEqual([
          "y",
          "c",
          "b",
          "a",
          "z",
        ]);
      });

      it("orders run_id ties by code point (U+FFFF-block characters before emoji)", async () => {
        const createdAt = "2026-01-01T00:00:00Z";
        for (const id of ["\uff5e", "😀", "a", "\ue000"]) {
          await store.put(id, { threadId: "t1", createdAt });
        }
        expect((await store.listByThread("t1")).map((r) => r.runId)).toEqual([
          "😀",
          "\uff5e",
          "\ue000",
          "a",
        ]);
      });

      it("returns at most limit rows, 100 by default; limit 0 gives an empty list", async () => {
        for (let i = 0; i < 102; i++) {
          const id = String(i).padStart(3, "0");
          await store.put(`run-${id}`, { threadId: "t1", createdAt: `2026-01-01T00:00:00.${id}Z` });
        }
        const all = await store.listByThread("t1");
        expect(all).toHaveLength(100);
        expect(all[0]?.runId).toBe("run-101");
        expect(all[99]?.runId).toBe("run-002");
        expect((await store.listByThread("t1", { limit: 3 })).map((r) => r.runId)).toEqual([
          "run-101",
          "run-100",
          "run-099",
        ]);
        expect(await store.listByThread("t1", { limit: 0 })).toEqual([]);
        expect(await store.listByThread("t1", { limit: 10_000 })).toHaveLength(102);
      });

      it("user_id filter: only the user's runs; unowned runs are invisible to a user", async () => {
        await store.put("a1", {
          threadId: "t1",
          userId: "alice",
          createdAt: "2026-01-01T00:00:01Z",
        });
        await store.put("b1", { threadId: "t1", userId: "bob", createdAt: "2026-01-01T00:00:02Z" });
        await store.put("n1", { threadId: "t1", createdAt: "2026-01-01T00:00:03Z" });
        expect((await store.listByThread("t1", { userId: "alice" })).map((r) => r.runId)).toEqual([
          "a1",
        ]);
        expect((await store.listByThread("t1")).map((r) => r.runId)).toEqual(["n1", "b1", "a1"]);
        expect(await store.listByThread("t1", { userId: "carol" })).toEqual([]);
      });

      it("returns an empty list for an unknown thread", async () => {
        expect(await store.listByThread("nope")).toEqual([]);
      });

      it("rejects limit < 0 or > 10000 with INVALID_ARGUMENT naming limit", async () => {
        await expectInvalid(store.listByThread("t1", { limit: -1 }), "limit");
        await expectInvalid(store.listByThread("t1", { limit: 10_001 }), "limit");
        await expectInvalid(store.listByThread("t1", { limit: 1.5 }), "limit");
        await expectInvalid(store.listByThread("t1", { limit: 2 ** 31 }), "limit");
      });
    });

    describe("update_status", () => {
      it("returns true and sets status and updated_at when the row exists; false when it does not", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00Z" });
        const mark = await laterMark();
        expect(await store.updateStatus("r1", "running")).toBe(true);
        const after = await mustGet("r1");
        expect(after.status).toBe("running");
        expect(ms(after.updatedAt) >= ms(mark)).toBe(true);
        expect(await store.updateStatus("missing", "running")).toBe(false);
        expect(await store.get("missing")).toBeNull();
      });

      it("sets error only when one is given; an omitted error keeps the stored one", async () => {
        await store.put("r1", { threadId: "t1" });
        await store.updateStatus("r1", "error", { error: "boom" });
        expect((await mustGet("r1")).error).toBe("boom");
        await store.updateStatus("r1", "running");
        expect(await mustGet("r1")).toMatchObject({ status: "running", error: "boom" });
        await store.updateStatus("r1", "error", { error: null });
        expect((await mustGet("r1")).error).toBe("boom");
      });

      it("setting the same status again is still true", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        expect(await store.updateStatus("r1", "running")).toBe(true);
        expect(await store.updateStatus("r1", "running")).toBe(true);
      });

      it("ignores user ownership (no user filter on updates)", async () => {
        await store.put("r1", { threadId: "t1", userId: "alice" });
        expect(await store.updateStatus("r1", "success")).toBe(true);
        expect((await mustGet("r1")).status).toBe("success");
      });
    });

    describe("delete", () => {
      it("removes the row; deleting again or a missing row is a no-op", async () => {
        await store.put("r1", { threadId: "t1" });
        await store.put("r2", { threadId: "t1" });
        await store.delete("r1");
        expect(await store.get("r1")).toBeNull();
        await store.delete("r1");
        await store.delete("missing");
        expect((await store.listByThread("t1")).map((r) => r.runId)).toEqual(["r2"]);
      });

      it("is a no-op when the run is invisible to the given user; the owner can delete", async () => {
        await store.put("owned", { threadId: "t1", userId: "alice" });
        await store.put("unowned", { threadId: "t1" });
        await store.delete("owned", { userId: "bob" });
        await store.delete("unowned", { userId: "bob" });
        expect((await store.get("owned"))?.runId).toBe("owned");
        expect((await store.get("unowned"))?.runId).toBe("unowned");
        await store.delete("owned", { userId: "alice" });
        expect(await store.get("owned")).toBeNull();
      });

      it("removes the run from list_inflight and aggregates", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00Z" });
        await store.put("done", { threadId: "t1", status: "running" });
        await store.updateRunCompletion("done", { status: "success", totalTokens: 5 });
        expect((await store.aggregateTokensByThread("t1")).totalRuns).toBe(1);
        await store.delete("r1");
        await store.delete("done");
        expect(await store.listInflight()).toEqual([]);
        expect((await store.aggregateTokensByThread("t1")).totalRuns).toBe(0);
        await store.put("r1", { threadId: "t1", status: "running" });
        expect((await store.listInflight()).map((r) => r.runId)).toEqual(["r1"]);
      });
    });

    describe("update_model_name", () => {
      it("sets the normalised model_name and updated_at; null is allowed", async () => {
        await store.put("r1", {
          threadId: "t1",
          modelName: "old",
          createdAt: "2026-01-01T00:00:00Z",
        });
        const mark = await laterMark();
        await store.updateModelName("r1", `  ${"🦌".repeat(130)}  `);
        const after = await mustGet("r1");
        expect(after.modelName).toBe("🦌".repeat(128));
        expect(ms(after.updatedAt) >= ms(mark)).toBe(true);
        await store.updateModelName("r1", null);
        expect((await mustGet("r1")).modelName).toBeNull();
      });

      it("is a no-op when the row is missing", async () => {
        await store.updateModelName("missing", "m");
        expect(await store.get("missing")).toBeNull();
      });
    });

    describe("update_run_completion", () => {
      it("returns true and overwrites status and all eight counters; false for a missing row", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        const mark = await laterMark();
        expect(await store.updateRunCompletion("r1", { status: "success", ...COUNTERS })).toBe(
          true,
        );
        const run = await mustGet("r1");
        expect(run).toMatchObject({ status: "success", ...COUNTERS });
        expect(ms(run.updatedAt) >= ms(mark)).toBe(true);
        expect(await store.updateRunCompletion("missing", { status: "success" })).toBe(false);
        expect(await store.get("missing")).toBeNull();
      });

      it("writes an omitted counter as 0", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        await store.updateRunCompletion("r1", { status: "success", ...COUNTERS });
        expect(await store.updateRunCompletion("r1", { status: "error", totalTokens: 5 })).toBe(
          true,
        );
        expect(await mustGet("r1")).toMatchObject({
          status: "error",
          ...ZERO_COUNTERS,
          totalTokens: 5,
        });
      });

      it("sets messages (cut to 2000 code points) and error only when given", async () => {
        await store.put("r1", { threadId: "t1", status: "running", error: "kept" });
        await store.updateRunCompletion("r1", {
          status: "success",
          lastAiMessage: "🦌".repeat(2001),
          firstHumanMessage: `${"x".repeat(1999)}🦌🦌`,
        });
        let run = await mustGet("r1");
        expect(run.lastAiMessage).toBe("🦌".repeat(2000));
        expect(run.firstHumanMessage).toBe(`${"x".repeat(1999)}🦌`);
        expect(run.error).toBe("kept");
        await store.updateRunCompletion("r1", { status: "error", error: "failed" });
        run = await mustGet("r1");
        expect(run.lastAiMessage).toBe("🦌".repeat(2000));
        expect(run.firstHumanMessage).toBe(`${"x".repeat(1999)}🦌`);
        expect(run.error).toBe("failed");
      });

      it("never touches thread_id, assistant_id, user_id, metadata, kwargs, created_at", async () => {
        const fields = {
          threadId: "t1",
          assistantId: "a",
          userId: "alice",
          metadata: { m: 1 },
          kwargs: { k: 2 },
          createdAt: "2026-01-01T00:00:00.000001Z",
        };
        await store.put("r1", { ...fields, status: "running" });
        await store.updateRunCompletion("r1", { status: "success", ...COUNTERS });
        expect(await mustGet("r1")).toMatchObject({
          ...fields,
          createdAt: "2026-01-01T00:00:00.000001Z",
        });
      });
    });

    describe("update_run_progress", () => {
      it("applies only while the row's status is running", async () => {
        const others = ["pending", "success", "error", "timeout", "interrupted"] as const;
        for (const status of [...others, "running" as const]) {
          await store.put(status, { threadId: "t1", status });
        }
        const before = await mustGet("pending");
        const mark = await laterMark();
        for (const status of [...others, "running"]) {
          await store.updateRunProgress(status, { totalTokens: 9, lastAiMessage: "partial" });
        }
        const running = await mustGet("running");
        expect(running).toMatchObject({ totalTokens: 9, lastAiMessage: "partial" });
        expect(ms(running.updatedAt) >= ms(mark)).toBe(true);
        for (const status of others) {
          expect(await mustGet(status), status).toMatchObject({
            status,
            totalTokens: 0,
            lastAiMessage: null,
          });
        }
        expect((await mustGet("pending")).updatedAt).toBe(before.updatedAt);
      });

      it("is a silent no-op for a missing row", async () => {
        await expect(
          store.updateRunProgress("missing", { totalTokens: 1 }),
        ).resolves.toBeUndefined();
        expect(await store.get("missing")).toBeNull();
      });

      it("writes only the given fields (0 is given); omitted fields keep their values", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        await store.updateRunProgress("r1", {
          ...COUNTERS,
          lastAiMessage: "ai",
          firstHumanMessage: "human",
        });
        await store.updateRunProgress("r1", {
          totalTokens: 0,
          llmCallCount: 4,
          messageCount: null,
        });
        expect(await mustGet("r1")).toMatchObject({
          ...COUNTERS,
          totalTokens: 0,
          llmCallCount: 4,
          lastAiMessage: "ai",
          firstHumanMessage: "human",
          status: "running",
        });
      });

      it("cuts messages to 2000 code points", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        await store.updateRunProgress("r1", {
          lastAiMessage: "😀".repeat(2500),
          firstHumanMessage: "h".repeat(2000),
        });
        const run = await mustGet("r1");
        expect(run.lastAiMessage).toBe("😀".repeat(2000));
        expect(run.firstHumanMessage).toBe("h".repeat(2000));
      });

      it("never overwrites a completion: a late snapshot after completion is a no-op", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        await store.updateRunCompletion("r1", {
          status: "success",
          ...COUNTERS,
          lastAiMessage: "final",
        });
        await store.updateRunProgress("r1", { totalTokens: 1, lastAiMessage: "late" });
        expect(await mustGet("r1")).toMatchObject({
          status: "success",
          ...COUNTERS,
          lastAiMessage: "final",
        });
      });

      it("concurrent snapshots racing a completion leave the completion's values", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 20; i++) {
          calls.push(store.updateRunProgress("r1", { totalTokens: 1000 + i }));
          if (i === 10)
            calls.push(store.updateRunCompletion("r1", { status: "success", ...COUNTERS }));
        }
        await Promise.all(calls);
        await store.updateRunProgress("r1", { totalTokens: 5000 });
        expect(await mustGet("r1")).toMatchObject({ status: "success", ...COUNTERS });
      });
    });

    describe("list_pending / list_inflight", () => {
      async function seed() {
        await store.put("p2", {
          threadId: "t1",
          userId: "alice",
          createdAt: "2026-01-01T00:00:02Z",
        });
        await store.put("p1b", {
          threadId: "t2",
          userId: "bob",
          createdAt: "2026-01-01T00:00:01Z",
        });
        await store.put("p1a", { threadId: "t1", createdAt: "2026-01-01T00:00:01Z" });
        await store.put("r1", {
          threadId: "t1",
          status: "running",
          createdAt: "2026-01-01T00:00:01.5Z",
        });
        await store.put("late", { threadId: "t1", createdAt: "2026-01-01T00:00:03Z" });
        await store.put("future", { threadId: "t1", createdAt: "9999-01-01T00:00:00Z" });
        for (const status of ["success", "error", "timeout", "interrupted"] as const) {
          await store.put(status, { threadId: "t1", status, createdAt: "2026-01-01T00:00:00Z" });
        }
      }

      it("list_pending: pending rows created at or before `before`, oldest first, ties by run_id, all users", async () => {
        await seed();
        const rows = await store.listPending({ before: "2026-01-01T00:00:02Z" });
        expect(rows.map((r) => r.runId)).toEqual(["p1a", "p1b", "p2"]);
      });

      it("list_inflight: pending or running rows, same order and bound", async () => {
        await seed();
        const rows = await store.listInflight({ before: "2026-01-01T00:00:02Z" });
        expect(rows.map((r) => r.runId)).toEqual(["p1a", "p1b", "r1", "p2"]);
      });

      it("`before` defaults to now", async () => {
        await seed();
        expect((await store.listPending()).map((r) => r.runId)).toEqual([
          "p1a",
          "p1b",
          "p2",
          "late",
        ]);
        expect((await store.listInflight()).map((r) => r.runId)).toEqual([
          "p1a",
          "p1b",
          "r1",
          "p2",
          "late",
        ]);
      });

      it("`before` compares at microsecond precision, inclusive, with any offset", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000002Z" });
        expect(await store.listPending({ before: "2026-01-01T00:00:00.000001Z" })).toEqual([]);
        expect(
          (await store.listPending({ before: "2026-01-01T08:00:00.000002+08:00" })).map(
            (r) => r.runId,
          ),
        ).toEqual(["r1"]);
        expect(
          (await store.listPending({ before: new Date("2026-01-01T00:00:00.001Z") })).map(
            (r) => r.runId,
          ),
        ).toEqual(["r1"]);
      });

      it("a row leaves list_inflight once it reaches a terminal status", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00Z" });
        await store.updateStatus("r1", "running");
        expect((await store.listInflight()).map((r) => r.runId)).toEqual(["r1"]);
        expect(await store.listPending()).toEqual([]);
        await store.updateRunCompletion("r1", { status: "timeout" });
        expect(await store.listInflight()).toEqual([]);
      });
    });

    describe("aggregate_tokens_by_thread", () => {
      async function finished(
        id: string,
        status: "success" | "error" | "running" | "timeout" | "interrupted" | "pending",
        model: string | null,
        n: number,
      ) {
        await store.put(id, { threadId: "t1", status: "running", modelName: model });
        if (status === "running") {
          await store.updateRunProgress(id, {
            totalTokens: n,
            totalInputTokens: n - 1,
            totalOutputTokens: 1,
            leadAgentTokens: n - 2,
            subagentTokens: 1,
            middlewareTokens: 1,
          });
        } else {
          await store.updateRunCompletion(id, {
            status,
            totalTokens: n,
            totalInputTokens: n - 1,
            totalOutputTokens: 1,
            leadAgentTokens: n - 2,
            subagentTokens: 1,
            middlewareTokens: 1,
          });
        }
      }

      it('sums success and error runs only; by_model with null as "unknown"; by_caller', async () => {
        await finished("s1", "success", "gpt", 100);
        await finished("s2", "success", "gpt", 50);
        await finished("e1", "error", null, 10);
        await finished("run", "running", "claude", 1000);
        await finished("to", "timeout", "gpt", 2000);
        await finished("int", "interrupted", "gpt", 3000);
        await finished("pend", "pending", "gpt", 4000);
        await store.put("other", { threadId: "t2", status: "success" });
        expect(await store.aggregateTokensByThread("t1")).toEqual({
          totalTokens: 160,
          totalInputTokens: 157,
          totalOutputTokens: 3,
          totalRuns: 3,
          byModel: { gpt: { tokens: 150, runs: 2 }, unknown: { tokens: 10, runs: 1 } },
          byCaller: { leadAgent: 154, subagent: 3, middleware: 3 },
        });
      });

      it("include_active also counts running runs, never pending/timeout/interrupted", async () => {
        await finished("s1", "success", "gpt", 100);
        await finished("run", "running", "claude", 1000);
        await finished("to", "timeout", "gpt", 2000);
        await finished("pend", "pending", "gpt", 4000);
        expect(await store.aggregateTokensByThread("t1", { includeActive: true })).toEqual({
          totalTokens: 1100,
          totalInputTokens: 1098,
          totalOutputTokens: 2,
          totalRuns: 2,
          byModel: { gpt: { tokens: 100, runs: 1 }, claude: { tokens: 1000, runs: 1 } },
          byCaller: { leadAgent: 1096, subagent: 2, middleware: 2 },
        });
      });

      it("model names that are also object keys (toString, constructor) are plain names", async () => {
        await finished("a", "success", "hasOwnProperty", 10);
        await finished("b", "success", "toString", 20);
        await finished("c", "error", "constructor", 30);
        await finished("d", "success", "unknown", 40);
        await finished("e", "success", null, 50);
        const usage = await store.aggregateTokensByThread("t1");
        expect(usage.totalTokens).toBe(150);
        expect(usage.totalRuns).toBe(5);
        expect(Object.entries(usage.byModel).sort()).toEqual([
          ["constructor", { tokens: 30, runs: 1 }],
          ["hasOwnProperty", { tokens: 10, runs: 1 }],
          ["toString", { tokens: 20, runs: 1 }],
          ["unknown", { tokens: 90, runs: 2 }],
        ]);
        expect(({} as Record<string, unknown>).tokens).toBeUndefined();
      });

      it('refuses model_name "__proto__", which a JavaScript protobuf map key cannot carry', async () => {
        await expectInvalid(
          store.put("r1", { threadId: "t1", modelName: " __proto__ " }),
          "model_name",
        );
        await store.put("r1", { threadId: "t1", modelName: "m" });
        await expectInvalid(store.updateModelName("r1", "__proto__"), "model_name");
        expect((await store.get("r1"))?.modelName).toBe("m");
      });

      it("a sum past 2^53-1 (the counters' bound) is OUT_OF_RANGE, never a rounded answer", async () => {
        await finished("big", "success", "m", Number.MAX_SAFE_INTEGER);
        await finished("one", "success", "m", 2);
        const error = await store.aggregateTokensByThread("t1").then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(error?.code).toBe(Code.OutOfRange);
      });

      it("an empty thread gives all zeros and an empty by_model", async () => {
        expect(await store.aggregateTokensByThread("empty", { includeActive: true })).toEqual({
          totalTokens: 0,
          totalInputTokens: 0,
          totalOutputTokens: 0,
          totalRuns: 0,
          byModel: {},
          byCaller: { leadAgent: 0, subagent: 0, middleware: 0 },
        });
      });
    });

    describe("timestamps", () => {
      it("converts any offset to UTC and treats a naive string as UTC", async () => {
        const cases: [string, string][] = [
          ["2026-01-01T08:00:00+08:00", "2026-01-01T00:00:00.000000Z"],
          ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z"],
          ["2026-01-01T00:00:00", "2026-01-01T00:00:00.000000Z"],
          ["2025-12-31T19:30:00.5-04:30", "2026-01-01T00:00:00.500000Z"],
          ["2026-03-04 05:06:07.000008", "2026-03-04T05:06:07.000008Z"],
          ["2026-01-01T08:00:00+08", "2026-01-01T00:00:00.000000Z"],
          ["2026-01-01T05:30:00+0530", "2026-01-01T00:00:00.000000Z"],
          ["1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"],
          ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"],
          ["1000-01-01T00:00:00Z", "1000-01-01T00:00:00.000000Z"],
        ];
        for (const [i, [input, expected]] of cases.entries()) {
          await store.put(`r${i}`, { threadId: "t1", createdAt: input });
          expect((await mustGet(`r${i}`)).createdAt, input).toBe(expected);
        }
      });

      it("truncates finer than microseconds, never rounding up", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00.1234569Z" });
        await store.put("r2", { threadId: "t1", createdAt: "2026-12-31T23:59:59.999999999Z" });
        expect((await mustGet("r1")).createdAt).toBe("2026-01-01T00:00:00.123456Z");
        expect((await mustGet("r2")).createdAt).toBe("2026-12-31T23:59:59.999999Z");
      });

      it("accepts a Date", async () => {
        await store.put("r1", {
          threadId: "t1",
          createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
        });
        expect((await mustGet("r1")).createdAt).toBe("2026-01-02T03:04:05.678000Z");
      });

      it("outputs fixed-width strings whose string order is time order", async () => {
        await store.put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:09Z" });
        await store.put("r2", { threadId: "t1", createdAt: "2026-01-01T00:00:10.5Z" });
        const [a, b] = [await mustGet("r1"), await mustGet("r2")];
        expect(a.createdAt).toBe("2026-01-01T00:00:09.000000Z");
        expect(b.createdAt).toBe("2026-01-01T00:00:10.500000Z");
        expect(a.createdAt < b.createdAt).toBe(true);
      });

      it("rejects a bad timestamp with INVALID_ARGUMENT naming the field", async () => {
        for (const bad of [
          "yesterday",
          "2026-02-30T00:00:00Z",
          "2026-01-01T24:00:00Z",
          "0999-12-31T23:59:59Z",
          "",
        ]) {
          await expectInvalid(store.put("r1", { threadId: "t1", createdAt: bad }), "created_at");
        }
        await expectInvalid(
          store.put("r1", { threadId: "t1", createdAt: new Date(Number.NaN) }),
          "created_at",
        );
        await expectInvalid(store.listPending({ before: "not a time" }), "before");
        await expectInvalid(store.listInflight({ before: "2026-13-01T00:00:00Z" }), "before");
        expect(await store.get("r1")).toBeNull();
      });
    });

    describe("errors: bad input is INVALID_ARGUMENT naming the field, and changes nothing", () => {
      it("ids: empty or longer than 64 characters (counted in code points)", async () => {
        await expectInvalid(store.put("", { threadId: "t1" }), "run_id");
        await expectInvalid(store.put("x".repeat(65), { threadId: "t1" }), "run_id");
        await expectInvalid(store.put("r1", { threadId: "" }), "thread_id");
        await expectInvalid(store.put("r1", { threadId: "t".repeat(65) }), "thread_id");
        await expectInvalid(store.put("r1", { threadId: "t1", userId: "" }), "user_id");
        await expectInvalid(
          store.put("r1", { threadId: "t1", assistantId: "a".repeat(129) }),
          "assistant_id",
        );
        await expectInvalid(store.get(""), "run_id");
        await expectInvalid(store.get("r1", { userId: "u".repeat(65) }), "user_id");
        await expectInvalid(store.listByThread(""), "thread_id");
        await expectInvalid(store.delete("x".repeat(65)), "run_id");
        await expectInvalid(store.updateStatus("", "running"), "run_id");
        await expectInvalid(store.updateModelName("", "m"), "run_id");
        await expectInvalid(store.updateRunCompletion("", { status: "success" }), "run_id");
        await expectInvalid(store.updateRunProgress("", { totalTokens: 1 }), "run_id");
        await expectInvalid(store.aggregateTokensByThread(""), "thread_id");
        expect(await store.listByThread("t1")).toEqual([]);
        await store.put("🦌".repeat(64), { threadId: "🦌".repeat(64), userId: "🦌".repeat(64) });
        expect((await store.get("🦌".repeat(64), { userId: "🦌".repeat(64) }))?.threadId).toBe(
          "🦌".repeat(64),
        );
      });

      it("strings with a lone surrogate (not encodable as UTF-8)", async () => {
        await expectInvalid(store.put("\ud800", { threadId: "t1" }), "run_id");
        await expectInvalid(store.put("r1", { threadId: "t\udc00" }), "thread_id");
        await expectInvalid(store.put("r1", { threadId: "t1", error: "bad \ud83d" }), "error");
        await store.put("r1", { threadId: "t1", status: "running" });
        await expectInvalid(
          store.updateRunProgress("r1", { lastAiMessage: "\udfff" }),
          "last_ai_message",
        );
        await expectInvalid(store.get("\ud800"), "run_id");
        expect(await mustGet("r1")).toMatchObject({ error: null, lastAiMessage: null });
      });

      it("unknown status or strategy", async () => {
        const cast = <T>(v: string) => v as unknown as T;
        await expectInvalid(store.put("r1", { threadId: "t1", status: cast("done") }), "status");
        await expectInvalid(
          store.put("r1", { threadId: "t1", multitaskStrategy: cast("queue") }),
          "multitask_strategy",
        );
        await expectInvalid(store.updateStatus("r1", cast("finished")), "status");
        await expectInvalid(store.updateRunCompletion("r1", { status: cast("") }), "status");
        await expectInvalid(store.updateStatus("r1", cast("toString")), "status");
        await expectInvalid(
          store.put("r1", { threadId: "t1", multitaskStrategy: cast("constructor") }),
          "multitask_strategy",
        );
        expect(await store.get("r1")).toBeNull();
      });

      it("negative, fractional or over-large counters", async () => {
        await store.put("r1", { threadId: "t1", status: "running" });
        await expectInvalid(
          store.updateRunCompletion("r1", { status: "success", totalTokens: -1 }),
          "total_tokens",
        );
        await expectInvalid(
          store.updateRunCompletion("r1", { status: "success", llmCallCount: 1.5 }),
          "llm_call_count",
        );
        await expectInvalid(
          store.updateRunCompletion("r1", {
            status: "success",
            messageCount: Number.MAX_SAFE_INTEGER + 2,
          }),
          "message_count",
        );
        await expectInvalid(
          store.updateRunProgress("r1", { subagentTokens: -5 }),
          "subagent_tokens",
        );
        await expectInvalid(
          store.updateRunProgress("r1", { middlewareTokens: Number.NaN }),
          "middleware_tokens",
        );
        const run = await mustGet("r1");
        expect(run).toMatchObject({ status: "running", ...ZERO_COUNTERS });
        await store.updateRunCompletion("r1", {
          status: "success",
          totalTokens: Number.MAX_SAFE_INTEGER,
        });
        expect((await mustGet("r1")).totalTokens).toBe(Number.MAX_SAFE_INTEGER);
      });

      it("metadata or kwargs that are not objects", async () => {
        const cast = (v: unknown) => v as Record<string, unknown>;
        await expectInvalid(
          store.put("r1", { threadId: "t1", metadata: cast([1, 2]) }),
          "metadata",
        );
        await expectInvalid(
          store.put("r1", { threadId: "t1", metadata: cast("text") }),
          "metadata",
        );
        await expectInvalid(store.put("r1", { threadId: "t1", kwargs: cast(42) }), "kwargs");
        expect(await store.get("r1")).toBeNull();
      });

      it("a rejected put leaves the existing row exactly as it was", async () => {
        await store.put("r1", { threadId: "t1", userId: "alice", metadata: { keep: true } });
        const before = await mustGet("r1");
        await expectInvalid(
          store.put("r1", { threadId: "t2", userId: "", metadata: { keep: false } }),
          "user_id",
        );
        await expectInvalid(
          store.put("r1", { threadId: "t2", createdAt: "garbage" }),
          "created_at",
        );
        expect(await mustGet("r1")).toEqual(before);
      });
    });
  });
}
