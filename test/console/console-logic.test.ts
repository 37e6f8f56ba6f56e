import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  DayStatsSchema,
  RunChangeKind,
  RunChangeSchema,
  RunSchema,
  RunStatus,
  TokenTotalsSchema,
} from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { utcOffset } from "../../console/src/format.js";
import { applyChange, newestFirst } from "../../console/src/live-runs.js";
import { filtersOf, searchRequest } from "../../console/src/search-filters.js";
import { usageSeries } from "../../console/src/usage-series.js";

// The console's pure parts, without a browser: how the live page applies a
// change, how usage days become chart series, how the runs page's hash
// becomes a SearchRuns request, and the offset GetRunStats is given.

const run = (runId: string, second: number) =>
  create(RunSchema, {
    runId,
    threadId: "t",
    status: RunStatus.RUNNING,
    createdAt: timestampFromDate(new Date(Date.UTC(2026, 0, 1, 0, 0, second))),
  });

describe("live runs", () => {
  it("a change puts its row in; leaving the filter or a deletion takes it out", () => {
    const change = (kind: RunChangeKind, row: ReturnType<typeof run>, leftFilter = false) =>
      create(RunChangeSchema, { kind, run: row, leftFilter });
    let runs = applyChange(new Map(), change(RunChangeKind.CREATED, run("a", 1)));
    runs = applyChange(runs, change(RunChangeKind.CREATED, run("b", 2)));
    runs = applyChange(runs, change(RunChangeKind.CREATED, run("c", 2)));
    expect(newestFirst(runs).map((r) => r.runId)).toEqual(["c", "b", "a"]);
    const finished = { ...run("b", 2), status: RunStatus.SUCCESS };
    runs = applyChange(runs, change(RunChangeKind.UPDATED, finished, true));
    runs = applyChange(runs, change(RunChangeKind.DELETED, run("a", 1)));
    expect(newestFirst(runs).map((r) => r.runId)).toEqual(["c"]);
    const updated = applyChange(
      runs,
      change(RunChangeKind.UPDATED, { ...run("c", 2), totalTokens: 5n }),
    );
    expect(updated.get("c")?.totalTokens).toBe(5n);
  });
});

describe("usage series", () => {
  it("spans every day of the range, 0 where a model ran nothing, models sorted", () => {
    const totals = (totalTokens: bigint) => create(TokenTotalsSchema, { totalTokens });
    const days = [
      create(DayStatsSchema, { date: "2026-01-02", byModel: { b: totals(3n), a: totals(1n) } }),
      create(DayStatsSchema, { date: "2026-01-04", byModel: { a: totals(7n) } }),
    ];
    expect(usageSeries(days, "2026-01-01", "2026-01-04")).toEqual({
      dates: ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
      models: ["a", "b"],
      tokens: [
        [0, 1, 0, 7],
        [0, 3, 0, 0],
      ],
    });
    expect(usageSeries([], "2026-01-05", "2026-01-04").dates).toEqual([]);
  });
});

describe("runs page filters", () => {
  it("the hash's filters make the SearchRuns request; unknown statuses and sizes are dropped", () => {
    const filters = filtersOf(
      new URLSearchParams(
        "user=u1&status=error,bogus,running&from=2026-01-02&to=2026-01-03&size=7",
      ),
    );
    expect(filters.size).toBe("20");
    const request = searchRequest(filters, "tok");
    expect(request.userId).toBe("u1");
    expect(request.threadId).toBe(undefined);
    expect(request.statuses).toEqual([RunStatus.RUNNING, RunStatus.ERROR]);
    expect([request.pageSize, request.pageToken]).toEqual([20, "tok"]);
    // Local midnights: the first day's start and the day after the last.
    const ms = (ts: typeof request.createdAfter) =>
      ts === undefined ? null : timestampDate(ts).getTime();
    expect([ms(request.createdAfter), ms(request.createdBefore)]).toEqual([
      new Date(2026, 0, 2).getTime(),
      new Date(2026, 0, 4).getTime(),
    ]);
  });
});

describe("utcOffset", () => {
  it("is the browser's offset as +HH:MM / -HH:MM", () => {
    const at = (minutesWest: number) => ({ getTimezoneOffset: () => minutesWest }) as Date;
    expect([at(-540), at(-330), at(0), at(300), at(570)].map(utcOffset)).toEqual([
      "+09:00",
      "+05:30",
      "+00:00",
      "-05:00",
      "-09:30",
    ]);
  });
});
