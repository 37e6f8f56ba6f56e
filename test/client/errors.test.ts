import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { isTransientError, threadConflict } from "@runstore/client";
import { pb, threadConflictError } from "@runstore/client/internal";
import { describe, expect, it } from "vitest";

describe("isTransientError", () => {
  const transient = new Set([Code.Unavailable, Code.Aborted]);
  const codes = Object.values(Code).filter((c): c is Code => typeof c === "number");

  it("covers all 16 codes", () => {
    expect(codes).toHaveLength(16);
  });

  for (const code of codes) {
    const expected = transient.has(code);
    it(`${Code[code]}: ${expected}`, () => {
      expect(isTransientError(new ConnectError("x", code))).toBe(expected);
    });
  }

  it("true for a ConnectError the transport made from a refused connection", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
      code: "ECONNREFUSED",
    });
    const error = new ConnectError(
      "connect ECONNREFUSED",
      Code.Unavailable,
      undefined,
      undefined,
      refused,
    );
    expect(isTransientError(error)).toBe(true);
  });

  it("false for anything that is not a ConnectError", () => {
    for (const value of [
      new Error("database unavailable"),
      new TypeError("bad"),
      { code: Code.Unavailable, message: "look-alike" },
      "unavailable",
      Code.Unavailable,
      null,
      undefined,
    ]) {
      expect(isTransientError(value)).toBe(false);
    }
  });
});

describe("isTransientError and thread conflicts", () => {
  it("false for ABORTED with a ThreadConflict detail: the thread is busy, an answer", () => {
    expect(isTransientError(threadConflictError("thread-1", "run-1"))).toBe(false);
  });

  it("false for a thread conflict decoded from the wire (details as bytes)", () => {
    const detail = create(pb.ThreadConflictSchema, {
      threadId: "thread-1",
      conflictingRunId: "run-1",
    });
    // As Connect builds a received error: the detail's type name and bytes.
    const received = new ConnectError("thread_id thread-1 is busy", Code.Aborted);
    received.details.push({
      type: pb.ThreadConflictSchema.typeName,
      value: toBinary(pb.ThreadConflictSchema, detail),
    });
    expect(threadConflict(received)).toEqual({ threadId: "thread-1", conflictingRunId: "run-1" });
    expect(isTransientError(received)).toBe(false);
  });

  it("true for ABORTED without a ThreadConflict detail, or with another detail", () => {
    expect(isTransientError(new ConnectError("write conflict", Code.Aborted))).toBe(true);
    const other = new ConnectError("write conflict", Code.Aborted, undefined, [
      { desc: pb.IdempotencyConflictSchema, value: {} },
    ]);
    expect(isTransientError(other)).toBe(true);
  });
});
