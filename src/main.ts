import { ConfigError, readConfig, SETTINGS } from "./config.js";
import { openStore, StartupError } from "./open-store.js";
import { startServer } from "./server.js";

// The entry point: read config, start, stop on a signal. Nothing else.

const log = (line: string) => console.error(`runstore: ${line}`);

if (process.argv.includes("--help")) {
  console.log("runstore: the RunStore server (gRPC, gRPC-Web, Connect over HTTP/2)\n");
  console.log("Settings (environment variables):");
  for (const [name, fallback, meaning] of SETTINGS) {
    console.log(`  ${name.padEnd(22)} ${meaning} [default: ${fallback}]`);
  }
  process.exit(0);
}

let opened: Awaited<ReturnType<typeof openStore>>;
let config: ReturnType<typeof readConfig>;
try {
  config = readConfig();
  opened = await openStore(config, log);
} catch (error) {
  if (!(error instanceof ConfigError || error instanceof StartupError)) throw error;
  log(error.message);
  process.exit(error instanceof ConfigError ? 2 : 1);
}

log(opened.description);
const server = await startServer({ store: opened.store, port: config.port, host: config.host });
log(`listening on ${server.url} (gRPC, gRPC-Web, Connect over HTTP/2)`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log(`${signal} received, shutting down`);
    server
      .close()
      .then(() => opened.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log(`shutdown failed: ${String(error)}`);
          process.exit(1);
        },
      );
  });
}
