import { Code, ConnectError } from "@connectrpc/connect";
import { isTransientError } from "@runstore/client";
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
