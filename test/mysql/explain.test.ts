import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { STATEMENTS } from "../../src/stores/mysql-run-store.js";
import { createTestDatabase } from "../support/mysql.js";

// Every statement MysqlRunStore issues, EXPLAINed on a table big enough that
// the optimizer prefers an index when one serves: none may scan the table.

const db = await createTestDatabase("explain");

const T = "2026-01-01 00:00:00.000000";

/** Arguments for each statement, in placeholder order, naming rows that exist (run-1 is user-1's, on thread-1). */
const ARGS: Record<keyof typeof STATEMENTS, unknown[]> = {
  put: ["run-1", "thread-1", null, "user-1", null, "pending", "reject", "{}", "{}", null, T, T],
  get: ["run-1"],
  getOwned: ["run-1", "user-1"],
  // EXPLAIN goes through the text protocol here, where LIMIT takes a number.
  listByThread: ["thread-1", 100],
  listByThreadOwned: ["thread-1", "user-1", 100],
  updateStatus: ["running", null, T, "run-1"],
  delete: ["run-1"],
  deleteOwned: ["run-1", "user-1"],
  updateModelName: ["m", T, "run-1"],
  updateRunCompletion: ["success", 1, 2, 3, 4, 5, 6, 7, 8, null, null, null, T, "run-1"],
  updateRunProgress: [1, null, null, null, null, null, null, null, "m", null, T, "run-1"],
  listPending: [T],
  listInflight: [T],
  aggregate: ["thread-1", "success", "error", "running"],
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
    // 4000 runs over 200 threads and 50 users; 1 in 40 still in flight.
    const statuses = ["success", "error", "timeout", "interrupted"];
    for (let batch = 0; batch < 4; batch++) {
      const rows: unknown[][] = [];
      for (let i = batch * 1000; i < (batch + 1) * 1000; i++) {
        const status = i % 40 === 0 ? "pending" : i % 40 === 1 ? "running" : statuses[i % 4];
        const second = String(i % 60).padStart(2, "0");
        rows.push([
          `run-${i}`,
          `thread-${i % 200}`,
          `user-${i % 50}`,
          `model-${i % 7}`,
          status,
          "reject",
          "{}",
          "{}",
          `2026-01-01 00:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${second}.000000`,
          T,
        ]);
      }
      await pool.query(
        "INSERT INTO runs (run_id, thread_id, user_id, model_name, status, multitask_strategy, metadata, kwargs, created_at, updated_at) VALUES ?",
        [rows],
      );
    }
    await pool.query("ANALYZE TABLE runs");
  });

  describe("EXPLAIN of every statement the store issues", () => {
    it("covers every statement", () => {
      expect(Object.keys(ARGS).sort()).toEqual(Object.keys(STATEMENTS).sort());
    });

    for (const [name, statement] of Object.entries(STATEMENTS)) {
      it(`${name} uses an index (no full table or index scan)`, async () => {
        const [plan] = await pool.query(
          `EXPLAIN ${statement}`,
          ARGS[name as keyof typeof STATEMENTS],
        );
        const rows = (plan as PlanRow[]).filter((row) => row.table === "runs");
        expect(rows.length, JSON.stringify(plan)).toBeGreaterThan(0);
        for (const row of rows) {
          if (name === "put") {
            // An INSERT reads nothing; its duplicate check is the primary key.
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
