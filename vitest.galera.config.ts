import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

// `npm run test:galera`: the test/galera files, on one local 3-node Galera
// cluster that test/galera/global-setup.ts starts for them all (or the one
// TEST_GALERA_URLS names). One file at a time: the three nodes already
// share this machine's cores.
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ["test/galera/**/*.test.ts"],
    globalSetup: ["test/galera/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
