import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownBy } from "../../test/support/failure.js";
import {
  checkBoolean,
  checkCounter,
  checkId,
  checkLimit,
  checkOptionalId,
  checkOptionalText,
  checkStatus,
  checkStrategy,
  checkString,
  codePointLength,
  MAX_COUNTER,
  MAX_LIMIT,
} from "./validation.js";

/** The message of the InvalidArgument `fn` throws. */
function refusal(fn: () => unknown): string {
  const error = thrownBy(fn);
  expect(error.code).toBe(Code.InvalidArgument);
  return error.rawMessage;
}

const EMOJI = "\u{1F600}"; // one code point, two UTF-16 units
const FAMILY = "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}"; // 5 code points, 8 units

describe("codePointLength", () => {
  it.each([
    ["", 0],
    ["abc", 3],
    ["é", 1],
    ["e\u0301", 2], // a combining accent is its own code point
    [EMOJI, 1],
    [`a${EMOJI}b`, 3],
    [FAMILY, 5],
    ["\u{10FFFF}", 1],
    // Lone surrogates count one each, paired or not in the wrong order.
    ["\uD800", 1],
    ["\uDC00\uD800", 2],
    [`\uD800${EMOJI}`, 2],
  ])("%j has %i code points", (value, expected) => {
    expect(codePointLength(value)).toBe(expected);
    if (value.isWellFormed()) expect(codePointLength(value)).toBe([...value].length);
  });
});

describe("checkString", () => {
  it("bounds by code points, not UTF-16 units", () => {
    const sixtyFour = EMOJI.repeat(64); // 128 units
    expect(checkString("run_id", sixtyFour, 1, 64)).toBe(sixtyFour);
    expect(refusal(() => checkString("run_id", `${sixtyFour}a`, 1, 64))).toBe(
      "run_id must be 1 to 64 characters, got 65",
    );
  });

  it("names the field and the bounds", () => {
    expect(refusal(() => checkString("thread_id", "", 1, 64))).toBe(
      "thread_id must be 1 to 64 characters, got 0",
    );
    expect(refusal(() => checkString("error", "abcd", 0, 3))).toBe(
      "error must be at most 3 characters, got 4",
    );
  });

  it("refuses a lone surrogate and non-strings", () => {
    expect(refusal(() => checkString("run_id", "a\uD800", 1, 64))).toBe(
      "run_id must be valid Unicode (it has a lone surrogate)",
    );
    expect(refusal(() => checkString("run_id", 7, 1, 64))).toBe(
      "run_id must be a string, got number",
    );
    expect(refusal(() => checkString("run_id", null, 1, 64))).toBe(
      "run_id must be a string, got null",
    );
  });

  it("ids are 1 to 64; optional ones and text take null and undefined as absent", () => {
    expect(checkId("user_id", "u")).toBe("u");
    expect(refusal(() => checkId("user_id", "x".repeat(65)))).toBe(
      "user_id must be 1 to 64 characters, got 65",
    );
    expect(checkOptionalId("user_id", null)).toBeNull();
    expect(checkOptionalId("user_id", undefined)).toBeNull();
    expect(refusal(() => checkOptionalId("user_id", ""))).toBe(
      "user_id must be 1 to 64 characters, got 0",
    );
    expect(checkOptionalText("error", undefined)).toBeNull();
    expect(checkOptionalText("error", "")).toBe("");
    expect(refusal(() => checkOptionalText("error", 1))).toBe("error must be a string, got number");
  });
});

describe("checkCounter", () => {
  it("accepts integers from 0 to 2^53-1", () => {
    expect(checkCounter("total_tokens", 0)).toBe(0);
    expect(checkCounter("total_tokens", MAX_COUNTER)).toBe(2 ** 53 - 1);
  });

  it.each([
    [-1, "total_tokens must be >= 0, got -1"],
    [2 ** 53, `total_tokens must be <= ${2 ** 53 - 1}, got ${2 ** 53}`],
    [1.5, "total_tokens must be an integer, got 1.5"],
    [Number.NaN, "total_tokens must be an integer, got NaN"],
    [Number.POSITIVE_INFINITY, "total_tokens must be an integer, got Infinity"],
    ["3", "total_tokens must be an integer, got 3"],
    [null, "total_tokens must be an integer, got null"],
    [3n, "total_tokens must be an integer, got 3"],
  ])("refuses %o, naming the field", (value, message) => {
    expect(refusal(() => checkCounter("total_tokens", value))).toBe(message);
  });
});

describe("checkLimit", () => {
  it("defaults to 100 and accepts 0..10000", () => {
    expect(checkLimit("limit", undefined)).toBe(100);
    expect(checkLimit("limit", null)).toBe(100);
    expect(checkLimit("limit", 0)).toBe(0);
    expect(checkLimit("limit", MAX_LIMIT)).toBe(10_000);
  });

  it.each([
    [-1, "limit must be between 0 and 10000, got -1"],
    [10_001, "limit must be between 0 and 10000, got 10001"],
    [2.5, "limit must be an integer, got 2.5"],
    ["10", "limit must be an integer, got 10"],
  ])("refuses %o, naming the field", (value, message) => {
    expect(refusal(() => checkLimit("limit", value))).toBe(message);
  });
});

describe("enums and flags", () => {
  it("status and strategy accept their names only", () => {
    expect(checkStatus("status", "timeout")).toBe("timeout");
    expect(refusal(() => checkStatus("status", "done"))).toBe(
      "status must be one of pending, running, success, error, timeout, interrupted, got done",
    );
    expect(checkStrategy("multitask_strategy", "enqueue")).toBe("enqueue");
    expect(refusal(() => checkStrategy("multitask_strategy", "RETRY"))).toBe(
      "multitask_strategy must be one of reject, interrupt, rollback, enqueue, got RETRY",
    );
  });

  it("a flag must be a boolean", () => {
    expect(checkBoolean("include_active", false)).toBe(false);
    expect(refusal(() => checkBoolean("include_active", "true"))).toBe(
      "include_active must be a boolean, got string",
    );
  });
});
