import { Kysely, Migrator, MysqlDialect } from "kysely";
import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import {
  createChangeTriggers,
  MIGRATION_TABLE,
  MIGRATIONS,
  migrate,
} from "../../src/stores/mysql-migrations.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { createTestDatabase, MYSQL_SERVER_URL } from "../support/mysql.js";

// Schema migrations on a real MariaDB / MySQL: fresh, re-run, concurrent
// runners, and a database that does not exist yet.

const db = await createTestDatabase("migrations", { migrate: false });

async function sql<T>(url: string, statement: string, values: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ uri: url });
  try {
    const [rows] = await connection.query(statement, values);
    return rows as T[];
  } finally {
    await connection.end();
  }
}

/** Creates the database at `url` and applies the migrations up to `last` only, as an older release would. */
async function migrateUpTo(url: string, last: string): Promise<string[]> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  await sql(
    MYSQL_SERVER_URL,
    `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  );
  const kysely = new Kysely<unknown>({
    dialect: new MysqlDialect({ pool: createMysqlPool({ url }, { connectionLimit: 1 }) }),
  });
  try {
    const migrator = new Migrator({
      db: kysely,
      provider: { getMigrations: async () => MIGRATIONS },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: `${MIGRATION_TABLE}_lock`,
    });
    const outcome = await migrator.migrateTo(last);
    if (outcome.error !== undefined) throw outcome.error;
    return (outcome.results ?? []).map((r) => r.migrationName);
  } finally {
    await kysely.destroy();
  }
}

if (db === null) {
  describe("migrations", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  afterAll(() => db.drop());
  const all = Object.keys(MIGRATIONS);

  describe("migrations", () => {
    it("apply every migration to a fresh database and record each once", async () => {
      expect(await migrate({ url: db.url })).toEqual(all);
      const recorded = await sql<{ name: string }>(
        db.url,
        `SELECT name FROM ${MIGRATION_TABLE} ORDER BY name`,
      );
      expect(recorded.map((r) => r.name)).toEqual(all);
      const columns = await sql<{ COLUMN_NAME: string; COLUMN_TYPE: string }>(
        db.url,
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs' ORDER BY ORDINAL_POSITION",
        [db.name],
      );
      expect(columns.map((c) => c.COLUMN_NAME)).toEqual([
        "run_id",
        "thread_id",
        "assistant_id",
        "user_id",
        "model_name",
        "status",
        "multitask_strategy",
        "metadata",
        "kwargs",
        "error",
        "created_at",
        "updated_at",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "llm_call_count",
        "lead_agent_tokens",
        "subagent_tokens",
        "middleware_tokens",
        "message_count",
        "last_ai_message",
        "first_human_message",
        "operation_kind",
        "stop_reason",
        "owner_worker_id",
        "lease_expires_at",
        "cancel_action",
        "cancel_requested_at",
        "idempotency_key",
        "follow_up_to_run_id",
        "token_usage_by_model",
        "queued",
        "holds_slot",
        "active_thread_id",
      ]);
      expect(columns.find((c) => c.COLUMN_NAME === "created_at")?.COLUMN_TYPE).toBe("datetime(6)");
      expect(columns.find((c) => c.COLUMN_NAME === "error")?.COLUMN_TYPE).toBe("longtext");
      expect(columns.find((c) => c.COLUMN_NAME === "lease_expires_at")?.COLUMN_TYPE).toBe(
        "datetime(6)",
      );
      const indexes = await sql<{ INDEX_NAME: string; COLUMN_NAME: string; SEQ_IN_INDEX: number }>(
        db.url,
        "SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        [db.name],
      );
      expect(indexes.map((i) => `${i.INDEX_NAME}.${i.COLUMN_NAME}`)).toEqual([
        "PRIMARY.run_id",
        "runs_active_thread.active_thread_id",
        "runs_idempotency_key.idempotency_key",
        "runs_kind_created.operation_kind",
        "runs_kind_created.created_at",
        "runs_kind_created.run_id",
        "runs_kind_status_created.operation_kind",
        "runs_kind_status_created.status",
        "runs_kind_status_created.created_at",
        "runs_kind_status_created.run_id",
        "runs_kind_user_created.operation_kind",
        "runs_kind_user_created.user_id",
        "runs_kind_user_created.created_at",
        "runs_kind_user_created.run_id",
        "runs_kind_user_status_created.operation_kind",
        "runs_kind_user_status_created.user_id",
        "runs_kind_user_status_created.status",
        "runs_kind_user_status_created.created_at",
        "runs_kind_user_status_created.run_id",
        "runs_queued_created.queued",
        "runs_queued_created.created_at",
        "runs_status_created.status",
        "runs_status_created.created_at",
        "runs_status_updated.status",
        "runs_status_updated.updated_at",
        "runs_thread_created.thread_id",
        "runs_thread_created.created_at",
        "runs_thread_status.thread_id",
        "runs_thread_status.status",
        "runs_thread_status.created_at",
        "runs_user.user_id",
      ]);
      const unique = await sql<{ INDEX_NAME: string }>(
        db.url,
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs' AND NON_UNIQUE = 0 ORDER BY INDEX_NAME",
        [db.name],
      );
      expect(unique.map((i) => i.INDEX_NAME)).toEqual([
        "PRIMARY",
        "runs_active_thread",
        "runs_idempotency_key",
      ]);
    });

    it("0005_changes: runstore_changes copies every column of runs (name, type, charset, collation), three triggers, one counter row", async () => {
      type Column = {
        COLUMN_NAME: string;
        COLUMN_TYPE: string;
        CHARACTER_SET_NAME: string | null;
        COLLATION_NAME: string | null;
      };
      const columnsOf = (table: string) =>
        sql<Column>(
          db.url,
          "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS " +
            "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
          [db.name, table],
        );
      const runs = await columnsOf("runs");
      const changes = await columnsOf("runstore_changes");
      expect(changes.slice(0, 5).map((c) => c.COLUMN_NAME)).toEqual([
        "change_id",
        "change_seq",
        "change_kind",
        "changed_at",
        "previous_status",
      ]);
      // The schema-evolution rule (docs/mysql.md "Change log"): a new runs
      // column needs its copy here, and the triggers re-created, in the same migration.
      expect(changes.slice(5)).toEqual(runs);
      const triggers = await sql<{
        TRIGGER_NAME: string;
        EVENT_MANIPULATION: string;
        ACTION_TIMING: string;
      }>(
        db.url,
        "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING FROM information_schema.TRIGGERS " +
          "WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = 'runs' ORDER BY TRIGGER_NAME",
        [db.name],
      );
      expect(triggers).toEqual([
        {
          TRIGGER_NAME: "runs_change_delete",
          EVENT_MANIPULATION: "DELETE",
          ACTION_TIMING: "AFTER",
        },
        {
          TRIGGER_NAME: "runs_change_insert",
          EVENT_MANIPULATION: "INSERT",
          ACTION_TIMING: "AFTER",
        },
        {
          TRIGGER_NAME: "runs_change_update",
          EVENT_MANIPULATION: "UPDATE",
          ACTION_TIMING: "AFTER",
        },
      ]);
      const indexes = await sql<{ INDEX_NAME: string; COLUMN_NAME: string; NON_UNIQUE: number }>(
        db.url,
        "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS " +
          "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runstore_changes' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        [db.name],
      );
      expect(
        indexes.map((i) => `${i.INDEX_NAME}.${i.COLUMN_NAME}.${Number(i.NON_UNIQUE)}`),
      ).toEqual([
        "changes_seq.change_seq.0",
        "changes_unnumbered.change_seq.1",
        "changes_unnumbered.change_id.1",
        "PRIMARY.change_id.0",
      ]);
      const counter = await sql<{ id: number; last_seq: number; feed_id: string }>(
        db.url,
        "SELECT id, last_seq, feed_id FROM runstore_change_counter",
      );
      expect(counter).toEqual([
        { id: 1, last_seq: 0, feed_id: expect.stringMatching(/^[0-9a-f-]{36}$/) },
      ]);
    });

    it("0005_changes on a table holding rows: they record no change; the next write does", async () => {
      const url = `${db.url}_changes`;
      try {
        expect(await migrateUpTo(url, "0004_retention")).toEqual(all.slice(0, 4));
        await sql(
          url,
          "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at) " +
            "VALUES ('r1', 't1', 'pending', 'reject', '{}', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        );
        expect(await migrate({ url })).toEqual(["0005_changes"]);
        const store = MysqlRunStore.open({ url, poolSize: 1 });
        try {
          const feed = store.changeFeed();
          expect(await feed.head()).toBe(0n);
          await store.updateStatus("r1", "running");
          expect(await feed.head()).toBe(1n);
          const [change] = await feed.read(0n, 10);
          expect(change?.run).toEqual(await store.get("r1"));
          expect([change?.kind, change?.previousStatus]).toEqual(["updated", "pending"]);
        } finally {
          await store.close();
        }
      } finally {
        await sql(MYSQL_SERVER_URL, `DROP DATABASE IF EXISTS \`${db.name}_changes\``);
      }
    });

    it("schema evolution: createChangeTriggers refuses a runs column runstore_changes lacks, and copies it once added", async () => {
      const url = `${db.url}_evolve`;
      const kysely = new Kysely<unknown>({
        dialect: new MysqlDialect({ pool: createMysqlPool({ url }, { connectionLimit: 1 }) }),
      });
      try {
        await migrate({ url });
        await sql(url, "ALTER TABLE runs ADD COLUMN extra INT NULL");
        await expect(createChangeTriggers(kysely)).rejects.toThrow(
          "runstore_changes lacks the runs column(s) extra: add them (same name and type) in the migration that adds them to runs",
        );
        await sql(url, "ALTER TABLE runstore_changes ADD COLUMN extra INT NULL");
        await createChangeTriggers(kysely);
        await sql(
          url,
          "INSERT INTO runs (run_id, thread_id, status, multitask_strategy, metadata, kwargs, created_at, updated_at, extra) " +
            "VALUES ('r1', 't1', 'pending', 'reject', '{}', '{}', NOW(6), NOW(6), 7)",
        );
        await sql(url, "UPDATE runs SET extra = 8 WHERE run_id = 'r1'");
        expect(
          await sql<{ change_kind: string; extra: number }>(
            url,
            "SELECT change_kind, extra FROM runstore_changes ORDER BY change_id",
          ),
        ).toEqual([
          { change_kind: "created", extra: 7 },
          { change_kind: "updated", extra: 8 },
        ]);
      } finally {
        await kysely.destroy();
        await sql(MYSQL_SERVER_URL, `DROP DATABASE IF EXISTS \`${db.name}_evolve\``);
      }
    });

    it("0002_coordination on a table holding part 1 rows: they read back with part 2's defaults", async () => {
      const url = `${db.url}_upgrade`;
      try {
        expect(await migrateUpTo(url, "0001_create_runs")).toEqual(["0001_create_runs"]);
        await sql(
          url,
          "INSERT INTO runs (run_id, thread_id, user_id, model_name, status, multitask_strategy, metadata, kwargs, " +
            "created_at, updated_at, total_tokens) VALUES " +
            "('r1', 't1', 'u1', 'm1', 'running', 'interrupt', '{\"a\": 1}', '{}', '2026-01-01 00:00:00.000001', '2026-01-01 00:00:00.000002', 7), " +
            "('r2', 't1', NULL, NULL, 'pending', 'reject', '{}', '{}', '2026-01-01 00:00:00.000003', '2026-01-01 00:00:00.000003', 0)",
        );
        expect(await migrate({ url })).toEqual(all.slice(1));
        const store = MysqlRunStore.open({ url, poolSize: 1 });
        try {
          const r1 = await store.get("r1");
          expect(r1).toEqual({
            runId: "r1",
            threadId: "t1",
            assistantId: null,
            userId: "u1",
            modelName: "m1",
            status: "running",
            multitaskStrategy: "interrupt",
            metadata: { a: 1 },
            kwargs: {},
            error: null,
            createdAt: "2026-01-01T00:00:00.000001Z",
            updatedAt: "2026-01-01T00:00:00.000002Z",
            totalInputTokens: 0,
            totalOutputTokens: 0,
            totalTokens: 7,
            llmCallCount: 0,
            leadAgentTokens: 0,
            subagentTokens: 0,
            middlewareTokens: 0,
            messageCount: 0,
            lastAiMessage: null,
            firstHumanMessage: null,
            operationKind: "run",
            stopReason: null,
            ownerWorkerId: null,
            leaseExpiresAt: null,
            cancelAction: null,
            cancelRequestedAt: null,
            idempotencyKey: null,
            followUpToRunId: null,
            tokenUsageByModel: {},
            queued: false,
          });
          expect((await store.listByThread("t1")).map((r) => r.runId)).toEqual(["r2", "r1"]);
          // Part 1 rows hold no slot: a reject admission on their thread sees
          // them as active (a conflict), an interrupt takes them over (no lease).
          const admission = await store.createThreadOperation("r3", {
            threadId: "t1",
            ownerWorkerId: "w1",
            multitaskStrategy: "interrupt",
          });
          expect(admission.takenOver.map((r) => [r.runId, r.status])).toEqual([
            ["r1", "interrupted"],
            ["r2", "interrupted"],
          ]);
        } finally {
          await store.close();
        }
        const flags = await sql<{ run_id: string; queued: number; holds_slot: number }>(
          url,
          "SELECT CAST(run_id AS CHAR) AS run_id, queued, holds_slot FROM runs ORDER BY run_id",
        );
        expect(flags).toEqual([
          { run_id: "r1", queued: 0, holds_slot: 0 },
          { run_id: "r2", queued: 0, holds_slot: 0 },
          { run_id: "r3", queued: 0, holds_slot: 1 },
        ]);
      } finally {
        await sql(MYSQL_SERVER_URL, `DROP DATABASE IF EXISTS \`${db.name}_upgrade\``);
      }
    });

    it("re-running is a no-op", async () => {
      expect(await migrate({ url: db.url })).toEqual([]);
      const recorded = await sql<{ n: number }>(
        db.url,
        `SELECT COUNT(*) AS n FROM ${MIGRATION_TABLE}`,
      );
      expect(Number(recorded[0]?.n)).toBe(all.length);
    });

    it("concurrent runners on a fresh database: one applies, the others wait and apply nothing", async () => {
      const url = `${db.url}_concurrent`;
      try {
        const outcomes = await Promise.all([1, 2, 3, 4].map(() => migrate({ url })));
        const appliers = outcomes.filter((applied) => applied.length > 0);
        expect(appliers).toEqual([all]);
        expect(outcomes.filter((applied) => applied.length === 0)).toHaveLength(3);
        const recorded = await sql<{ name: string }>(url, `SELECT name FROM ${MIGRATION_TABLE}`);
        expect(recorded.map((r) => r.name)).toEqual(all);
      } finally {
        await sql(MYSQL_SERVER_URL, `DROP DATABASE IF EXISTS \`${db.name}_concurrent\``);
      }
    });

    it("creates the database named in the URL when it does not exist", async () => {
      const name = `${db.name}_created`;
      try {
        expect(await migrate({ url: `${MYSQL_SERVER_URL}/${name}` })).toEqual(all);
        const schemata = await sql<{ DEFAULT_CHARACTER_SET_NAME: string }>(
          MYSQL_SERVER_URL,
          "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
          [name],
        );
        expect(schemata.map((s) => s.DEFAULT_CHARACTER_SET_NAME)).toEqual(["utf8mb4"]);
      } finally {
        await sql(MYSQL_SERVER_URL, `DROP DATABASE IF EXISTS \`${name}\``);
      }
    });
  });
}
