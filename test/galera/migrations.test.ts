import { createConnection } from "mysql2/promise";
import { describe, expect, it } from "vitest";
import { MIGRATION_LEASE } from "../../src/stores/mysql-migration-lease.js";
import { MIGRATION_TABLE, MIGRATIONS, migrate } from "../../src/stores/mysql-migrations.js";
import { NODE_URLS } from "./cluster-db.js";

// Migrations on a Galera cluster: Kysely's GET_LOCK holds on one node only,
// so migrate() runs under a lease row that certification serialises
// (mysql-migration-lease.ts). Three migrators started at once on three
// nodes of a fresh database: one applies each migration once, the others
// wait and apply nothing, all three succeed, and every node has the schema.

const ALL = Object.keys(MIGRATIONS);

async function rows<T>(url: string, statement: string, values: unknown[] = []): Promise<T[]> {
  const connection = await createConnection({ uri: url });
  try {
    const [answer] = await connection.query(statement, values);
    return answer as T[];
  } finally {
    await connection.end();
  }
}

describe("migrations on a Galera cluster", () => {
  it("three migrators at once on three nodes of a fresh database: each migration applied once, all succeed", async () => {
    for (let round = 1; round <= 3; round++) {
      const name = `rs_galera_migrate_${round}_${process.pid}`;
      const urls = NODE_URLS.map((node) => `${node}/${name}`);
      try {
        const started = performance.now();
        const outcomes = await Promise.all(urls.map((url) => migrate({ url })));
        const ms = performance.now() - started;
        expect(outcomes.filter((applied) => applied.length > 0)).toEqual([ALL]);
        expect(outcomes.filter((applied) => applied.length === 0)).toHaveLength(2);
        const applier = outcomes.findIndex((applied) => applied.length > 0);
        console.log(
          `REPORT galera migrations round ${round}: node ${applier} applied ${ALL.length}, the other two waited; ${ms.toFixed(0)} ms`,
        );
        const schemas: string[][] = [];
        for (const url of urls) {
          const recorded = await rows<{ name: string }>(
            url,
            `SELECT name FROM ${MIGRATION_TABLE} ORDER BY name`,
          );
          expect(recorded.map((r) => r.name)).toEqual(ALL);
          const indexes = await rows<{ INDEX_NAME: string; COLUMN_NAME: string }>(
            url,
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS " +
              "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            [name],
          );
          schemas.push(indexes.map((i) => `${i.INDEX_NAME}.${i.COLUMN_NAME}`));
          // The lease was released: the next runner does not wait for it.
          const leases = await rows<{ n: number }>(
            url,
            "SELECT COUNT(*) AS n FROM runstore_leases WHERE name = ?",
            [MIGRATION_LEASE],
          );
          expect(Number(leases[0]?.n)).toBe(0);
        }
        // Every node has every index, the last migration's included.
        expect(schemas[0]).toContain("runs_status_updated.updated_at");
        expect(schemas[1]).toEqual(schemas[0]);
        expect(schemas[2]).toEqual(schemas[0]);
        // Run again through every node: nothing left to apply.
        expect(await Promise.all(urls.map((url) => migrate({ url })))).toEqual([[], [], []]);
      } finally {
        await rows(NODE_URLS[0] ?? "", `DROP DATABASE IF EXISTS \`${name}\``);
      }
    }
  });
});
