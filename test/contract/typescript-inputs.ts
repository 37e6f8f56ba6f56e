import type { RunRecord, RunStore } from "@runstore/client";
import { describe, expect, it } from "vitest";
import { expectInvalid } from "./run-store-contract.js";

/**
 * Contract rules whose inputs JSON cannot hold, so they cannot live in
 * cases/*.json: bigint, Date, class instances, undefined, functions, circular
 * references, and the caller's own objects changed after the call. Run inside
 * runStoreContract, against every store; `setUp` registers the hooks that
 * open and close `store` around each test.
 */
export function typescriptInputs(store: () => RunStore, setUp: () => void): void {
  async function mustGet(runId: string): Promise<RunRecord> {
    const record = await store().get(runId);
    expect(record, `run ${runId} should exist`).not.toBeNull();
    return record as RunRecord;
  }

  describe("TypeScript inputs (JSON values, Timestamps)", () => {
    setUp();
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
      await store().put("r1", {
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

    it("stores a copy: changing the caller's object afterwards changes nothing", async () => {
      const metadata = { a: { b: 1 } };
      await store().put("r1", { threadId: "t1", metadata });
      metadata.a.b = 2;
      const run = await mustGet("r1");
      expect(run.metadata).toEqual({ a: { b: 1 } });
      (run.metadata.a as { b: number }).b = 3;
      expect((await mustGet("r1")).metadata).toEqual({ a: { b: 1 } });
    });

    it("accepts a Date as created_at", async () => {
      await store().put("r1", {
        threadId: "t1",
        createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)),
      });
      expect((await mustGet("r1")).createdAt).toBe("2026-01-02T03:04:05.678000Z");
    });

    it("`before` accepts a Date, compared at microsecond precision, inclusive", async () => {
      await store().put("r1", { threadId: "t1", createdAt: "2026-01-01T00:00:00.000002Z" });
      const pendingUpTo = (iso: string) => store().listPending({ before: new Date(iso) });
      expect((await pendingUpTo("2026-01-01T00:00:00.001Z")).map((r) => r.runId)).toEqual(["r1"]);
      expect(await pendingUpTo("2026-01-01T00:00:00.000Z")).toEqual([]);
    });

    it("rejects an invalid Date with INVALID_ARGUMENT naming the field", async () => {
      await expectInvalid(
        store().put("r1", { threadId: "t1", createdAt: new Date(Number.NaN) }),
        "created_at",
      );
      await expectInvalid(store().listInflight({ before: new Date(Number.NaN) }), "before");
      expect(await store().get("r1")).toBeNull();
    });
  });
}
