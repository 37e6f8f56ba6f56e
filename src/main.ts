import { ConfigError, readConfig, SETTINGS } from "./config.js";
import { createLogger } from "./logger.js";
import { StartupError } from "./open-store.js";
import { type Started, start } from "./start.js";

// The entry point: read config, start, stop on a signal. Nothing else.

if (process.argv.includes("--help")) {
  console.log("runstore: the RunStore server (gRPC, gRPC-Web, Connect over HTTP/2)\n");
  console.log("Settings (environment variables):");
  for (const [name, fallback, meaning] of SETTINGS) {
    console.log(`  ${name.padEnd(25)} ${meaning} [default: ${fallback}]`);
  }
  process.exit(0);
}

let config: ReturnType<typeof readConfig>;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // Before a logger exists: one plain line an operator reads at a glance.
  console.error(`runstore: ${error.message}`);
  process.exit(2);
}

const logger = createLogger(config.logLevel);
let started: Started;
try {
  started = await start(config, logger);
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  logger.fatal(error.message);
  process.exit(1);
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    started.close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
