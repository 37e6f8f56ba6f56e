import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { pb } from "@runstore/client/internal";
import { describe, expect, it } from "vitest";
import { type Envelope, EnvelopeReader, parseEnvelope, webHeaders } from "./grpc-framing.js";

const frame = (flags: number, data: number[]) =>
  Buffer.from(encodeEnvelope(flags, Uint8Array.from(data)));
const plain = (envelopes: Envelope[] | ConnectError) =>
  (envelopes as Envelope[]).map((e) => ({ flags: e.flags, data: [...e.data] }));

describe("EnvelopeReader", () => {
  it("puts an envelope back together from chunks split anywhere, prefix included", () => {
    const bytes = frame(0, [1, 2, 3, 4, 5, 6]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const reader = new EnvelopeReader();
      expect(plain(reader.push(bytes.subarray(0, cut)))).toEqual([]);
      expect(reader.pending).toBe(true);
      expect(plain(reader.push(bytes.subarray(cut)))).toEqual([
        { flags: 0, data: [1, 2, 3, 4, 5, 6] },
      ]);
      expect(reader.pending).toBe(false);
    }
  });

  it("takes a chunk byte by byte", () => {
    const reader = new EnvelopeReader();
    const bytes = frame(0, [9, 8, 7]);
    const seen = [...bytes].flatMap((b) => plain(reader.push(Buffer.from([b]))));
    expect(seen).toEqual([{ flags: 0, data: [9, 8, 7] }]);
    expect(reader.pending).toBe(false);
  });

  it("returns every envelope of one chunk, in order, and keeps the partial rest", () => {
    const reader = new EnvelopeReader();
    const third = frame(0, [7, 7, 7]);
    const chunk = Buffer.concat([
      frame(0, [1]),
      frame(0, []),
      frame(0, [2, 3]),
      third.subarray(0, 6),
    ]);
    expect(plain(reader.push(chunk))).toEqual([
      { flags: 0, data: [1] },
      { flags: 0, data: [] },
      { flags: 0, data: [2, 3] },
    ]);
    expect(reader.pending).toBe(true);
    expect(plain(reader.push(third.subarray(6)))).toEqual([{ flags: 0, data: [7, 7, 7] }]);
    expect(reader.pending).toBe(false);
  });

  it("refuses an envelope over the limit as soon as its prefix is in", () => {
    const reader = new EnvelopeReader(4);
    expect(plain(reader.push(frame(0, [1, 2, 3, 4])))).toEqual([{ flags: 0, data: [1, 2, 3, 4] }]);
    // Only the 5-byte prefix of a 5-byte message: refused before its body.
    const refused = reader.push(frame(0, [1, 2, 3, 4, 5]).subarray(0, 5));
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((refused as ConnectError).rawMessage).toBe(
      "message size 5 is larger than configured readMaxBytes 4",
    );
  });

  it("keeps the flags byte for the caller", () => {
    const reader = new EnvelopeReader();
    expect(plain(reader.push(frame(1, [5])))).toEqual([{ flags: 1, data: [5] }]);
  });

  it("reports a truncated stream as pending: a prefix alone, or a body cut short", () => {
    const prefixOnly = new EnvelopeReader();
    expect(plain(prefixOnly.push(frame(0, [1, 2]).subarray(0, 3)))).toEqual([]);
    expect(prefixOnly.pending).toBe(true);
    const cutShort = new EnvelopeReader();
    expect(plain(cutShort.push(frame(0, [1, 2, 3]).subarray(0, 7)))).toEqual([]);
    expect(cutShort.pending).toBe(true);
    expect(new EnvelopeReader().pending).toBe(false);
  });
});

describe("parseEnvelope", () => {
  const request = create(pb.GetRequestSchema, { runId: "r-1" });

  it("parses an uncompressed envelope's message", () => {
    const parsed = parseEnvelope(
      { flags: 0, data: toBinary(pb.GetRequestSchema, request) },
      pb.GetRequestSchema,
    );
    expect(parsed).toMatchObject({ runId: "r-1" });
  });

  it("refuses a compressed envelope with Connect's error", () => {
    const parsed = parseEnvelope(
      { flags: 1, data: toBinary(pb.GetRequestSchema, request) },
      pb.GetRequestSchema,
    );
    expect(parsed).toBeInstanceOf(ConnectError);
    expect((parsed as ConnectError).code).toBe(Code.Internal);
    expect((parsed as ConnectError).rawMessage).toBe(
      "received compressed envelope, but do not know how to decompress",
    );
  });

  it("reports bytes that are not the message as INTERNAL, parse binary", () => {
    // Field 1 as a length-delimited string claiming 9 bytes, with 1 present.
    const parsed = parseEnvelope(
      { flags: 0, data: Uint8Array.from([10, 9, 65]) },
      pb.GetRequestSchema,
    );
    expect(parsed).toBeInstanceOf(ConnectError);
    expect((parsed as ConnectError).code).toBe(Code.Internal);
    expect((parsed as ConnectError).rawMessage).toMatch(/^parse binary: /);
  });
});

describe("webHeaders", () => {
  it("drops the pseudo-headers and keeps repeated values", () => {
    const headers = webHeaders({
      ":path": "/runstore.v1.RunStoreService/Get",
      "content-type": "application/grpc",
      "x-many": ["a", "b"],
    });
    expect([...headers]).toEqual([
      ["content-type", "application/grpc"],
      ["x-many", "a, b"],
    ]);
  });
});
