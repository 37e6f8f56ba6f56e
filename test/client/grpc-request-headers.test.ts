import type { Transport } from "@connectrpc/connect";
import { requestHeader } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { grpcRequestHeaders, nodeHeaders } from "../../client/src/grpc-request-headers.js";

// The gRPC transport's request headers skip Connect's Headers object for
// plain headers: they must be exactly what Connect's requestHeader gives,
// for those and for every header that takes the long way.

type HeaderInit = Parameters<Transport["unary"]>[3];

const CASES: [string, HeaderInit, number | undefined][] = [
  ["none", undefined, undefined],
  ["none, with a timeout", undefined, 1500],
  ["a token", { authorization: "Bearer abc.def-ghi" }, 30000],
  ["token and traceparent", { authorization: "Bearer t", traceparent: "00-ab-cd-01" }, undefined],
  ["an empty value", { "x-empty": "" }, undefined],
  ["the caller's user-agent", { "user-agent": "mine/1" }, undefined],
  ["headers the protocol sets", { te: "x", "content-type": "text/plain", "grpc-timeout": "9m" }, 5],
  ["a grpc-timeout kept without a timeout", { "grpc-timeout": "9m" }, undefined],
  ["upper-case names", { Authorization: "Bearer t" }, undefined],
  ["spaces around a value", { authorization: "  Bearer t\t" }, undefined],
  ["a space inside a value", { "x-a": "one two" }, undefined],
  ["a non-ASCII value", { "x-a": "café" }, undefined],
  [
    "an array",
    [
      ["x-a", "1"],
      ["X-B", " 2 "],
    ],
    10,
  ],
  ["a Headers", new Headers({ "X-A": "1" }), undefined],
];

describe("grpcRequestHeaders", () => {
  for (const [name, header, timeoutMs] of CASES) {
    it(`${name}: as requestHeader gives them`, () => {
      const expected = nodeHeaders(requestHeader(true, timeoutMs, header));
      expect(grpcRequestHeaders(timeoutMs, header)).toEqual(expected);
    });
  }

  it("a value Headers refuses is refused as Headers refuses it", () => {
    const bad = { authorization: "Bearer a\nb" };
    expect(() => requestHeader(true, undefined, bad)).toThrow(TypeError);
    expect(() => grpcRequestHeaders(undefined, bad)).toThrow(TypeError);
  });
});
