import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run the SDK from source, so `npm test` needs no build step.
export default defineConfig({
  resolve: {
    alias: {
      "@runstore/client": fileURLToPath(new URL("./client/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
