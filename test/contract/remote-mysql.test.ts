import type { RemoteProtocol } from "@runstore/client";
import { afterAll, describe, it } from "vitest";
import { createTestDatabase } from "../support/mysql.js";
import { openRemote } from "../support/remote.js";
import { runStoreContract } from "./run-store-contract.js";
import { openScopedRemote } from "./scoped-server.js";

// RemoteRunStore → real HTTP/2 server on port 0 → MysqlRunStore on this file's
// own database; a case with tokens gets a server requiring them.
const db = await createTestDatabase("contract_remote");

if (db === null) {
  describe("RunStore contract: RemoteRunStore → server → MysqlRunStore", () => {
    it.todo("not run: no MySQL server reachable (see the warning above)");
  });
} else {
  const backend = db.openStore();
  afterAll(() => db.drop());
  for (const protocol of ["grpc", "connect"] as RemoteProtocol[]) {
    runStoreContract(
      `RemoteRunStore (${protocol}) → server → MysqlRunStore`,
      async () => {
        await db.truncate();
        return openRemote(backend, protocol);
      },
      async (tokenLines) => {
        await db.truncate();
        return openScopedRemote(backend, protocol, tokenLines);
      },
    );
  }
}
