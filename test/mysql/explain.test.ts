import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COORDINATION_STATEMENTS } from "../../src/stores/mysql-coordination.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { STATEMENTS } from "../../src/stores/mysql-run-store.js";
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
}

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
}
