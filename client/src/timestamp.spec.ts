import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownBy } from "../../test/support/failure.js";
import {
  MAX_TIMESTAMP,
  MIN_TIMESTAMP,
  nowTimestamp,
  parseTimestamp,
  timestampFromProto,
  timestampToProto,
} from "./timestamp.js";

const FIXED_WIDTH = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe("parseTimestamp", () => {
  it.each([
    ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01T00:00:00z", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01T08:00:00+08:00", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01T08:00:00+0800", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01T08:00:00+08", "2026-01-01T00:00:00.000000Z"],
    ["2025-12-31T19:30:00-04:30", "2026-01-01T00:00:00.000000Z"],
    // Naive means UTC.
    ["2026-01-01T00:00:00", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01 00:00:00.5", "2026-01-01T00:00:00.500000Z"],
    ["2026-01-01T00:00", "2026-01-01T00:00:00.000000Z"],
    ["2026-01-01T00:00:00,25Z", "2026-01-01T00:00:00.250000Z"],
    ["2026-02-28T23:59:59.123456+00:00", "2026-02-28T23:59:59.123456Z"],
    // An offset that crosses into the previous day and year.
    ["2026-01-01T01:00:00+02:00", "2025-12-31T23:00:00.000000Z"],
    ["2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000000Z"],
  ])("%s → %s", (input, expected) => {
    expect(parseTimestamp(input, "created_at")).toBe(expected);
  });

  it("truncates below microseconds, never rounding up", () => {
    expect(parseTimestamp("2026-01-01T00:00:00.1234569Z", "t")).toBe("2026-01-01T00:00:00.123456Z");
    // All nines stays in the same second rather than carrying into the next.
    expect(parseTimestamp("2026-12-31T23:59:59.999999999Z", "t")).toBe(
      "2026-12-31T23:59:59.999999Z",
    );
  });

  it("reads a Date to the millisecond", () => {
    expect(parseTimestamp(new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 7)), "t")).toBe(
      "2026-01-01T00:00:00.007000Z",
    );
    expect(parseTimestamp(new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 999)), "t")).toBe(
      "1969-12-31T23:59:59.999000Z",
    );
  });

  it("accepts the range limits, in UTC after the offset", () => {
    expect(parseTimestamp(MIN_TIMESTAMP, "t")).toBe("1000-01-01T00:00:00.000000Z");
    expect(parseTimestamp(MAX_TIMESTAMP, "t")).toBe("9999-12-31T23:59:59.999999Z");
    expect(parseTimestamp("1000-01-01T01:00:00+01:00", "t")).toBe(MIN_TIMESTAMP);
    expect(parseTimestamp("9999-12-31T22:59:59.999999-01:00", "t")).toBe(MAX_TIMESTAMP);
  });

  it.each([
    // A year below 1000 as written is not a date the stores know at all.
    [
      "0999-12-31T23:59:59.999999Z",
      't is not a valid date and time: "0999-12-31T23:59:59.999999Z"',
    ],
    ["1000-01-01T00:30:00+01:00", "t must lie between years 1000 and 9999 (UTC)"],
    ["9999-12-31T23:30:00-01:00", "t must lie between years 1000 and 9999 (UTC)"],
  ])("refuses %s: out of range", (input, message) => {
    const error = thrownBy(() => parseTimestamp(input, "t"));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(message);
  });

  it.each([
    "2026-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:60:00Z",
    "2026-01-01T00:00:60Z",
  ])("refuses %s: no such date or time", (input) => {
    const error = thrownBy(() => parseTimestamp(input, "created_at"));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(
      `created_at is not a valid date and time: ${JSON.stringify(input)}`,
    );
  });

  it("refuses an offset beyond 23:59", () => {
    const error = thrownBy(() => parseTimestamp("2026-01-01T00:00:00+24:00", "t"));
    expect(error.rawMessage).toBe('t has an invalid UTC offset: "2026-01-01T00:00:00+24:00"');
  });

  it.each(["", "yesterday", "2026-01-01", "2026-1-1T00:00:00Z", "2026-01-01T00:00:00 Z"])(
    "refuses %j: not ISO 8601",
    (input) => {
      const error = thrownBy(() => parseTimestamp(input, "created_at"));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe(
        `created_at must be an ISO 8601 timestamp, got ${JSON.stringify(input)}`,
      );
    },
  );

  it("refuses an invalid Date and one out of range, and other types", () => {
    for (const date of [new Date(Number.NaN), new Date(Date.UTC(999, 0, 1))]) {
      expect(thrownBy(() => parseTimestamp(date, "t")).rawMessage).toBe(
        "t must be a valid date between years 1000 and 9999",
      );
    }
    expect(thrownBy(() => parseTimestamp(12 as unknown as string, "t")).rawMessage).toBe(
      "t must be an ISO 8601 string or a Date",
    );
  });
});

describe("protobuf Timestamp", () => {
  it("round-trips the fixed-width form with microseconds", () => {
    const proto = timestampToProto("2026-01-01T00:00:01.000123Z");
    expect([proto.seconds, proto.nanos]).toEqual([1767225601n, 123_000]);
    expect(timestampFromProto(proto, "t")).toBe("2026-01-01T00:00:01.000123Z");
    for (const limit of [MIN_TIMESTAMP, MAX_TIMESTAMP]) {
      expect(timestampFromProto(timestampToProto(limit), "t")).toBe(limit);
    }
  });

  it("truncates nanoseconds to microseconds", () => {
    const proto = create(TimestampSchema, { seconds: 0n, nanos: 999_999_999 });
    expect(timestampFromProto(proto, "t")).toBe("1970-01-01T00:00:00.999999Z");
  });

  it("refuses nanos outside 0..999999999 and seconds out of range", () => {
    const bad = [
      [create(TimestampSchema, { seconds: 0n, nanos: -1 }), "t has nanos outside 0..999999999"],
      [
        create(TimestampSchema, { seconds: 0n, nanos: 1_000_000_000 }),
        "t has nanos outside 0..999999999",
      ],
      [
        create(TimestampSchema, { seconds: timestampToProto(MIN_TIMESTAMP).seconds - 1n }),
        "t must lie between years 1000 and 9999 (UTC)",
      ],
      [
        create(TimestampSchema, { seconds: timestampToProto(MAX_TIMESTAMP).seconds + 1n }),
        "t must lie between years 1000 and 9999 (UTC)",
      ],
    ] as const;
    for (const [proto, message] of bad) {
      const error = thrownBy(() => timestampFromProto(proto, "t"));
      expect([error.code, error.rawMessage]).toEqual([Code.InvalidArgument, message]);
    }
  });
});

describe("nowTimestamp", () => {
  it("is fixed-width UTC and never goes back", () => {
    const taken = Array.from({ length: 1000 }, () => nowTimestamp());
    for (const t of taken) expect(t).toMatch(FIXED_WIDTH);
    // String order is time order for the fixed-width form.
    expect([...taken].sort()).toEqual(taken);
  });

  it("has microsecond resolution: instants 200 µs apart differ", () => {
    const taken: string[] = [];
    for (let i = 0; i < 20; i++) {
      // Spins 200 µs of the clock under test's own source (not synchronisation: the interval measured).
      const until = performance.now() + 0.2;
      while (performance.now() < until) {}
      taken.push(nowTimestamp());
    }
    expect(new Set(taken).size).toBe(taken.length);
  });
});
