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
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
