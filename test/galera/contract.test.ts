import { afterAll } from "vitest";
import { runStoreContract } from "../contract/run-store-contract.js";
import { createClusterDatabase, roundRobin } from "./cluster-db.js";

// The RunStore contract (docs/contract.md, every case of test/contract/cases
// an in-process runner runs) on a Galera cluster: a MysqlRunStore on each of
// the three nodes, and each call of a case sent to the next node's store in
// turn, so consecutive calls, a write and the read after it, land on
// different nodes, as calls spread by clients over replicas would.

const db = await createClusterDatabase("contract");
const store = roundRobin(db.openStores());
afterAll(() => db.drop());

runStoreContract("MysqlRunStore round robin over 3 Galera nodes", async () => {
  await db.truncate();
  return { store, close: async () => {} };
});
