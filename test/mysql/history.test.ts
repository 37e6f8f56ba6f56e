import { Code } from "@connectrpc/connect";
import type { Page, PageRequest, PutFields, RunStats } from "@runstore/client";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { COORDINATION_STATEMENTS } from "../../src/stores/mysql-coordination.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MAP_BATCH } from "../../src/stores/mysql-run-stats.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { DELETE_BATCH } from "../../src/stores/mysql-threads.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, observedStore } from "../support/mysql.js";

// The history reads and DeleteThread on MySQL (docs/contract.md, "History"),
// rule by rule, on a real database: keyset walks that never repeat or skip a
// row while rows are added, every search filter, statistics with local days
// on both sides of a midnight, thread summaries, and thread deletion in
// bounded batches (counted statement by statement through an observing pool).

const db = await createTestDatabase("history");

/** An instant `minutes` after 2026-03-01T00:00Z, plus `micros` microseconds, in the stores' form. */
function at(minutes: number, micros = 0): string {
  const base = new Date(Date.UTC(2026, 2, 1) + minutes * 60_000).toISOString();
  return `${base.slice(0, 19)}.${String(micros).padStart(6, "0")}Z`;
}

const ids = (runs: readonly { runId: string }[]) => runs.map((r) => r.runId);

/** Every page of a list, `size` at a time; `between` runs after each page but the last. */
async function walk<T>(
  fetch: (page: PageRequest) => Promise<Page<T>>,
  size: number,
  between: (last: T) => Promise<void> = async () => {},
): Promise<T[][]> {
  const pages: T[][] = [];
  let pageToken: string | null = null;
  for (;;) {
    const page: Page<T> = await fetch({ pageSize: size, pageToken });
    pages.push(page.items);
    expect(page.hasMore).toBe(page.nextPageToken !== null);
    if (!page.hasMore) return pages;
    await between(page.items.at(-1) as T);
    pageToken = page.nextPageToken;
  }
}

/** A refusal: INVALID_ARGUMENT whose message starts with the field. */
async function invalid(call: Promise<unknown>, field: string): Promise<void> {
  const error = await failureOf(call);
  expect([error.code, error.rawMessage.split(" ")[0]]).toEqual([Code.InvalidArgument, field]);
}

if (db === null) {
  describe("MySQL history", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const store = MysqlRunStore.open({ url: db.url, poolSize: 4 });
  const raw = createMysqlPool({ url: db.url }, { connectionLimit: 2 }).promise();
  afterAll(async () => {
    await raw.end();
    await store.close();
    await db.drop();
  });
  beforeEach(() => db.truncate());

  async function put(runId: string, fields: Partial<PutFields> & { createdAt: string }) {
    await store.put(runId, { threadId: "t1", ...fields });
  }

  /** Sets a row's updated_at (the store sets it to now on every write). */
  async function touch(runId: string, updatedAt: string): Promise<void> {
    await raw.query("UPDATE runs SET updated_at = ? WHERE run_id = ?", [
      updatedAt.replace("T", " ").replace("Z", ""),
      runId,
    ]);
  }

  /** Every row as (run_id, status, updated_at): what "changes nothing" compares. */
  async function tableState(): Promise<unknown[]> {
    const [rows] = await raw.query(
      "SELECT CAST(run_id AS CHAR) AS run_id, status, updated_at FROM runs ORDER BY run_id",
    );
    return rows as unknown[];
  }

  describe("keyset pages", () => {
    /** 12 runs of u1 on t1 (in pairs sharing a created_at), one of u2's, one of another kind, one elsewhere. */
    async function fillThread(): Promise<void> {
      for (let i = 0; i < 12; i++) {
        await put(`r-${String(i).padStart(2, "0")}`, {
          createdAt: at(Math.floor(i / 2)),
          userId: "u1",
        });
      }
      await put("r-u2", { createdAt: at(5), userId: "u2" });
      await put("r-op", { createdAt: at(5), userId: "u1", operationKind: "checkpoint_write" });
      await put("r-elsewhere", { createdAt: at(5), userId: "u1", threadId: "t2" });
    }

    it("ListByThread pages walk the same rows as listByThread, newest first, with and without a user", async () => {
      await fillThread();
      for (const userId of [null, "u1", "u2"]) {
        const all = ids(await store.listByThread("t1", { userId, limit: 1000 }));
        const pages = await walk((p) => store.listByThreadPage("t1", { userId }, p), 5);
        expect(pages.flat().map((r) => r.runId)).toEqual(all);
        expect(pages.map((p) => p.length)).toEqual(
          userId === "u2" ? [1] : userId === null ? [5, 5, 3] : [5, 5, 2],
        );
      }
    });

    it("a walk never repeats or skips a row while rows are added (newest first, ties on created_at)", async () => {
      for (let i = 0; i < 10; i++) {
        await put(`r-${i}0`, { createdAt: at(100 + Math.floor(i / 2)) });
      }
      const behind: string[] = [];
      const pages = await walk(
        (p) => store.listByThreadPage("t1", {}, p),
        3,
        async (last) => {
          const n = behind.length / 2;
          // A tie with a greater run id, or newer: behind the walk's position.
          const tieBehind = `${last.runId}~${n}`;
          await put(tieBehind, { createdAt: last.createdAt });
          await put(`z-behind-${n}`, { createdAt: at(200 + n) });
          behind.push(tieBehind, `z-behind-${n}`);
          // A tie with a smaller run id (the last character one lower), or older: ahead of it.
          const lower = String.fromCharCode(last.runId.charCodeAt(last.runId.length - 1) - 1);
          await put(`${last.runId.slice(0, -1)}${lower}~${n}`, { createdAt: last.createdAt });
          await put(`r-old-${n}`, { createdAt: at(-1 - n) });
        },
      );
      const seen = pages.flat().map((r) => r.runId);
      expect(new Set(seen).size).toBe(seen.length);
      const now = ids(await store.listByThread("t1", { limit: 1000 }));
      expect(seen).toEqual(now.filter((id) => !behind.includes(id)));
      expect(seen).toHaveLength(10 + 2 * (pages.length - 1));
      expect(pages.length).toBeGreaterThan(4);
    });

    it("ListPending / ListInflight pages: the part 1 rows, before pinned by the first page", async () => {
      const statuses = ["pending", "running", "success", "pending", "error", "running"] as const;
      for (let i = 0; i < 18; i++) {
        await put(`p-${String(i).padStart(2, "0")}`, {
          createdAt: at(Math.floor(i / 3)),
          status: statuses[i % 6],
          operationKind: i % 5 === 0 ? "checkpoint_write" : "run",
          threadId: `t-${i}`,
        });
      }
      let added = 0;
      const addLater = async () => {
        added++;
        // Created after the first page's now: outside the pinned range.
        await store.put(`p-late-${added}`, { threadId: "t-late", status: "pending" });
      };
      const pending = ids(await store.listPending());
      expect(pending).toHaveLength(4);
      const pendingPages = await walk((p) => store.listPendingPage({}, p), 3, addLater);
      expect(pendingPages.flat().map((r) => r.runId)).toEqual(pending);
      expect(added).toBe(1);
      const inflight = ids(await store.listInflight());
      expect(inflight).toHaveLength(12 + added);
      const inflightPages = await walk((p) => store.listInflightPage({}, p), 5, addLater);
      expect(inflightPages.flat().map((r) => r.runId)).toEqual(inflight);
      expect(added).toBe(3);
      const before = at(3);
      const bounded = ids(await store.listInflight({ before }));
      const boundedPages = await walk((p) => store.listInflightPage({ before }, p), 4);
      expect(boundedPages.flat().map((r) => r.runId)).toEqual(bounded);
      expect(bounded).toHaveLength(8);
    });

    it("expired-lease pages: the part 2 rows, oldest first", async () => {
      for (let i = 0; i < 9; i++) {
        await store.createThreadOperation(`x-${i}`, {
          threadId: `tx-${i}`,
          ownerWorkerId: "w1",
          lease: { expiresAt: i % 3 === 2 ? "2999-01-01T00:00:00Z" : "2020-01-01T00:00:00Z" },
          operationKind: i % 2 === 0 ? "run" : "artifact_write",
          createdAt: at(i % 4),
        });
        if (i % 4 === 1) await store.startRun(`x-${i}`);
      }
      const expected = ids(await store.listInflightWithExpiredLease({ graceSeconds: 5 }));
      expect(expected).toHaveLength(6);
      const pages = await walk(
        (p) => store.listInflightWithExpiredLeasePage({ graceSeconds: 5 }, p),
        4,
      );
      expect(pages.flat().map((r) => r.runId)).toEqual(expected);
      await invalid(
        store.listInflightWithExpiredLeasePage({ graceSeconds: -1 }, {}),
        "grace_seconds",
      );
    });

    it("bad page requests name the field", async () => {
      await fillThread();
      const first = await store.listByThreadPage("t1", {}, { pageSize: 2 });
      const token = first.nextPageToken as string;
      await invalid(store.listByThreadPage("t2", {}, { pageToken: token }), "page_token");
      await invalid(
        store.listByThreadPage("t1", { userId: "u1" }, { pageToken: token }),
        "page_token",
      );
      await invalid(store.searchRunsPage({}, { pageToken: token }), "page_token");
      await invalid(store.listByThreadPage("t1", {}, { pageToken: "not-a-token" }), "page_token");
      await invalid(store.listByThreadPage("t1", {}, { pageSize: 0 }), "page_size");
      await invalid(store.listByThreadPage("t1", {}, { pageSize: 1001 }), "page_size");
      await invalid(store.listByThreadPage("", {}, { pageSize: 1 }), "thread_id");
      // Only a token: pages of 100.
      const next = await store.listByThreadPage("t1", {}, { pageToken: token });
      expect(next.items).toHaveLength(11);
    });
  });

  describe("SearchRuns", () => {
    const QUOTED = 'a.b"c\\d';

    /** Nine rows covering every filter (s05 is a checkpoint_write; s09's metadata holds 1.0 as JSON text). */
    async function fillSearch(): Promise<void> {
      const rows: [string, Partial<PutFields> & { createdAt: string }][] = [
        [
          "s01",
          {
            threadId: "t1",
            userId: "u1",
            status: "success",
            assistantId: "asst",
            modelName: "gpt-4o",
            createdAt: at(1),
            metadata: { team: "a", n: 1, flag: true, [QUOTED]: "x" },
          },
        ],
        [
          "s02",
          {
            threadId: "t1",
            userId: "u1",
            status: "error",
            assistantId: "asst ",
            modelName: "gpt-4o",
            createdAt: at(2),
            metadata: { team: "a ", n: 2, flag: false },
          },
        ],
        [
          "s03",
          {
            threadId: "t2",
            userId: "u1",
            status: "timeout",
            assistantId: "asst",
            modelName: "claude",
            createdAt: at(3),
            metadata: { team: "A", n: "1", flag: "true" },
          },
        ],
        [
          "s04",
          {
            threadId: "t2",
            userId: "u2",
            status: "success",
            assistantId: "other",
            createdAt: at(4),
            metadata: { team: "a", n: 1.5, a: { 'b"c\\d': "x" } },
          },
        ],
        [
          "s05",
          {
            threadId: "t3",
            userId: "u1",
            status: "pending",
            operationKind: "checkpoint_write",
            createdAt: at(5),
            metadata: { team: "a", n: 1 },
          },
        ],
        [
          "s06",
          {
            threadId: "t3",
            userId: "u1",
            status: "running",
            assistantId: "asst",
            modelName: "gpt-4o",
            createdAt: at(5),
            metadata: { team: null, n: 1, flag: 1 },
          },
        ],
        [
          "s07",
          {
            threadId: "t1",
            status: "success",
            modelName: "gpt-4o",
            createdAt: at(6),
            metadata: { [QUOTED]: "x", n: 1 },
          },
        ],
        ["s08", { threadId: "t1", userId: "u1", status: "interrupted", createdAt: at(7) }],
      ];
      for (const [runId, fields] of rows) await put(runId, fields);
      await raw.query(
        "INSERT INTO runs (run_id, thread_id, user_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) " +
          `VALUES ('s09', 't4', 'u1', 'success', 'reject', '{"n": 1.0, "team": "a"}', '{}', ?, ?)`,
        [at(8).replace("T", " ").replace("Z", ""), at(8).replace("T", " ").replace("Z", "")],
      );
    }

    /** The run ids of every page of a search, walked 2 at a time. */
    async function search(
      filters: Parameters<MysqlRunStore["searchRunsPage"]>[0],
    ): Promise<string[]> {
      const pages = await walk((p) => store.searchRunsPage(filters, p), 2);
      const walked = pages.flat().map((r) => r.runId);
      const iterated: string[] = [];
      for await (const run of store.searchRuns(filters, 3)) iterated.push(run.runId);
      expect(iterated).toEqual(walked);
      return walked;
    }

    it("each filter, newest first", async () => {
      await fillSearch();
      const cases: [Parameters<MysqlRunStore["searchRunsPage"]>[0], string[]][] = [
        [{}, ["s09", "s08", "s07", "s06", "s04", "s03", "s02", "s01"]],
        [{ userId: "u1" }, ["s09", "s08", "s06", "s03", "s02", "s01"]],
        [{ userId: "u1", statuses: ["success"] }, ["s09", "s01"]],
        [{ userId: "u1", statuses: ["success"], createdAfter: at(1) }, ["s09", "s01"]],
        [{ userId: "u1", statuses: ["success"], createdAfter: at(1, 1) }, ["s09"]],
        [{ userId: "u1", statuses: ["success"], createdBefore: at(8) }, ["s01"]],
        [{ statuses: ["timeout", "error"] }, ["s03", "s02"]],
        [{ userId: "u1", statuses: ["success", "running"] }, ["s09", "s06", "s01"]],
        [{ statuses: ["success"], createdAfter: at(4), createdBefore: at(8) }, ["s07", "s04"]],
        [{ operationKinds: ["checkpoint_write"] }, ["s05"]],
        [
          { userId: "u1", operationKinds: ["run", "checkpoint_write"] },
          ["s09", "s08", "s06", "s05", "s03", "s02", "s01"],
        ],
        [{ threadId: "t1" }, ["s08", "s07", "s02", "s01"]],
        [{ threadId: "t1", statuses: ["success", "interrupted"] }, ["s08", "s07", "s01"]],
        [{ threadId: "t3", operationKinds: ["checkpoint_write", "run"] }, ["s06", "s05"]],
        [{ threadId: "t1", userId: "u1", statuses: ["error"] }, ["s02"]],
        [{ assistantId: "asst" }, ["s06", "s03", "s01"]],
        [{ assistantId: "asst " }, ["s02"]],
        [{ modelName: " gpt-4o\n" }, ["s07", "s06", "s02", "s01"]],
        [{ modelName: "claude", userId: "u1" }, ["s03"]],
        [{ metadata: { team: "a" } }, ["s09", "s04", "s01"]],
        [{ metadata: { n: 1 } }, ["s09", "s07", "s06", "s01"]],
        [{ metadata: { n: 1.5 } }, ["s04"]],
        [{ metadata: { n: "1" } }, ["s03"]],
        [{ metadata: { flag: true } }, ["s01"]],
        [{ metadata: { flag: false } }, ["s02"]],
        [{ metadata: { flag: "true" } }, ["s03"]],
        [{ metadata: { [QUOTED]: "x" } }, ["s07", "s01"]],
        [{ metadata: { team: "a", n: 1 } }, ["s09", "s01"]],
        [{ metadata: { missing: "x" } }, []],
        [{ metadata: { team: "a" }, operationKinds: ["checkpoint_write"] }, ["s05"]],
        [{ userId: "nobody" }, []],
      ];
      for (const [filters, expected] of cases) {
        expect([filters, await search(filters)]).toEqual([filters, expected]);
      }
    });

    it("a walk over several statuses (one index range each, merged) never repeats or skips", async () => {
      for (let i = 0; i < 10; i++) {
        await put(`w-${i}0`, {
          userId: "u1",
          status: i % 2 === 0 ? "success" : "error",
          createdAt: at(100 + Math.floor(i / 3)),
          threadId: `t-${i % 3}`,
        });
      }
      await put("w-other-status", { userId: "u1", status: "timeout", createdAt: at(101) });
      await put("w-other-user", { userId: "u2", status: "success", createdAt: at(101) });
      const filters = { userId: "u1", statuses: ["success", "error"] as const };
      const behind: string[] = [];
      let n = 0;
      const pages = await walk(
        (p) => store.searchRunsPage({ ...filters, statuses: [...filters.statuses] }, p),
        3,
        async (last) => {
          n++;
          const status = n % 2 === 0 ? "success" : "error";
          behind.push(`${last.runId}~${n}`, `z-behind-${n}`);
          await put(`${last.runId}~${n}`, { userId: "u1", status, createdAt: last.createdAt });
          await put(`z-behind-${n}`, { userId: "u1", status, createdAt: at(200 + n) });
          const lower = String.fromCharCode(last.runId.charCodeAt(last.runId.length - 1) - 1);
          await put(`${last.runId.slice(0, -1)}${lower}~${n}`, {
            userId: "u1",
            status,
            createdAt: last.createdAt,
          });
          await put(`w-old-${n}`, { userId: "u1", status, createdAt: at(-n) });
        },
      );
      const seen = pages.flat().map((r) => r.runId);
      expect(new Set(seen).size).toBe(seen.length);
      const now = (
        await store.searchRunsPage(
          { ...filters, statuses: ["success", "error"] },
          { pageSize: 1000 },
        )
      ).items;
      expect(seen).toEqual(ids(now).filter((id) => !behind.includes(id)));
      expect(seen).toHaveLength(10 + 2 * (pages.length - 1));
    });

    it("bad filters name the field", async () => {
      await fillSearch();
      const before = await tableState();
      await invalid(store.searchRunsPage({ statuses: ["done" as never] }), "statuses[0]");
      await invalid(
        store.searchRunsPage({ operationKinds: ["job" as never] }),
        "operation_kinds[0]",
      );
      const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
      await invalid(store.searchRunsPage({ metadata: many }), "metadata");
      await invalid(store.searchRunsPage({ metadata: { x: {} as never } }), "metadata.x");
      await invalid(store.searchRunsPage({ metadata: { x: Number.NaN } }), "metadata.x");
      await invalid(store.searchRunsPage({ createdAfter: "yesterday" }), "created_after");
      await invalid(store.searchRunsPage({ userId: "" }), "user_id");
      await invalid(store.searchRunsPage({}, { pageSize: 1.5 }), "page_size");
      expect(await tableState()).toEqual(before);
    });

    it("a merged page is sized by the response budget before its rows load", async () => {
      for (let i = 0; i < 6; i++) {
        await put(`big-${i}`, {
          status: i % 2 === 0 ? "success" : "error",
          createdAt: at(i),
          metadata: { note: "x".repeat(10_000) },
        });
      }
      const budgeted = store.withResponseBudget(30_000);
      const loaded = store.listedRows;
      for (const statuses of [["success"], ["success", "error"]] as const) {
        const error = await failureOf(budgeted.searchRunsPage({ statuses: [...statuses] }));
        expect(error.code).toBe(Code.ResourceExhausted);
      }
      expect(store.listedRows).toBe(loaded);
      // Two rows (a page of one and the row that tells whether more remain) fit.
      const fits = await budgeted.searchRunsPage(
        { statuses: ["success", "error"] },
        { pageSize: 1 },
      );
      expect([ids(fits.items), fits.hasMore]).toEqual([["big-5"], true]);
    });
  });

  describe("GetRunStats", () => {
    const totals = (runs: number, input: number, output: number, total: number, cacheRead = 0) => ({
      runs,
      inputTokens: input,
      outputTokens: output,
      totalTokens: total,
      cacheReadTokens: cacheRead,
    });

    /**
     * u1's runs A–F (one of each status) around two local midnights: A and B
     * straddle +08:00's (16:00Z), C and D straddle -05:30's (05:30Z). A and
     * D have usage maps, B, C and E do not (C has no model_name), F has a
     * map of one model. G is u2's; H is a checkpoint_write of u1.
     */
    async function fillStats(): Promise<void> {
      const day = (d: number, hh: number, mm: number, ss = 0, micros = 0) =>
        at((d - 1) * 1440 + hh * 60 + mm + ss / 60, micros);
      await put("A", {
        userId: "u1",
        modelName: "m-a",
        status: "running",
        createdAt: day(1, 15, 59, 59, 999_999),
      });
      await store.updateRunCompletion("A", {
        status: "success",
        totalInputTokens: 100,
        totalOutputTokens: 10,
        totalTokens: 110,
        tokenUsageByModel: {
          "m-a": { inputTokens: 60, outputTokens: 6, totalTokens: 66, cacheReadTokens: 5 },
          "m-b": { inputTokens: 40, outputTokens: 4, totalTokens: 44 },
        },
      });
      await put("B", { userId: "u1", modelName: "m-a", createdAt: day(1, 16, 0) });
      await store.updateRunCompletion("B", {
        status: "error",
        totalInputTokens: 200,
        totalOutputTokens: 20,
        totalTokens: 220,
      });
      await put("C", { userId: "u1", createdAt: day(2, 5, 29, 59, 999_999) });
      await store.updateRunCompletion("C", {
        status: "timeout",
        totalInputTokens: 1,
        totalOutputTokens: 2,
        totalTokens: 3,
      });
      await put("D", {
        userId: "u1",
        modelName: "m-b",
        status: "running",
        createdAt: day(2, 5, 30),
      });
      await store.updateRunProgress("D", {
        totalInputTokens: 7,
        totalOutputTokens: 8,
        totalTokens: 15,
        tokenUsageByModel: {
          "m-b": { inputTokens: 7, outputTokens: 8, totalTokens: 15, cacheReadTokens: 2 },
        },
      });
      await put("E", { userId: "u1", modelName: "m-a", createdAt: day(2, 12, 0) });
      await put("F", { userId: "u1", modelName: "m-c", createdAt: day(3, 0, 0) });
      await store.updateRunCompletion("F", {
        status: "interrupted",
        totalInputTokens: 1,
        totalOutputTokens: 1,
        totalTokens: 2,
        tokenUsageByModel: {
          "m-c": { inputTokens: 1, outputTokens: 1, totalTokens: 2, cacheReadTokens: 0 },
        },
      });
      await put("G", { userId: "u2", modelName: "m-a", createdAt: day(1, 10, 0) });
      await store.updateRunCompletion("G", {
        status: "success",
        totalInputTokens: 1000,
        totalTokens: 1000,
      });
      await put("H", { userId: "u1", operationKind: "checkpoint_write", createdAt: day(1, 12, 0) });
    }

    const U1_COUNTS = {
      totalRuns: 6,
      byStatus: { pending: 1, running: 1, success: 1, error: 1, timeout: 1, interrupted: 1 },
      activeRuns: 2,
      failedRuns: 2,
      tokens: totals(6, 309, 41, 350, 7),
      byModel: {
        "m-a": totals(3, 260, 26, 286, 5),
        "m-b": totals(2, 47, 12, 59, 2),
        "m-c": totals(1, 1, 1, 2),
        unknown: totals(1, 1, 2, 3),
      },
    };

    it("counts, tokens, by model with the model_name / unknown fallback, days at +08:00", async () => {
      await fillStats();
      const stats: RunStats = await store.getRunStats({ userId: "u1", utcOffset: "+08:00" });
      expect(stats).toEqual({
        ...U1_COUNTS,
        days: [
          {
            date: "2026-03-01",
            tokens: totals(1, 100, 10, 110, 5),
            byModel: { "m-a": totals(1, 60, 6, 66, 5), "m-b": totals(1, 40, 4, 44) },
          },
          {
            date: "2026-03-02",
            tokens: totals(4, 208, 30, 238, 2),
            byModel: {
              "m-a": totals(2, 200, 20, 220),
              "m-b": totals(1, 7, 8, 15, 2),
              unknown: totals(1, 1, 2, 3),
            },
          },
          {
            date: "2026-03-03",
            tokens: totals(1, 1, 1, 2),
            byModel: { "m-c": totals(1, 1, 1, 2) },
          },
        ],
      });
    });

    it("days at -05:30: the local midnight falls between C and D", async () => {
      await fillStats();
      const stats = await store.getRunStats({ userId: "u1", utcOffset: "-05:30" });
      expect(stats).toEqual({
        ...U1_COUNTS,
        days: [
          {
            date: "2026-03-01",
            tokens: totals(3, 301, 32, 333, 5),
            byModel: {
              "m-a": totals(2, 260, 26, 286, 5),
              "m-b": totals(1, 40, 4, 44),
              unknown: totals(1, 1, 2, 3),
            },
          },
          {
            date: "2026-03-02",
            tokens: totals(3, 8, 9, 17, 2),
            byModel: {
              "m-a": totals(1, 0, 0, 0),
              "m-b": totals(1, 7, 8, 15, 2),
              "m-c": totals(1, 1, 1, 2),
            },
          },
        ],
      });
    });

    it("every user, a created range, UTC by default; bad input names the field", async () => {
      await fillStats();
      const all = await store.getRunStats();
      expect([all.totalRuns, all.byModel["m-a"], all.days.map((d) => d.date)]).toEqual([
        7,
        totals(4, 1260, 26, 1286, 5),
        ["2026-03-01", "2026-03-02", "2026-03-03"],
      ]);
      // B inclusive, D exclusive.
      const range = await store.getRunStats({
        createdAfter: at(16 * 60),
        createdBefore: at(1440 + 5 * 60 + 30),
      });
      expect(range).toEqual({
        totalRuns: 2,
        byStatus: { error: 1, timeout: 1 },
        activeRuns: 0,
        failedRuns: 2,
        tokens: totals(2, 201, 22, 223),
        byModel: { "m-a": totals(1, 200, 20, 220), unknown: totals(1, 1, 2, 3) },
        days: [
          {
            date: "2026-03-01",
            tokens: totals(1, 200, 20, 220),
            byModel: { "m-a": totals(1, 200, 20, 220) },
          },
          {
            date: "2026-03-02",
            tokens: totals(1, 1, 2, 3),
            byModel: { unknown: totals(1, 1, 2, 3) },
          },
        ],
      });
      const empty = await store.getRunStats({ userId: "nobody" });
      expect(empty).toEqual({
        totalRuns: 0,
        byStatus: {},
        activeRuns: 0,
        failedRuns: 0,
        tokens: totals(0, 0, 0, 0),
        byModel: {},
        days: [],
      });
      for (const utcOffset of ["+14:30", "08:00", "+8:00", "+05:60", "Z"]) {
        await invalid(store.getRunStats({ utcOffset }), "utc_offset");
      }
      await invalid(store.getRunStats({ createdBefore: "soon" }), "created_before");
      await invalid(store.getRunStats({ userId: 7 as never }), "user_id");
      expect((await store.getRunStats({ utcOffset: "-14:00" })).totalRuns).toBe(7);
    });

    it(`usage maps read in batches of ${MAP_BATCH}: each counted once across a batch boundary on one created_at`, async () => {
      const n = MAP_BATCH + 3;
      const when = at(0).replace("T", " ").replace("Z", "");
      const map = JSON.stringify({
        m: { input_tokens: 2, output_tokens: 1, total_tokens: 3, cache_read_tokens: 1 },
      });
      const rows = Array.from({ length: n }, (_, i) => [
        `b-${String(i).padStart(5, "0")}`,
        "t1",
        "success",
        "reject",
        "{}",
        "{}",
        when,
        when,
        map,
      ]);
      await raw.query(
        "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at, token_usage_by_model) VALUES ?",
        [rows],
      );
      const stats = await store.getRunStats();
      expect([stats.totalRuns, stats.tokens.cacheReadTokens, stats.byModel]).toEqual([
        n,
        n,
        { m: totals(n, 2 * n, n, 3 * n, n) },
      ]);
    });
  });

  describe("ListThreads", () => {
    /**
     * t-idle: its latest run (i2) succeeded, but i1 was updated last;
     * t-int: latest interrupted; t-err: two runs on one created_at, the
     * greater run id (e2) timed out; t-busy: u1's run succeeded, u2's
     * checkpoint_write is pending; t-tie-a / t-tie-b: same activity; t-op:
     * only a checkpoint_write; t-u2: only u2's run.
     */
    async function fillThreads(): Promise<void> {
      const runs: [string, string, string, PutFields["status"], string, number][] = [
        ["i1", "t-idle", "u1", "success", at(1), 10],
        ["i2", "t-idle", "u1", "success", at(2), 9],
        ["n1", "t-int", "u1", "error", at(1), 8],
        ["n2", "t-int", "u1", "interrupted", at(3), 8.5],
        ["e1", "t-err", "u1", "success", at(5), 7],
        ["e2", "t-err", "u1", "timeout", at(5), 6],
        ["b1", "t-busy", "u1", "success", at(1), 5],
        ["ta", "t-tie-a", "u1", "success", at(1), 4],
        ["tb", "t-tie-b", "u1", "error", at(1), 4],
        ["u2", "t-u2", "u2", "success", at(1), 11],
      ];
      for (const [runId, threadId, userId, status, createdAt, hour] of runs) {
        await put(runId, { threadId, userId, status, createdAt });
        await store.updateRunCompletion(runId, {
          status: status ?? "success",
          totalTokens: runId.charCodeAt(1),
        });
        await touch(runId, at(hour * 60));
      }
      await put("b-op", {
        threadId: "t-busy",
        userId: "u2",
        status: "pending",
        operationKind: "checkpoint_write",
        createdAt: at(0),
      });
      await touch("b-op", at(12 * 60));
      await put("o-op", {
        threadId: "t-op",
        userId: "u1",
        status: "success",
        operationKind: "checkpoint_write",
        createdAt: at(0),
      });
      await touch("o-op", at(12 * 60));
    }

    const summary = (
      threadId: string,
      runCount: number,
      latest: [string, string, number],
      activityHour: number,
      totalTokens: number,
      status: string,
    ) => ({
      threadId,
      runCount,
      latestRunId: latest[0],
      latestRunStatus: latest[1],
      latestRunUpdatedAt: at(latest[2] * 60),
      lastActivityAt: at(activityHour * 60),
      totalTokens,
      status,
    });

    it("summaries, newest activity first, walked in pages equal to one page", async () => {
      await fillThreads();
      const code = (id: string) => id.charCodeAt(1);
      const expected = [
        summary("t-idle", 2, ["i2", "success", 9], 10, code("i1") + code("i2"), "idle"),
        summary(
          "t-int",
          2,
          ["n2", "interrupted", 8.5],
          8.5,
          code("n1") + code("n2"),
          "interrupted",
        ),
        summary("t-err", 2, ["e2", "timeout", 6], 7, code("e1") + code("e2"), "error"),
        summary("t-busy", 1, ["b1", "success", 5], 5, code("b1"), "busy"),
        summary("t-tie-b", 1, ["tb", "error", 4], 4, code("tb"), "error"),
        summary("t-tie-a", 1, ["ta", "success", 4], 4, code("ta"), "idle"),
      ];
      const pages = await walk((p) => store.listThreadsPage({ userId: "u1" }, p), 4);
      expect(pages.map((p) => p.length)).toEqual([4, 2]);
      expect(pages.flat()).toEqual(expected);
      const one = await store.listThreadsPage({ userId: "u1" }, { pageSize: 1000 });
      expect([one.items, one.hasMore, one.nextPageToken]).toEqual([expected, false, null]);
      const iterated = [];
      for await (const thread of store.listThreads({ userId: "u1" }, 1))
        iterated.push(thread.threadId);
      expect(iterated).toEqual(expected.map((t) => t.threadId));
      // Every user: u2's thread is listed too (b-op and o-op are not runs, so counted nowhere).
      const everyone = await walk((p) => store.listThreadsPage({}, p), 3);
      expect(everyone.flat().map((t) => [t.threadId, t.runCount])).toEqual([
        ["t-u2", 1],
        ...expected.map((t) => [t.threadId, t.runCount]),
      ]);
      await invalid(store.listThreadsPage({ userId: "" }), "user_id");
      const token = (await store.listThreadsPage({ userId: "u1" }, { pageSize: 1 })).nextPageToken;
      await invalid(store.listThreadsPage({ userId: "u2" }, { pageToken: token }), "page_token");
    });
  });

  describe("DeleteThread", () => {
    /** `n` finished runs of `userId` on `threadId`, in one INSERT. */
    async function bulk(threadId: string, n: number, userId: string | null = null): Promise<void> {
      const when = at(0).replace("T", " ").replace("Z", "");
      const rows = Array.from({ length: n }, (_, i) => [
        `${threadId}-${userId ?? "none"}-${String(i).padStart(5, "0")}`,
        threadId,
        userId,
        "success",
        "reject",
        "{}",
        "{}",
        when,
        when,
      ]);
      await raw.query(
        "INSERT INTO runs (run_id, thread_id, user_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) VALUES ?",
        [rows],
      );
    }

    async function countOf(threadId: string): Promise<number> {
      const [rows] = await raw.query("SELECT COUNT(*) AS n FROM runs WHERE thread_id = ?", [
        threadId,
      ]);
      return Number((rows as { n: number }[])[0]?.n);
    }

    it(`1200 rows go in 3 DELETE statements of at most ${DELETE_BATCH} rows; a second call answers 0`, async () => {
      await bulk("t-big", 1200);
      await bulk("t-keep", 3);
      const deletes: number[] = [];
      const observed = observedStore(db.url, (sql, result) => {
        if (sql.startsWith("DELETE")) deletes.push(result.affectedRows as number);
      });
      try {
        expect(await observed.deleteThread("t-big")).toBe(1200);
        expect(deletes).toEqual([500, 500, 200]);
        expect(await observed.deleteThread("t-big")).toBe(0);
        expect(deletes).toEqual([500, 500, 200, 0]);
        expect(await observed.deleteThread("never-seen")).toBe(0);
      } finally {
        await observed.close();
      }
      expect([await countOf("t-big"), await countOf("t-keep")]).toEqual([0, 3]);
    });

    it("an active row of any kind and user refuses without force and changes nothing; force removes everything", async () => {
      await bulk("t1", 4, "u1");
      await put("op", {
        userId: "u2",
        status: "running",
        operationKind: "artifact_write",
        createdAt: at(9),
      });
      const before = await tableState();
      for (const userId of [null, "u1"]) {
        const error = await failureOf(store.deleteThread("t1", { userId }));
        expect([error.code, error.rawMessage]).toEqual([
          Code.FailedPrecondition,
          "thread_id t1 has an active operation (pending or running); wait for it to end, or delete with force",
        ]);
      }
      expect(await tableState()).toEqual(before);
      expect(await store.deleteThread("t1", { userId: "u1", force: true })).toBe(4);
      expect(
        ids(
          await store.searchRunsPage({ operationKinds: ["artifact_write"] }).then((p) => p.items),
        ),
      ).toEqual(["op"]);
      expect(await store.deleteThread("t1", { force: true })).toBe(1);
      expect(await countOf("t1")).toBe(0);
    });

    it("with a user, only that user's rows go", async () => {
      await bulk("t1", 3, "u1");
      await bulk("t1", 2, "u2");
      await bulk("t1", 1, null);
      expect(await store.deleteThread("t1", { userId: "u2" })).toBe(2);
      expect(await store.deleteThread("t1", { userId: "u2" })).toBe(0);
      expect(await countOf("t1")).toBe(4);
      expect(await store.deleteThread("t1")).toBe(4);
    });

    it("an admission racing in after the check survives the batches", async () => {
      await bulk("t1", 7, "u1");
      const other = db.openStore();
      let admitted = false;
      const observed = observedStore(db.url, async (sql) => {
        if (sql === COORDINATION_STATEMENTS.firstActiveOfThread && !admitted) {
          admitted = true;
          await other.createThreadOperation("late", {
            threadId: "t1",
            ownerWorkerId: "w1",
            userId: "u1",
          });
        }
      });
      try {
        expect(await observed.deleteThread("t1", { userId: "u1" })).toBe(7);
      } finally {
        await observed.close();
      }
      expect(admitted).toBe(true);
      expect(ids(await store.listByThread("t1"))).toEqual(["late"]);
      expect((await store.get("late"))?.status).toBe("pending");
    });

    it("bad input names the field and changes nothing", async () => {
      await bulk("t1", 2, "u1");
      const before = await tableState();
      await invalid(store.deleteThread(""), "thread_id");
      await invalid(store.deleteThread("t1", { userId: "" }), "user_id");
      await invalid(store.deleteThread("t1", { force: "yes" as never }), "force");
      await invalid(store.deleteThread("x".repeat(300)), "thread_id");
      expect(await tableState()).toEqual(before);
    });
  });
}
