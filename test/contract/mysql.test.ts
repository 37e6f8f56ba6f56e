import { afterAll, describe, it } from "vitest";
import { createTestDatabase } from "../support/mysql.js";
import { runStoreContract } from "./run-store-contract.js";

// MysqlRunStore in-process on this file's own database; emptied before each test.
const db = await createTestDatabase("contract_mysql");

if (db === null) {
  describe("RunStore contract: MysqlRunStore in-process", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const store = db.openStore();
  afterAll(() => db.drop());
  runStoreContract("MysqlRunStore in-process", async () => {
    await db.truncate();
    return { store, close: async () => {} };
  });
}
