import type { RunSearch } from "@runstore/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSearch, checkStats } from "../../src/stores/check-history.js";
import { CHANGE_STATEMENTS } from "../../src/stores/mysql-change-feed.js";
import { COORDINATION_STATEMENTS } from "../../src/stores/mysql-coordination.js";
import {
  expiredLeasePageStatement,
  inflightPageStatement,
  listByThreadStatement,
  type PageSlice,
  pendingPageStatement,
  type Sql,
} from "../../src/stores/mysql-pages.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { deleteChangesStatement, PRUNE_STATEMENTS } from "../../src/stores/mysql-retention.js";
import {
  daySumsStatement,
  statusCountStatement,
  usageMapsStatement,
} from "../../src/stores/mysql-run-stats.js";
import { MysqlRunStore, STATEMENTS } from "../../src/stores/mysql-run-store.js";
import { searchStatement } from "../../src/stores/mysql-search.js";
import { deleteBatchStatement, threadListingStatement } from "../../src/stores/mysql-threads.js";
import { createTestDatabase } from "../support/mysql.js";

// Every statement MysqlRunStore issues (part 1's and part 2's), EXPLAINed on
// a table big enough that the optimizer prefers an index when one serves:
// none may scan the table.

const db = await createTestDatabase("explain");

const T = "2026-01-01 00:00:00.000000";
const LATER = "2027-01-01 00:00:00.000000";

const ALL = { ...STATEMENTS, ...COORDINATION_STATEMENTS };

/** The 15 values put binds for its columns (mysql-run-store.ts PUT_COLUMNS). */
const PUT_VALUES = [
  "thread-1",
  null,
  "user-1",
  null,
  "pending",
  "reject",
  "{}",
  "{}",
  null,
  "run",
  null,
  null,
  null,
  null,
  null,
];

/** updateRunCompletion's values: status, 8 counters, messages, error, usage map, status twice, now, run. */
const COMPLETION = [
  ...["success", 1, 2, 3, 4, 5, 6, 7, 8, null, null, null, "{}"],
  ...["success", "success", T, "run-1"],
];

const ids = (n: number) => Array.from({ length: n }, (_, i) => `run-${i}`);

/**
 * Arguments for each statement, in placeholder order, naming rows that
 * exist (run-1 is user-1's, on thread-1; run-2 is queued; run-40 holds
 * thread-40's slot; key-10 is run-10's idempotency key).
 */
const ARGS: Record<keyof typeof ALL, unknown[]> = {
  putInsert: ["run-new", ...PUT_VALUES, T, T],
  putUpdate: ["pending", "thread-1", "pending", ...PUT_VALUES, T, "run-1"],
  get: ["run-1"],
  getOwned: ["run-1", "user-1"],
  // EXPLAIN goes through the text protocol here, where LIMIT takes a number.
  listByThread: ["thread-1", 100],
  listByThreadOwned: ["thread-1", "user-1", 100],
  updateStatus: ["running", null, null, "running", "running", T, "run-1"],
  updateStatusGuarded: ["running", null, null, "running", "running", T, "run-1"],
  delete: ["run-1"],
  deleteOwned: ["run-1", "user-1"],
  updateModelName: ["m", T, "run-1"],
  updateRunCompletion: COMPLETION,
  updateRunCompletionGuarded: [...COMPLETION, "success", "success"],
  updateRunProgress: [1, null, null, null, null, null, null, null, "m", null, null, T, "run-1"],
  listPending: [T],
  listInflight: [T],
  aggregate: ["thread-1", "success", "error", "running"],
  keyHolder: ["key-10"],
  slotHolder: ["thread-40"],
  firstActiveOfThread: ["thread-1"],
  lockActiveOfThread: ["10", "thread-1"],
  takeOver: ["Cancelled by newer run", "w1", T, "run-1"],
  insertOperation: [
    ...["run-new", "thread-1", null, "user-1", null, "reject", "{}", "{}", "run", "w1"],
    ...[null, "5000000", "key-new", null, 0, 1, T, T],
  ],
  nextQueued: [],
  nextQueuedOfThread: ["thread-2"],
  claim: ["w1", null, "5000000", T, "run-2"],
  startRun: [T, "run-1"],
  renewLease: [null, "5000000", T, "run-1", "w1"],
  cancelActionOf: ["run-1"],
  lockForCancel: ["run-1"],
  recordCancel: ["interrupt", T, T, "run-1"],
  cancelQueued: ["interrupt", T, "Cancelled before start", T, "run-2"],
  claimForTakeover: ["lost", null, T, "run-1", "10"],
  // Now as `before` (every run created by then), as recovery calls it.
  listExpiredLeases: [LATER, "10"],
  listExpiredLeasesNow: ["10"],
  getMany32: ["thread-1", ...ids(32)],
  getMany32Owned: ["thread-1", ...ids(32), "user-1"],
  getMany1024: ["thread-1", ...ids(1024)],
  getMany1024Owned: ["thread-1", ...ids(1024), "user-1"],
  regenerateSources: ["thread-1"],
  regenerateSourcesOwned: ["thread-1", "user-1"],
  editRegenerateRuns: ["thread-1"],
  editRegenerateRunsOwned: ["thread-1", "user-1"],
};

interface PlanRow {
  table: string | null;
  type: string | null;
  key: string | null;
  Extra: string | null;
}

/**
 * A history statement and the plan it must get: the index of every row
 * that reads the runs table (PRIMARY: the merged page's join back to the
 * rows of its winners), and the one index whose rows may be sorted (a
 * GROUP BY's groups); every other read comes in index order.
 */
interface HistoryCase {
  statement: Sql;
  /** An entry "a|b": either index. */
  keys: string[];
  sorts?: string;
}

const FIRST: PageSlice = { size: 100, after: null };
/** A page after a run in the middle of the table. */
const MIDDLE: PageSlice = { size: 100, after: ["2026-01-01T00:33:20.000000Z", "run-2000"] };
const SINCE = "2025-12-01T00:00:00Z";

function search(filters: RunSearch, page: PageSlice): Sql {
  return searchStatement(checkSearch(filters).filters, page);
}

/** The cases of the console's default filters, each on a first page and a later one. */
function pagedCases(): Record<string, HistoryCase> {
  const cases: Record<string, HistoryCase> = {};
  for (const [label, page] of [
    ["first page", FIRST],
    ["later page", MIDDLE],
  ] as const) {
    const add = (name: string, statement: Sql, keys: string[]) => {
      cases[`${name}, ${label}`] = { statement, keys };
    };
    const merged = (index: string, n: number) => [...Array<string>(n).fill(index), "PRIMARY"];
    add("SearchRuns user + time", search({ userId: "user-1", createdAfter: SINCE }, page), [
      "runs_kind_user_created",
    ]);
    add(
      "SearchRuns user + status + time",
      search({ userId: "user-1", statuses: ["error"], createdAfter: SINCE }, page),
      ["runs_kind_user_status_created"],
    );
    add(
      "SearchRuns user + 2 statuses + time",
      search({ userId: "user-1", statuses: ["error", "success"], createdAfter: SINCE }, page),
      merged("runs_kind_user_status_created", 2),
    );
    add("SearchRuns status + time", search({ statuses: ["error"], createdAfter: SINCE }, page), [
      "runs_kind_status_created",
    ]);
    add(
      "SearchRuns 2 statuses + time",
      search({ statuses: ["pending", "running"], createdAfter: SINCE }, page),
      merged("runs_kind_status_created", 2),
    );
    add("SearchRuns time only", search({ createdBefore: LATER }, page), ["runs_kind_created"]);
    add(
      "SearchRuns 2 kinds",
      search({ operationKinds: ["run", "checkpoint_write"] }, page),
      merged("runs_kind_created", 2),
    );
    add(
      "SearchRuns thread + 2 statuses",
      search({ threadId: "thread-1", statuses: ["error", "success"] }, page),
      merged("runs_thread_status", 2),
    );
    add("ListByThread page", listByThreadStatement("thread-1", null, page), [
      "runs_thread_created",
    ]);
    add("ListByThread page, user", listByThreadStatement("thread-1", "user-1", page), [
      "runs_thread_created",
    ]);
    add("ListPending page", pendingPageStatement("2027-01-01T00:00:00.000000Z", page), [
      "runs_kind_status_created",
    ]);
    add(
      "ListInflight page",
      inflightPageStatement("2027-01-01T00:00:00.000000Z", page),
      merged("runs_status_created", 2),
    );
    add(
      "expired-lease page",
      expiredLeasePageStatement("2027-01-01T00:00:00.000000Z", 10, page),
      merged("runs_status_created", 2),
    );
    add(
      "expired-lease page, now",
      expiredLeasePageStatement(null, 10, page),
      merged("runs_status_created", 2),
    );
  }
  return cases;
}

const THREAD_READS = [
  "runs_thread_created",
  "runs_thread_created",
  "runs_thread_created",
  "runs_thread_status",
];
const USER_STATS = checkStats({ userId: "user-1", createdAfter: SINCE, utcOffset: "+08:00" });

const HISTORY: Record<string, HistoryCase> = {
  ...pagedCases(),
  "ListThreads for a user": {
    statement: threadListingStatement("user-1", FIRST),
    keys: ["runs_kind_user_created", ...THREAD_READS],
    sorts: "runs_kind_user_created",
  },
  "ListThreads for a user, later page": {
    statement: threadListingStatement("user-1", {
      size: 100,
      after: ["2026-01-01T00:00:00.000000Z", "thread-100"],
    }),
    keys: ["runs_kind_user_created", ...THREAD_READS],
    sorts: "runs_kind_user_created",
  },
  "GetRunStats for a user: by status": {
    statement: statusCountStatement(USER_STATS),
    keys: ["runs_kind_user_status_created"],
  },
  "GetRunStats for a user: day sums": {
    statement: daySumsStatement(USER_STATS),
    keys: ["runs_kind_user_created"],
    sorts: "runs_kind_user_created",
  },
  "GetRunStats for a user: usage maps": {
    statement: usageMapsStatement(USER_STATS, MIDDLE.after),
    keys: ["runs_kind_user_created"],
  },
  "GetRunStats for everyone: usage maps": {
    statement: usageMapsStatement(checkStats({}), MIDDLE.after),
    keys: ["runs_kind_created"],
  },
  "DeleteThread batch": {
    statement: deleteBatchStatement("thread-1", null, false),
    keys: ["runs_thread_created|runs_thread_status"],
  },
  "DeleteThread batch, user, force": {
    statement: deleteBatchStatement("thread-1", "user-1", true),
    keys: ["runs_thread_created|runs_thread_status"],
  },
};

/**
 * The change log's statements (mysql-change-feed.ts, mysql-retention.ts)
 * with their values, and the one index each must read in index order
 * ("a|b": either; the writes by id may take the id range of
 * changes_unnumbered, as precise as PRIMARY's): the sequencer's, read()'s
 * and pruning's.
 */
const CHANGE_LOG: Record<string, { sql: string; values: unknown[]; key: string }> = {
  "sequencer: lock the counter": { sql: CHANGE_STATEMENTS.lockCounter, values: [], key: "PRIMARY" },
  "sequencer: unnumbered changes": {
    sql: CHANGE_STATEMENTS.unnumbered,
    values: [5000],
    key: "changes_unnumbered",
  },
  "sequencer: number them": {
    sql: CHANGE_STATEMENTS.number,
    values: ["[4001,4002,4003,4004]", "10"],
    key: "PRIMARY",
  },
  "sequencer: move the counter": {
    sql: CHANGE_STATEMENTS.bumpCounter,
    values: ["10"],
    key: "PRIMARY",
  },
  "head / identity": { sql: CHANGE_STATEMENTS.counter, values: [], key: "PRIMARY" },
  "poll: counter and waiting changes": {
    sql: CHANGE_STATEMENTS.poll,
    values: [],
    key: "PRIMARY,changes_unnumbered",
  },
  "read after a position": {
    sql: CHANGE_STATEMENTS.read,
    values: ["2000", 1000],
    key: "changes_seq",
  },
  "prune: oldest numbered": {
    sql: PRUNE_STATEMENTS.oldestNumbered,
    values: [T, 500],
    key: "changes_seq",
  },
  "prune: oldest unnumbered": {
    sql: PRUNE_STATEMENTS.oldestUnnumbered,
    values: [T, 500],
    key: "changes_unnumbered",
  },
  "prune: delete numbered": {
    sql: deleteChangesStatement(4, true),
    values: ["1", "2", "3", "4"],
    key: "PRIMARY",
  },
  "prune: delete unnumbered": {
    sql: deleteChangesStatement(4, false),
    values: ["4001", "4002", "4003", "4004"],
    key: "PRIMARY|changes_unnumbered",
  },
};

if (db === null) {
  describe("EXPLAIN", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const pool = createMysqlPool({ url: db.url }).promise();
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  beforeAll(async () => {
    // 4000 runs over 200 threads and 50 users; 1 in 40 still in flight, 1 in
    // 40 queued; the first in-flight run of five threads holds its slot;
    // every tenth run has an idempotency key, every fifth is a regenerate.
    const statuses = ["success", "error", "timeout", "interrupted"];
    for (let batch = 0; batch < 4; batch++) {
      const rows: unknown[][] = [];
      for (let i = batch * 1000; i < (batch + 1) * 1000; i++) {
        const phase = i % 40;
        const status =
          phase === 0 || phase === 2 ? "pending" : phase === 1 ? "running" : statuses[i % 4];
        const second = String(i % 60).padStart(2, "0");
        const metadata =
          i % 5 === 0 ? { regenerate_from_run_id: `run-${i - 1}`, replay_kind: "edit" } : {};
        rows.push([
          `run-${i}`,
          `thread-${i % 200}`,
          `user-${i % 50}`,
          `model-${i % 7}`,
          status,
          phase === 2 ? "enqueue" : "reject",
          JSON.stringify(metadata),
          "{}",
          `2026-01-01 00:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${second}.000000`,
          T,
          i % 10 === 0 ? `key-${i}` : null,
          phase === 2 ? 1 : 0,
          phase === 0 && i < 200 ? 1 : 0,
          i % 100 === 3 ? "checkpoint_write" : "run",
        ]);
      }
      await pool.query(
        "INSERT INTO runs (run_id, thread_id, user_id, model_name, status, multitask_strategy, metadata, kwargs, " +
          "created_at, updated_at, idempotency_key, queued, holds_slot, operation_kind) VALUES ?",
        [rows],
      );
    }
    await pool.query("ANALYZE TABLE runs");
  });

  describe("EXPLAIN of every statement the store issues", () => {
    it("covers every statement", () => {
      expect(Object.keys(ARGS).sort()).toEqual(Object.keys(ALL).sort());
    });

    for (const [name, statement] of Object.entries(ALL)) {
      it(`${name} uses an index (no full table or index scan)`, async () => {
        const [plan] = await pool.query(`EXPLAIN ${statement}`, ARGS[name as keyof typeof ALL]);
        // Rows that read the table (under its name or an alias); not derived or materialized results.
        const rows = (plan as PlanRow[]).filter(
          (row) => row.table !== null && !row.table.startsWith("<"),
        );
        expect(rows.length, JSON.stringify(plan)).toBeGreaterThan(0);
        for (const row of rows) {
          if (statement.startsWith("INSERT")) {
            // An INSERT reads nothing; its duplicate checks are the unique indexes.
            expect(row.type, JSON.stringify(row)).toBe("ALL");
            continue;
          }
          expect(["ALL", "index"], `${name}: ${JSON.stringify(row)}`).not.toContain(row.type);
          expect(row.key, `${name}: ${JSON.stringify(row)}`).not.toBeNull();
        }
      });
    }
  });

  describe("EXPLAIN of the history statements", () => {
    // Each row that reads the runs table uses the named index by range or
    // ref (an eq_ref on PRIMARY for a merged page's rows), never a full
    // table or index scan, and reads it in index order (no filesort), except
    // the one GROUP BY of `sorts`, whose groups must be sorted. A merged
    // page's union of at most branches x (size + 1) keys is sorted once
    // (the <union…> and <derived…> rows, which read no table).
    for (const [name, { statement, keys, sorts }] of Object.entries(HISTORY)) {
      it(`${name}: ${keys.join(", ")}`, async () => {
        // The text protocol, as above (MySQL may not prepare EXPLAIN): the
        // LIMIT and INTERVAL values the store binds as digit strings go as numbers.
        const values = statement.values.map((v) =>
          typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v,
        );
        const [plan] = await pool.query(`EXPLAIN ${statement.sql}`, values);
        const rows = (plan as PlanRow[]).filter(
          (row) => row.table !== null && !row.table.startsWith("<"),
        );
        const detail = JSON.stringify(plan);
        const named = rows.map((row) => keys.find((k) => k.split("|").includes(row.key ?? "")));
        expect(named.sort(), detail).toEqual([...keys].sort());
        for (const row of rows) {
          expect(["range", "ref", "eq_ref"], detail).toContain(row.type);
          if (row.key !== sorts) expect(row.Extra ?? "", detail).not.toMatch(/filesort/);
        }
      });
    }
  });

  describe("EXPLAIN of the change log's statements", () => {
    // The 4000 runs above left 4000 changes; the sequencer numbers them,
    // and updating 1111 runs (run-1…) leaves 1111 unnumbered.
    beforeAll(async () => {
      const store = MysqlRunStore.open({ url: db.url, poolSize: 1 });
      try {
        expect(await store.changeFeed().head()).toBe(4000n);
      } finally {
        await store.close();
      }
      await pool.query("UPDATE runs SET updated_at = ? WHERE run_id LIKE 'run-1%'", [LATER]);
      await pool.query("ANALYZE TABLE runstore_changes");
    });

    for (const [name, { sql, values, key }] of Object.entries(CHANGE_LOG)) {
      it(`${name}: ${key}, in index order`, async () => {
        const [plan] = await pool.query(`EXPLAIN ${sql}`, values);
        const detail = JSON.stringify(plan);
        // The numbering's JSON_TABLE list is a table function, no table read.
        const rows = (plan as PlanRow[]).filter(
          (row) => !(row.Extra ?? "").includes("Table function"),
        );
        // "a,b": one row each (the poll's subquery); "a|b": either.
        const keys = key.split(",");
        expect(rows, detail).toHaveLength(keys.length);
        for (const [i, row] of rows.entries()) {
          expect(keys[i]?.split("|"), detail).toContain(row.key);
          expect(["const", "range", "ref", "eq_ref"], detail).toContain(row.type);
          expect(row.Extra ?? "", detail).not.toMatch(/filesort/);
        }
      });
    }
  });
}
