import { Code } from "@connectrpc/connect";
import type { Page, PageRequest, PutFields, RunRecord, RunStats } from "@runstore/client";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { COORDINATION_STATEMENTS } from "../../src/stores/mysql-coordination.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MAP_BATCH } from "../../src/stores/mysql-run-stats.js";
import { MysqlRunStore, type SqlPool } from "../../src/stores/mysql-run-store.js";
import { DELETE_BATCH } from "../../src/stores/mysql-threads.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase } from "../support/mysql.js";

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
}
