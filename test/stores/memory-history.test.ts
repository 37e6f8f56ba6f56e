import {
  Code,
  nowTimestamp,
  OPERATION_KINDS,
  type Page,
  type PageRequest,
  type PutFields,
  type RunRecord,
  type RunStats,
  type ThreadSummary,
} from "@runstore/client";
import { describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";
import { until } from "../support/until.js";

// MemoryRunStore's history (issue 15; the rules in docs/contract.md,
// "History"). Decisions where the rules leave room, which the shared
// contract cases should follow too:
// - model_name in SearchRuns is normalised exactly as put normalises it
//   (check-history.ts): surrounding whitespace stripped, cut to 128 code points,
//   no length refusal; "  gpt  " finds runs stored as "gpt".
// - GetRunStats' by_model keys come out in code-point order (a record, so the
//   order is only cosmetic); a model_name of "" stays "" (only null is "unknown").
// - A sum past 2^53-1 (tokens in GetRunStats, total_tokens in ListThreads) is
//   OUT_OF_RANGE, as in aggregate_tokens_by_thread, never a rounded number.
// - ListThreads' last_activity_at is the max updated_at over the visible runs
//   only; busy looks at every row of the thread (any kind, any user).
// - DeleteThread with user_id and without force is refused while ANY row of the
//   thread (another user's included) is active, and then removes nothing.
// - The expired-lease pages check grace_seconds like the unpaged call.

const T0 = Date.parse("2024-01-01T00:00:00Z");

/** An instant `seconds` after T0, as a caller writes it. */
function at(seconds: number): string {
  return new Date(T0 + seconds * 1000).toISOString();
}

/** The stored form of at(seconds). */
function stored(seconds: number): string {
  return at(seconds).replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** A small deterministic generator, so a failing walk can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Refused as INVALID_ARGUMENT with a message starting with `field`. */
/**
 * Waits until the store's clock (nowTimestamp) has passed every instant it
 * gave so far: two calls in one microsecond get equal instants, and the order
 * a test asserts must not rest on a tie.
 */
async function clockMoves(): Promise<void> {
  const now = nowTimestamp();
  await until(() => nowTimestamp() > now, "the store's clock to move on");
}

async function invalid(call: Promise<unknown>, field: string): Promise<void> {
  const error = await failureOf(call);
  expect(error.code).toBe(Code.InvalidArgument);
  expect(error.rawMessage.startsWith(`${field} `)).toBe(true);
}

/** A run's sort key as one comparable string (fixed-width instants, ASCII ids). */
function runKey(run: RunRecord): string {
  return `${run.createdAt}|${run.runId}`;
}

interface Walk {
  ids: string[];
  pages: Page<RunRecord>[];
}

/**
 * Reads every page of `fetch`; before each page after the first, `between`
 * may change the store, told the last run read so far.
 */
async function walk(
  fetch: (page: PageRequest) => Promise<Page<RunRecord>>,
  pageSize: number,
  between: (last: RunRecord) => Promise<void> = async () => {},
): Promise<Walk> {
  const pages: Page<RunRecord>[] = [];
  let pageToken: string | null = null;
  do {
    const last = pages.at(-1)?.items.at(-1);
    if (last !== undefined) await between(last);
    const page: Page<RunRecord> = await fetch({ pageSize, pageToken });
    pages.push(page);
    pageToken = page.nextPageToken;
  } while (pageToken !== null);
  return { ids: pages.flatMap((page) => page.items.map((run) => run.runId)), pages };
}

/** Every page full but the last; has_more and the token say so; the keys strictly in `order`. */
function expectWellFormed(result: Walk, pageSize: number, newestFirst: boolean): void {
  result.pages.forEach((page, index) => {
    const last = index === result.pages.length - 1;
    expect(page.hasMore).toBe(!last);
    expect(page.nextPageToken === null).toBe(last);
    if (!last) expect(page.items).toHaveLength(pageSize);
  });
  const keys = result.pages.flatMap((page) => page.items.map(runKey));
  const sorted = [...keys].sort();
  if (newestFirst) sorted.reverse();
  expect(keys).toEqual(sorted);
  expect(new Set(keys).size).toBe(keys.length);
}

/**
 * Walks `fetch` while `insert` adds runs between pages at random creation
 * instants; every run present from the start is read exactly once, and each
 * added run is read exactly when it sorts after the last run read when it
 * was added.
 */
async function walkWithInserts(
  fetch: (page: PageRequest) => Promise<Page<RunRecord>>,
  insert: (runId: string, createdAt: string) => Promise<void>,
  present: string[],
  newestFirst: boolean,
): Promise<void> {
  const next = random(15);
  const expected = new Set(present);
  let added = 0;
  const result = await walk(fetch, 7, async (last) => {
    for (let i = 0; i < 3; i++) {
      const runId = `n${String(added++).padStart(3, "0")}`;
      const second = Math.floor(next() * 50) - 5;
      await insert(runId, at(second));
      const key = `${stored(second)}|${runId}`;
      if (newestFirst ? key < runKey(last) : key > runKey(last)) expected.add(runId);
    }
  });
  expectWellFormed(result, 7, newestFirst);
  // Some added runs fell behind the walk and some ahead of it.
  const seenAdded = result.ids.filter((id) => id.startsWith("n")).length;
  expect(seenAdded).toBeGreaterThan(0);
  expect(seenAdded).toBeLessThan(added);
  expect(new Set(result.ids)).toEqual(expected);
  expect(result.ids).toHaveLength(expected.size);
}

/** 120 runs of u1 on thread t, three a second, beside u2's runs and other kinds there. */
async function threadOfRuns(store: MemoryRunStore): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 120; i++) {
    const runId = `r${String(i).padStart(3, "0")}`;
    await store.put(runId, { threadId: "t", userId: "u1", createdAt: at(i % 40) });
    ids.push(runId);
  }
  for (let i = 0; i < 20; i++) {
    await store.put(`o${i}`, { threadId: "t", userId: "u2", createdAt: at(i) });
    await store.put(`c${i}`, {
      threadId: "t",
      userId: "u1",
      createdAt: at(i),
      operationKind: "checkpoint_write",
    });
  }
  return ids;
}

describe("MemoryRunStore keyset pages", () => {
  it("ListByThread pages: part 1's rows in order, has_more exact, a full last page ends the walk", async () => {
    const store = new MemoryRunStore();
    await threadOfRuns(store);
    const all = await store.listByThread("t", { userId: "u1", limit: 1000 });
    const paged = await walk((page) => store.listByThreadPage("t", { userId: "u1" }, page), 10);
    expect(paged.ids).toEqual(all.map((run) => run.runId));
    expect(paged.pages).toHaveLength(12);
    expectWellFormed(paged, 10, true);
    const one = await store.listByThreadPage("t", { userId: "u1" }, { pageSize: 1000 });
    expect(one).toMatchObject({ hasMore: false, nextPageToken: null });
    expect(one.items).toHaveLength(120);
    // Only a token: the default size, 100.
    const first = await store.listByThreadPage("t", { userId: "u1" });
    expect(first.items).toHaveLength(100);
    const rest = await store.listByThreadPage(
      "t",
      { userId: "u1" },
      { pageToken: first.nextPageToken },
    );
    expect(rest.items.map((run) => run.runId)).toEqual(all.slice(100).map((run) => run.runId));
  });

  it("ListByThread pages never repeat or skip a run while runs are added between pages", async () => {
    const store = new MemoryRunStore();
    const present = await threadOfRuns(store);
    await walkWithInserts(
      (page) => store.listByThreadPage("t", { userId: "u1" }, page),
      (runId, createdAt) => store.put(runId, { threadId: "t", userId: "u1", createdAt }),
      present,
      true,
    );
  });

  it("SearchRuns pages never repeat or skip a run while runs are added between pages", async () => {
    const store = new MemoryRunStore();
    const present: string[] = [];
    for (let i = 0; i < 90; i++) {
      const runId = `s${String(i).padStart(3, "0")}`;
      const status = i % 3 === 0 ? "error" : "success";
      await store.put(runId, {
        threadId: `t${i % 9}`,
        userId: "u1",
        status,
        createdAt: at(i % 30),
      });
      if (status === "success") present.push(runId);
    }
    const search = { userId: "u1", statuses: ["success" as const] };
    await walkWithInserts(
      (page) => store.searchRunsPage(search, page),
      (runId, createdAt) =>
        store.put(runId, { threadId: "tx", userId: "u1", status: "success", createdAt }),
      present,
      true,
    );
  });

  it("ListPending / ListInflight pages: oldest first, `before` pinned by the first page, adds seen by position", async () => {
    const store = new MemoryRunStore();
    const pending: string[] = [];
    for (let i = 0; i < 60; i++) {
      const runId = `p${String(i).padStart(3, "0")}`;
      const status = i % 4 === 0 ? "running" : "pending";
      const operationKind = i % 5 === 0 ? "checkpoint_write" : "run";
      await store.put(runId, { threadId: `t${i}`, status, operationKind, createdAt: at(i % 20) });
      if (status === "pending" && operationKind === "run") pending.push(runId);
    }
    await store.put("done", { threadId: "t", status: "success", createdAt: at(1) });
    const allPending = await store.listPending();
    expect(new Set(allPending.map((run) => run.runId))).toEqual(new Set(pending));
    const walked = await walk((page) => store.listPendingPage({}, page), 6);
    expect(walked.ids).toEqual(allPending.map((run) => run.runId));
    const inflight = await walk((page) => store.listInflightPage({}, page), 6);
    expect(inflight.ids).toEqual((await store.listInflight()).map((run) => run.runId));
    expect(inflight.ids).toHaveLength(60);

    // Runs added later (created after the first page's pinned now) never show up.
    let late = 0;
    const lateWalk = await walk(
      (page) => store.listPendingPage({}, page),
      6,
      async () => {
        await clockMoves();
        await store.put(`late${late++}`, { threadId: "late" });
      },
    );
    expect(late).toBe(pending.length / 6 - 1);
    expect(lateWalk.ids).toEqual(allPending.map((run) => run.runId));
    await walkWithInserts(
      (page) => store.listPendingPage({}, page),
      (runId, createdAt) => store.put(runId, { threadId: runId, createdAt }),
      (await store.listPending()).map((run) => run.runId),
      false,
    );
  });

  it("ListInflightWithExpiredLease pages: the unpaged call's rows, oldest first", async () => {
    const store = new MemoryRunStore();
    for (let i = 0; i < 25; i++) {
      const live = i % 5 === 0;
      await store.put(`e${String(i).padStart(2, "0")}`, {
        threadId: `t${i}`,
        status: "running",
        createdAt: at(i % 8),
        leaseExpiresAt: live ? "9999-01-01T00:00:00Z" : at(0),
      });
    }
    const unpaged = await store.listInflightWithExpiredLease({ graceSeconds: 0 });
    expect(unpaged).toHaveLength(20);
    const paged = await walk(
      (page) => store.listInflightWithExpiredLeasePage({ graceSeconds: 0 }, page),
      3,
    );
    expect(paged.ids).toEqual(unpaged.map((run) => run.runId));
    expectWellFormed(paged, 3, false);
    await invalid(store.listInflightWithExpiredLeasePage({ graceSeconds: -1 }), "grace_seconds");
  });

  it("refuses a bad page size and a token of another list or other filters, naming the field", async () => {
    const store = new MemoryRunStore();
    await threadOfRuns(store);
    for (const pageSize of [0, 1001, 2.5, Number.NaN]) {
      await invalid(store.listByThreadPage("t", {}, { pageSize }), "page_size");
    }
    const { nextPageToken } = await store.listByThreadPage("t", { userId: "u1" }, { pageSize: 5 });
    await invalid(
      store.listByThreadPage("t", { userId: "u2" }, { pageToken: nextPageToken }),
      "page_token",
    );
    await invalid(
      store.listByThreadPage("t2", { userId: "u1" }, { pageToken: nextPageToken }),
      "page_token",
    );
    await invalid(
      store.searchRunsPage({ userId: "u1" }, { pageToken: nextPageToken }),
      "page_token",
    );
    await invalid(store.listPendingPage({}, { pageToken: "not a token" }), "page_token");
    await invalid(store.listThreadsPage({}, { pageToken: nextPageToken }), "page_token");
    await invalid(store.listByThreadPage("", {}), "thread_id");
  });
});

describe("MemoryRunStore.searchRunsPage filters", () => {
  async function seeded(): Promise<MemoryRunStore> {
    const store = new MemoryRunStore();
    const runs: [string, PutFields][] = [
      [
        "a",
        {
          threadId: "t1",
          userId: "u1",
          assistantId: "asst",
          modelName: "gpt",
          status: "success",
          createdAt: at(1),
          metadata: { tier: "gold", n: 1, flag: true },
        },
      ],
      [
        "b",
        {
          threadId: "t1",
          userId: "u2",
          assistantId: "asst",
          modelName: "claude",
          status: "error",
          createdAt: at(2),
          metadata: { tier: "silver", n: 1.5 },
        },
      ],
      [
        "c",
        {
          threadId: "t2",
          userId: "u1",
          assistantId: "other",
          modelName: "gpt",
          status: "pending",
          createdAt: at(3),
          metadata: { tier: 1, n: "1", flag: "true" },
        },
      ],
      [
        "d",
        {
          threadId: "t2",
          userId: "u1",
          modelName: null,
          status: "timeout",
          createdAt: at(4),
          metadata: { nested: { tier: "gold" } },
        },
      ],
      [
        "e",
        {
          threadId: "t3",
          userId: "u1",
          status: "success",
          createdAt: at(5),
          operationKind: "checkpoint_write",
          metadata: { tier: "gold" },
        },
      ],
    ];
    for (const [runId, fields] of runs) await store.put(runId, fields);
    return store;
  }

  async function ids(
    store: MemoryRunStore,
    search: Parameters<MemoryRunStore["searchRunsPage"]>[0],
  ) {
    const all: string[] = [];
    for await (const run of store.searchRuns(search, 2)) all.push(run.runId);
    return all;
  }

  it("each filter holds; newest first; runs only by default", async () => {
    const store = await seeded();
    expect(await ids(store, {})).toEqual(["d", "c", "b", "a"]);
    expect(await ids(store, { userId: "u1" })).toEqual(["d", "c", "a"]);
    expect(await ids(store, { threadId: "t1" })).toEqual(["b", "a"]);
    expect(await ids(store, { statuses: ["success", "timeout"] })).toEqual(["d", "a"]);
    expect(await ids(store, { assistantId: "asst" })).toEqual(["b", "a"]);
    expect(await ids(store, { modelName: "  gpt\n" })).toEqual(["c", "a"]);
    expect(await ids(store, { operationKinds: ["checkpoint_write"] })).toEqual(["e"]);
    expect(await ids(store, { operationKinds: ["run", "checkpoint_write"] })).toEqual([
      "e",
      "d",
      "c",
      "b",
      "a",
    ]);
    expect(await ids(store, { createdAfter: at(2) })).toEqual(["d", "c", "b"]);
    expect(await ids(store, { createdBefore: at(3) })).toEqual(["b", "a"]);
    expect(await ids(store, { createdAfter: at(2), createdBefore: at(4), userId: "u1" })).toEqual([
      "c",
    ]);
  });

  it("metadata: string, number and bool each match only their own JSON type; absent keys never", async () => {
    const store = await seeded();
    expect(await ids(store, { metadata: { tier: "gold" } })).toEqual(["a"]);
    expect(await ids(store, { metadata: { tier: 1 } })).toEqual(["c"]);
    expect(await ids(store, { metadata: { n: 1.0 } })).toEqual(["a"]);
    expect(await ids(store, { metadata: { n: "1" } })).toEqual(["c"]);
    expect(await ids(store, { metadata: { flag: true } })).toEqual(["a"]);
    expect(await ids(store, { metadata: { flag: "true" } })).toEqual(["c"]);
    expect(await ids(store, { metadata: { flag: false } })).toEqual([]);
    expect(await ids(store, { metadata: { tier: "gold", n: 1 } })).toEqual(["a"]);
    expect(await ids(store, { metadata: { absent: "gold" } })).toEqual([]);
    expect(await ids(store, { metadata: JSON.parse('{"toString":"x","__proto__":"y"}') })).toEqual(
      [],
    );
  });

  it("bad filters are INVALID_ARGUMENT naming the field", async () => {
    const store = await seeded();
    const metadata = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
    await invalid(store.searchRunsPage({ metadata }), "metadata");
    await invalid(store.searchRunsPage({ metadata: { tier: { a: 1 } } as never }), "metadata.tier");
    await invalid(
      store.searchRunsPage({ metadata: { n: Number.POSITIVE_INFINITY } }),
      "metadata.n",
    );
    await invalid(store.searchRunsPage({ statuses: ["done" as never] }), "statuses[0]");
    await invalid(store.searchRunsPage({ operationKinds: ["x" as never] }), "operation_kinds[0]");
    await invalid(store.searchRunsPage({ createdAfter: "yesterday" }), "created_after");
    await invalid(store.searchRunsPage({ createdBefore: "2024-13-01" }), "created_before");
    await invalid(store.searchRunsPage({ userId: "" }), "user_id");
    await invalid(store.searchRunsPage({ threadId: 5 as never }), "thread_id");
    await invalid(store.searchRunsPage({ assistantId: "x".repeat(129) }), "assistant_id");
  });
});

describe("MemoryRunStore.getRunStats", () => {
  // Instants around local midnight in +08:00 (16:00Z) and -05:30 (05:30Z).
  async function seeded(): Promise<MemoryRunStore> {
    const store = new MemoryRunStore();
    const base = { threadId: "s", userId: "u1" };
    await store.put("a", { ...base, status: "running", createdAt: "2024-03-01T15:59:59.999999Z" });
    await store.updateRunCompletion("a", {
      status: "success",
      totalInputTokens: 11,
      totalOutputTokens: 6,
      totalTokens: 17,
      tokenUsageByModel: {
        gpt: { inputTokens: 10, outputTokens: 5, totalTokens: 15, cacheReadTokens: 3 },
        claude: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
      },
    });
    await store.put("b", { ...base, modelName: "gpt", createdAt: "2024-03-01T16:00:00Z" });
    await store.updateRunCompletion("b", {
      status: "error",
      totalInputTokens: 100,
      totalOutputTokens: 50,
      totalTokens: 150,
    });
    await store.put("c", { ...base, createdAt: "2024-03-01T05:29:59.999999Z" });
    await store.updateRunCompletion("c", {
      status: "timeout",
      totalInputTokens: 7,
      totalOutputTokens: 3,
      totalTokens: 10,
    });
    await store.put("d", { ...base, status: "running", createdAt: "2024-03-01T05:30:00Z" });
    await store.updateRunProgress("d", {
      totalInputTokens: 2,
      totalOutputTokens: 2,
      totalTokens: 4,
      tokenUsageByModel: {
        gpt: { inputTokens: 2, outputTokens: 2, totalTokens: 4, cacheReadTokens: 1 },
      },
    });
    await store.put("e", { ...base, modelName: "  m2 ", createdAt: "2024-03-02T00:00:00Z" });
    await store.put("f", {
      ...base,
      userId: "u2",
      modelName: "gpt",
      createdAt: "2024-03-01T12:00:00Z",
    });
    await store.updateRunCompletion("f", {
      status: "interrupted",
      totalInputTokens: 1,
      totalOutputTokens: 1,
      totalTokens: 2,
    });
    await store.put("g", {
      ...base,
      status: "success",
      operationKind: "checkpoint_write",
      createdAt: "2024-03-01T00:00:00Z",
    });
    return store;
  }

  const totals = (
    runs: number,
    input: number,
    output: number,
    total: number,
    cacheRead: number,
  ) => ({
    runs,
    inputTokens: input,
    outputTokens: output,
    totalTokens: total,
    cacheReadTokens: cacheRead,
  });

  it("counts runs of kind run by status, tokens of every status, by model with the model_name / unknown fallback", async () => {
    const stats = await (await seeded()).getRunStats({ utcOffset: "+08:00" });
    expect(stats).toEqual<RunStats>({
      totalRuns: 6,
      byStatus: { pending: 1, running: 1, success: 1, error: 1, timeout: 1, interrupted: 1 },
      activeRuns: 2,
      failedRuns: 2,
      tokens: totals(6, 121, 62, 183, 4),
      byModel: {
        claude: totals(1, 1, 1, 2, 0),
        gpt: totals(4, 113, 58, 171, 4),
        m2: totals(1, 0, 0, 0, 0),
        unknown: totals(1, 7, 3, 10, 0),
      },
      days: [
        {
          date: "2024-03-01",
          tokens: totals(4, 21, 12, 33, 4),
          byModel: {
            claude: totals(1, 1, 1, 2, 0),
            gpt: totals(3, 13, 8, 21, 4),
            unknown: totals(1, 7, 3, 10, 0),
          },
        },
        {
          date: "2024-03-02",
          tokens: totals(2, 100, 50, 150, 0),
          byModel: { gpt: totals(1, 100, 50, 150, 0), m2: totals(1, 0, 0, 0, 0) },
        },
      ],
    });
    expect(Object.keys(stats.byStatus)).toEqual([
      "pending",
      "running",
      "success",
      "error",
      "timeout",
      "interrupted",
    ]);
  });

  it("days start at local midnight: -05:30 and UTC", async () => {
    const store = await seeded();
    const west = await store.getRunStats({ utcOffset: "-05:30" });
    expect(west.days.map((day) => [day.date, day.tokens])).toEqual([
      ["2024-02-29", totals(1, 7, 3, 10, 0)],
      ["2024-03-01", totals(5, 114, 59, 173, 4)],
    ]);
    expect(west.days[1]?.byModel.gpt).toEqual(totals(4, 113, 58, 171, 4));
    const utc = await store.getRunStats({});
    expect(utc.days.map((day) => [day.date, day.tokens.runs])).toEqual([
      ["2024-03-01", 5],
      ["2024-03-02", 1],
    ]);
    expect(await store.getRunStats({ utcOffset: "+00:00" })).toEqual(utc);
    expect(await store.getRunStats({ utcOffset: "" })).toEqual(utc);
  });

  it("user and creation range (after inclusive, before exclusive) narrow the runs; none is all zeros", async () => {
    const store = await seeded();
    const mine = await store.getRunStats({ userId: "u1" });
    expect(mine.totalRuns).toBe(5);
    expect(mine.byStatus).toEqual({ pending: 1, running: 1, success: 1, error: 1, timeout: 1 });
    const range = await store.getRunStats({
      createdAfter: "2024-03-01T05:30:00Z",
      createdBefore: "2024-03-01T16:00:00Z",
    });
    expect(range.totalRuns).toBe(3);
    expect(range.byStatus).toEqual({ running: 1, success: 1, interrupted: 1 });
    expect(await store.getRunStats({ userId: "nobody", utcOffset: "+14:00" })).toEqual<RunStats>({
      totalRuns: 0,
      byStatus: {},
      activeRuns: 0,
      failedRuns: 0,
      tokens: totals(0, 0, 0, 0, 0),
      byModel: {},
      days: [],
    });
  });

  it("refuses a bad offset or range, naming the field", async () => {
    const store = await seeded();
    for (const utcOffset of ["+14:01", "-14:30", "+8:00", "08:00", "+08:60", "Z", "+0800"]) {
      await invalid(store.getRunStats({ utcOffset }), "utc_offset");
    }
    expect((await store.getRunStats({ utcOffset: "-14:00" })).totalRuns).toBe(6);
    await invalid(store.getRunStats({ createdAfter: "soon" }), "created_after");
    await invalid(store.getRunStats({ userId: "" }), "user_id");
  });
});

describe("MemoryRunStore.listThreadsPage", () => {
  async function threads(
    store: MemoryRunStore,
    userId: string | null = null,
  ): Promise<ThreadSummary[]> {
    const all: ThreadSummary[] = [];
    for await (const thread of store.listThreads({ userId }, 2)) all.push(thread);
    return all;
  }

  async function statusOf(store: MemoryRunStore, threadId: string, userId: string | null = null) {
    return (await threads(store, userId)).find((thread) => thread.threadId === threadId)?.status;
  }

  it("derives the thread status: busy on any active row, else from the latest visible run", async () => {
    const store = new MemoryRunStore();
    const put = (runId: string, fields: Partial<PutFields>) =>
      store.put(runId, { threadId: "t", userId: "u1", createdAt: at(0), ...fields });
    await put("idle1", { threadId: "idle", status: "error", createdAt: at(1) });
    await put("idle2", { threadId: "idle", status: "success", createdAt: at(2) });
    await put("p", { threadId: "pending", status: "pending" });
    await put("r", { threadId: "running", status: "running" });
    await put("op1", { threadId: "op", status: "success" });
    await put("op2", { threadId: "op", status: "running", operationKind: "checkpoint_write" });
    await put("mine", { threadId: "shared", status: "success" });
    await put("theirs", { threadId: "shared", userId: "u2", status: "pending" });
    await put("i1", { threadId: "interrupted", status: "success", createdAt: at(1) });
    await put("i2", { threadId: "interrupted", status: "interrupted", createdAt: at(2) });
    await put("e1", { threadId: "error", status: "error" });
    await put("to", { threadId: "timeout", status: "timeout" });
    // Equal created_at: the latest is the greater run_id.
    await put("tie-b", { threadId: "tie", status: "success", createdAt: at(5) });
    await put("tie-a", { threadId: "tie", status: "error", createdAt: at(5) });
    await put("only", { threadId: "ops-only", status: "success", operationKind: "artifact_write" });
    await store.createThreadOperation("q", {
      threadId: "queued",
      userId: "u1",
      ownerWorkerId: "w",
      multitaskStrategy: "enqueue",
    });

    const expected: Record<string, string> = {
      idle: "idle",
      pending: "busy",
      running: "busy",
      op: "busy",
      shared: "busy",
      interrupted: "interrupted",
      error: "error",
      timeout: "error",
      tie: "idle",
      queued: "busy",
    };
    const listed = await threads(store, "u1");
    expect(Object.fromEntries(listed.map((thread) => [thread.threadId, thread.status]))).toEqual(
      expected,
    );
    expect(listed.find((thread) => thread.threadId === "tie")).toMatchObject({
      runCount: 2,
      latestRunId: "tie-b",
      latestRunStatus: "success",
    });
    expect(await statusOf(store, "shared", "u2")).toBe("busy");
    expect((await threads(store)).map((thread) => thread.threadId)).not.toContain("ops-only");
  });

  it("summarises the visible runs: count, latest run, last activity, tokens; most recent activity first", async () => {
    const store = new MemoryRunStore();
    await store.put("old", { threadId: "t1", userId: "u1", status: "running", createdAt: at(1) });
    await store.put("new", { threadId: "t1", userId: "u1", status: "success", createdAt: at(2) });
    await store.put("hidden", {
      threadId: "t1",
      userId: "u2",
      status: "success",
      createdAt: at(3),
    });
    await clockMoves();
    await store.put("x", { threadId: "t2", userId: "u1", status: "success", createdAt: at(0) });
    await clockMoves();
    await store.put("y", { threadId: "t3", userId: "u2", status: "success", createdAt: at(0) });
    await clockMoves();
    // "old" is written last: it is the thread's last activity, not its latest run.
    await store.updateRunCompletion("new", { status: "success", totalTokens: 40 });
    await store.updateRunCompletion("hidden", { status: "success", totalTokens: 1000 });
    await clockMoves();
    await store.updateRunCompletion("old", { status: "error", totalTokens: 2 });
    const get = async (runId: string) => (await store.get(runId)) as RunRecord;

    const listed = await threads(store, "u1");
    expect(listed).toEqual<ThreadSummary[]>([
      {
        threadId: "t1",
        runCount: 2,
        latestRunId: "new",
        latestRunStatus: "success",
        latestRunUpdatedAt: (await get("new")).updatedAt,
        lastActivityAt: (await get("old")).updatedAt,
        totalTokens: 42,
        status: "idle",
      },
      {
        threadId: "t2",
        runCount: 1,
        latestRunId: "x",
        latestRunStatus: "success",
        latestRunUpdatedAt: (await get("x")).updatedAt,
        lastActivityAt: (await get("x")).updatedAt,
        totalTokens: 0,
        status: "idle",
      },
    ]);
    const everyone = await threads(store);
    expect(
      everyone.map((thread) => [thread.threadId, thread.runCount, thread.totalTokens]),
    ).toEqual([
      ["t1", 3, 1042],
      ["t3", 1, 0],
      ["t2", 1, 0],
    ]);
  });

  it("pages by (last activity, thread id) descending; a thread whose activity moves ahead of the walk is not read again", async () => {
    const store = new MemoryRunStore();
    for (let i = 0; i < 9; i++) await store.put(`r${i}`, { threadId: `t${i}`, status: "success" });
    const first = await store.listThreadsPage({}, { pageSize: 4 });
    expect(first.items.map((thread) => thread.threadId)).toEqual(["t8", "t7", "t6", "t5"]);
    // t8 (read) and t2 (not yet read) both become the most recent activity.
    await clockMoves();
    await store.updateStatus("r8", "error");
    await store.updateStatus("r2", "error");
    const second = await store.listThreadsPage({}, { pageSize: 4, pageToken: first.nextPageToken });
    expect(second.items.map((thread) => thread.threadId)).toEqual(["t4", "t3", "t1", "t0"]);
    expect(second).toMatchObject({ hasMore: false, nextPageToken: null });
    await invalid(
      store.listThreadsPage({ userId: "u1" }, { pageToken: first.nextPageToken }),
      "page_token",
    );
  });
});

describe("MemoryRunStore.deleteThread", () => {
  async function seeded(): Promise<MemoryRunStore> {
    const store = new MemoryRunStore();
    await store.put("a", { threadId: "t", userId: "u1", status: "success" });
    await store.put("b", {
      threadId: "t",
      userId: "u1",
      status: "error",
      operationKind: "checkpoint_write",
    });
    await store.put("c", { threadId: "t", userId: "u2", status: "success" });
    await store.put("other", { threadId: "t2", userId: "u1", status: "success" });
    return store;
  }

  async function remaining(store: MemoryRunStore): Promise<string[]> {
    const page = await store.searchRunsPage(
      { operationKinds: OPERATION_KINDS },
      { pageSize: 1000 },
    );
    return page.items.map((run) => run.runId).sort();
  }

  it("removes the thread's rows of every kind and answers how many; again: 0; unknown thread: 0", async () => {
    const store = await seeded();
    expect(await store.deleteThread("t")).toBe(3);
    expect(await remaining(store)).toEqual(["other"]);
    expect(await store.deleteThread("t")).toBe(0);
    expect(await store.deleteThread("never")).toBe(0);
  });

  it("with user_id removes only that user's rows", async () => {
    const store = await seeded();
    expect(await store.deleteThread("t", { userId: "u1" })).toBe(2);
    expect(await remaining(store)).toEqual(["c", "other"]);
    expect(await store.deleteThread("t", { userId: "u1" })).toBe(0);
  });

  it("without force refuses while any row of the thread is active (another user's too), removing nothing; force removes them", async () => {
    const store = await seeded();
    await store.put("busy", {
      threadId: "t",
      userId: "u2",
      status: "running",
      operationKind: "artifact_write",
    });
    for (const options of [{}, { userId: "u1" }, { force: false }]) {
      const error = await failureOf(store.deleteThread("t", options));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toBe(
        "thread_id t has an active operation (pending or running); wait for it to end, or delete with force",
      );
    }
    expect(await remaining(store)).toEqual(["a", "b", "busy", "c", "other"]);
    expect(await store.deleteThread("t", { userId: "u1", force: true })).toBe(2);
    expect(await store.deleteThread("t", { force: true })).toBe(2);
    expect(await remaining(store)).toEqual(["other"]);
  });

  it("bad arguments are INVALID_ARGUMENT naming the field and remove nothing", async () => {
    const store = await seeded();
    await invalid(store.deleteThread(""), "thread_id");
    await invalid(store.deleteThread("t", { force: "yes" as never }), "force");
    await invalid(store.deleteThread("t", { userId: "" }), "user_id");
    await invalid(store.deleteThread("t", "u1" as never), "options");
    expect(await remaining(store)).toEqual(["a", "b", "c", "other"]);
  });
});
