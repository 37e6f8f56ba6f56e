import { describeWorkers } from "../workers/workers-suite.js";
import { createClusterDatabase } from "./cluster-db.js";

// The multi-worker test (test/workers/workers-suite.ts) on the Galera
// cluster: three server replicas, each on a different node of one database,
// four worker processes spread over them (worker i on replica i % 3), the
// audits reading each node in turn. Admissions racing on different nodes
// meet at certification, queued runs are claimed from three nodes, a
// cancel through one node reaches an owner renewing through another.

const db = await createClusterDatabase("workers");

describeWorkers(
  "several workers on three replicas, each on its own Galera node",
  "galera workers",
  {
    replicaUrls: db.urls,
    auditUrls: db.urls,
    drop: () => db.drop(),
  },
);
