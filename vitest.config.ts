import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

// Tests run the SDK from source, so `npm test` needs no build step.
const source = (file: string) => fileURLToPath(new URL(`./client/src/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@runstore\/client$/, replacement: source("index.ts") },
      { find: /^@runstore\/client\/internal$/, replacement: source("internal.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts", "client/src/**/*.spec.ts", "src/**/*.spec.ts"],
    // The Galera cluster's tests run on their own (vitest.galera.config.ts, `npm run test:galera`).
    exclude: [...configDefaults.exclude, "test/galera/**"],
    // A bound against a hang, never a measure of speed. `npm test` runs this
    // suite beside the Python and Galera suites on the same cores, where the
    // tests that start servers from source one after the other (startup.test.ts's
    // --version test starts four) took 8.6-16.6 s over four runs: at 20 s a
    // slower day would fail them.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
