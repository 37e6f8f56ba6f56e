import { createTestDatabase } from "../support/mysql.js";
import { describeWorkers } from "./workers-suite.js";

// Several workers, one store (docs/workers.md): two server replicas on one
// MariaDB database and four worker processes (worker.ts); the test itself
// is in workers-suite.ts, which test/galera/workers.test.ts runs on a
// Galera cluster.

const db = await createTestDatabase("workers");

describeWorkers(
  "several workers on two replicas",
  "workers",
  db && { replicaUrls: [db.url, db.url], auditUrls: [db.url], drop: () => db.drop() },
);
