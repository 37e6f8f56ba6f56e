import type { Interceptor } from "@connectrpc/connect";
import { type RemoteProtocol, RemoteRunStore } from "@runstore/client";
import { afterAll, describe, expect, it } from "vitest";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { type RunningServer, startServer } from "../../src/server.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { ADMIN_TOKEN } from "../contract/case-tokens.js";
import {
  runStoreContract,
  type ScopedHandle,
  type StoreHandle,
} from "../contract/run-store-contract.js";
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

const db = await createClusterDatabase("contract");
const backends: MysqlRunStore[] = db.openStores();
const opened: RunningServer[] = [];

afterAll(async () => {
  await Promise.all(opened.map((server) => server.close()));
  await db.drop();
});

/** A counter per node of the calls that reached its replica. */
function countCalls(counts: number[], node: number): Interceptor {
  return (next) => (request) => {
    counts[node] = (counts[node] ?? 0) + 1;
    return next(request);
  };
}

/** One replica per node, on port 0, counting calls into `counts`; closed after the file. */
async function startReplicas(
  counts: number[],
  tokens?: ReturnType<typeof parseTokenFile>,
): Promise<RunningServer[]> {
  const servers = await Promise.all(
    backends.map((store, node) =>
      startServer({ store, port: 0, interceptors: [countCalls(counts, node)], tokens }),
    ),
  );
  opened.push(...servers);
  return servers;
}

/** Three replicas whose cases need tokens: a client per token, each with the three URLs. */
async function openScoped(
  protocol: RemoteProtocol,
  counts: number[],
  tokenLines: readonly string[],
): Promise<ScopedHandle> {
  await db.truncate();
  const tokens = parseTokenFile(tokenLines.join("\n"), "contract tokens");
  const servers = await startReplicas(counts, tokens);
  const baseUrl = servers.map((server) => server.url);
  const clients = new Map<string, RemoteRunStore>();
  const withToken = (token: string): RemoteRunStore => {
    let client = clients.get(token);
    if (client === undefined) {
      client = new RemoteRunStore({ baseUrl, protocol, token });
      clients.set(token, client);
    }
    return client;
  };
  return {
    store: withToken(ADMIN_TOKEN),
    withToken,
    async close() {
      for (const client of clients.values()) client.close();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}

const PROTOCOL: RemoteProtocol = "grpc";
/** Calls that reached each node's replica: the shared client's, and the scoped cases'. */
const counts = [0, 0, 0];
const scopedCounts = [0, 0, 0];
const replicas = await startReplicas(counts);
const client = new RemoteRunStore({ baseUrl: replicas.map((r) => r.url), protocol: PROTOCOL });
afterAll(() => client.close());

runStoreContract(
  `RemoteRunStore (${PROTOCOL}, three URLs) → three replicas → MysqlRunStore on three Galera nodes`,
  async (): Promise<StoreHandle> => {
    await db.truncate();
    return { store: client, close: async () => {} };
  },
  (tokenLines) => openScoped(PROTOCOL, scopedCounts, tokenLines),
);

describe("the calls went round robin", () => {
  it("each replica answered a third of the shared client's calls (within one)", () => {
    const calls = counts.reduce((sum, n) => sum + n, 0);
    console.log(
      `REPORT galera contract (${PROTOCOL}): ${calls} calls through three replicas, ` +
        `per node [${counts.join(", ")}]; the scoped cases' replicas [${scopedCounts.join(", ")}]`,
    );
    expect(calls).toBeGreaterThan(0);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });
});
