import type { TestProject } from "vitest/node";
import { startGaleraCluster } from "../../scripts/galera-cluster.mjs";

// One 3-node Galera cluster (scripts/galera-cluster.mjs) for every file of
// test/galera, started before the first and stopped after the last; the
// files read its URLs with inject("galeraUrls"). TEST_GALERA_URLS (three
// comma-separated mysql:// URLs, no database part) points the files at a
// running cluster instead, e.g. `node scripts/galera-cluster.mjs`'s.

declare module "vitest" {
  export interface ProvidedContext {
    /** Each node's mysql://root@127.0.0.1:PORT, node 0 first. */
    galeraUrls: string[];
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.TEST_GALERA_URLS;
  if (given !== undefined && given !== "") {
    project.provide(
      "galeraUrls",
      given.split(",").map((url) => url.trim()),
    );
    return async () => {};
  }
  const cluster = await startGaleraCluster();
  const exit = () => cluster.stopNow();
  process.once("exit", exit);
  console.log(
    `REPORT galera: 3-node cluster Synced in ${((cluster.startedInMs ?? 0) / 1000).toFixed(1)} s ` +
      `(${cluster.urls.join(", ")})`,
  );
  project.provide("galeraUrls", cluster.urls);
  return async () => {
    process.off("exit", exit);
    await cluster.stop();
  };
}
