import { describe, expect, it } from "vitest";
import { duplicateKeyOf } from "./mysql-errors.js";

const duplicate = (sqlMessage: string) => ({ errno: 1062, sqlState: "23000", sqlMessage });

describe("duplicateKeyOf", () => {
  it("reads the index from MariaDB's and MySQL 8's messages, whatever the duplicate value holds", () => {
    expect(duplicateKeyOf(duplicate("Duplicate entry 't1' for key 'runs_active_thread'"))).toBe(
      "thread_slot",
    );
    expect(
      duplicateKeyOf(duplicate("Duplicate entry 'k' for key 'runs.runs_idempotency_key'")),
    ).toBe("idempotency_key");
    expect(duplicateKeyOf(duplicate("Duplicate entry 'it's' for key 'runs.PRIMARY'"))).toBe(
      "run_id",
    );
  });

  it("is null for other errors, other indexes and names of Object.prototype", () => {
    expect(duplicateKeyOf({ errno: 1213, sqlMessage: "Deadlock found" })).toBeNull();
    expect(duplicateKeyOf(duplicate("Duplicate entry 'x' for key 'runs_other'"))).toBeNull();
    expect(duplicateKeyOf(duplicate("Duplicate entry 'x' for key 'constructor'"))).toBeNull();
    expect(duplicateKeyOf(new Error("Duplicate entry 'x' for key 'PRIMARY'"))).toBeNull();
    expect(duplicateKeyOf(null)).toBeNull();
  });
});
