import type { Interceptor } from "@connectrpc/connect";
import { type RemoteProtocol, RemoteRunStore } from "@runstore/client";
import { afterAll, describe, expect, it } from "vitest";
import { startServer } from "../../src/server.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { runStoreContract, type StoreHandle } from "../contract/run-store-contract.js";
import { openScopedRemote } from "../contract/scoped-server.js";
import { CONTRACT_OVERLOAD } from "../support/remote.js";
import { createClusterDatabase } from "./cluster-db.js";

// The contract suite (every case of test/contract/cases, the remote runner's
// selection) through three server replicas, each with its MysqlRunStore on
// a different Galera node of one database, and one RemoteRunStore given the
// three URLs: each call goes to the next replica, so consecutive calls of a
// case are answered by different nodes. One client lives for the whole run
// (a fresh one a case would start every case on node 0); the cases with
// tokens get three replicas of their own that require them. gRPC only: the
// other protocols reach the same service (test/contract/remote-mysql.test.ts
// runs Connect on one MariaDB), and each pass takes about 100 s here.

const PROTOCOL: RemoteProtocol = "grpc";
const db = await createClusterDatabase("contract");
const backends: MysqlRunStore[] = db.openStores();

/** A counter per node of the calls that reached its replica. */
function countCalls(counts: number[], node: number): Interceptor {
  return (next) => (request) => {
    counts[node] = (counts[node] ?? 0) + 1;
    return next(request);
  };
}

/** Calls that reached each node's replica from the shared client. */
const counts = [0, 0, 0];
const replicas = await Promise.all(
  backends.map((store, node) =>
    // The contract's bursts (hundreds of calls at once) are not overload.
    startServer({
      store,
      port: 0,
      interceptors: [countCalls(counts, node)],
      overload: CONTRACT_OVERLOAD,
    }),
  ),
);
const client = new RemoteRunStore({ baseUrl: replicas.map((r) => r.url), protocol: PROTOCOL });

afterAll(async () => {
  client.close();
  await Promise.all(replicas.map((server) => server.close()));
  await db.drop();
});

runStoreContract(
  `RemoteRunStore (${PROTOCOL}, three URLs) → three replicas → MysqlRunStore on three Galera nodes`,
  async (): Promise<StoreHandle> => {
    await db.truncate();
    return { store: client, close: async () => {} };
  },
  async (tokenLines) => {
    await db.truncate();
    return openScopedRemote(backends, PROTOCOL, tokenLines);
  },
);

describe("the calls went round robin", () => {
  it("each replica answered a third of the shared client's calls (within one)", () => {
    const calls = counts.reduce((sum, n) => sum + n, 0);
    console.log(
      `REPORT galera contract (${PROTOCOL}): ${calls} calls through three replicas, ` +
        `per node [${counts.join(", ")}]`,
    );
    expect(calls).toBeGreaterThan(0);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });
});
