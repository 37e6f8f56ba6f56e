import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { duplicateKeyOf, mapMysqlError } from "./mysql-errors.js";

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

describe("mapMysqlError on a Galera node", () => {
  it("answers UNAVAILABLE for a node outside the Primary component and for a persisting certification conflict", () => {
    // As MariaDB 10.11 reports them (seen on scripts/galera-cluster.mjs's nodes).
    const nonPrimary = {
      errno: 1047,
      sqlState: "08S01",
      sqlMessage: "WSREP has not yet prepared node for application use",
    };
    const causalWaitFailed = { errno: 1205, sqlState: "HY000" };
    const certification = { errno: 1213, sqlState: "40001" };
    for (const error of [nonPrimary, causalWaitFailed, certification]) {
      const mapped = mapMysqlError(error);
      expect(mapped).toBeInstanceOf(ConnectError);
      expect((mapped as ConnectError).code).toBe(Code.Unavailable);
    }
  });
});
