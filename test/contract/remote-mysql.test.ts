import type { RemoteProtocol } from "@runstore/client";
import { afterAll, describe, it } from "vitest";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { createTestDatabase } from "../support/mysql.js";
import { openRemote } from "../support/remote.js";
import { openCaseServers } from "./case-servers.js";
import { runStoreContract } from "./run-store-contract.js";
import { openScopedRemote } from "./scoped-server.js";

// RemoteRunStore → real HTTP/2 server on port 0 → MysqlRunStore on this file's
// own database; a case with tokens gets a server requiring them; a case with
// watch steps gets servers of its own (replicas), each (re)start on a new
// pool to the same database.
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
      {
        backend: "mysql",
        async open(tokenLines, settings) {
          await db.truncate();
          return openCaseServers({
            protocol,
            tokenLines,
            settings,
            openStore: async () => {
              const store = MysqlRunStore.open({ url: db.url, poolSize: 4 });
              return { store, close: () => store.close() };
            },
          });
        },
      },
    );
  }
}
