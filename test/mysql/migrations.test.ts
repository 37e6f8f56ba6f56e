import { createConnection } from "mysql2/promise";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATION_TABLE, MIGRATIONS, migrate } from "../../src/stores/mysql-migrations.js";
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
      ]);
      expect(columns.find((c) => c.COLUMN_NAME === "created_at")?.COLUMN_TYPE).toBe("datetime(6)");
      expect(columns.find((c) => c.COLUMN_NAME === "error")?.COLUMN_TYPE).toBe("longtext");
      const indexes = await sql<{ INDEX_NAME: string; COLUMN_NAME: string; SEQ_IN_INDEX: number }>(
        db.url,
        "SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        [db.name],
      );
      expect(indexes.map((i) => `${i.INDEX_NAME}.${i.COLUMN_NAME}`)).toEqual([
        "PRIMARY.run_id",
        "runs_status_created.status",
        "runs_status_created.created_at",
        "runs_thread_created.thread_id",
        "runs_thread_created.created_at",
        "runs_user.user_id",
      ]);
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
