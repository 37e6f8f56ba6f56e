import { ConfigError, readConfig } from "./config.js";
import { startServer } from "./server.js";
import { MemoryRunStore } from "./stores/memory-run-store.js";

// The entry point: read config, start, stop on a signal. Nothing else.

let config: ReturnType<typeof readConfig>;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`runstore: ${error.message}`);
  process.exit(2);
}

const store = new MemoryRunStore();
console.error(
  "runstore: no database configured; using the in-memory store (data will not survive a restart)",
);
const server = await startServer({ store, port: config.port, host: config.host });
console.error(`runstore: listening on ${server.url} (gRPC, gRPC-Web, Connect over HTTP/2)`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.error(`runstore: ${signal} received, shutting down`);
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("runstore: shutdown failed:", error);
        process.exit(1);
      },
    );
  });
}
