import { ConfigError, readConfig, readReloadable, SETTINGS } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { StartupError } from "./open-store.js";
import { type Started, start } from "./start.js";
import { serverVersion } from "./version.js";

// The entry point: answer --help / --version, read config, start, handle
// signals. Nothing else. Every line it logs is pino JSON.

/** Signals that stop the server gracefully (SIGQUIT and SIGUSR2 would otherwise kill it). */
const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR2"] as const;

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(help());
  process.exit(0);
}
if (args.includes("--version") || args.includes("-v")) {
  console.log(serverVersion());
  process.exit(0);
}

// Until LOG_LEVEL is read: an operator must see why start-up failed.
let logger: Logger = createLogger("info");
process.on("uncaughtException", (error) => {
  logger.fatal({ err: error }, "uncaught exception: exiting");
  process.exit(1);
});
if (args.length > 0) {
  logger.fatal(
    { args },
    "runstore takes no arguments but --help and --version; settings are environment variables",
  );
  process.exit(2);
}
// Node opens the inspector on SIGUSR1 unless someone listens for it.
process.on("SIGUSR1", () =>
  logger.warn({ signal: "SIGUSR1" }, "SIGUSR1 ignored: the inspector stays closed"),
);

let config: ReturnType<typeof readConfig>;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  logger.fatal({ version: serverVersion() }, error.message);
  process.exit(2);
}

logger = createLogger(config.logLevel);
logger.info(
  { version: serverVersion(), node: process.version, pid: process.pid },
  `runstore ${serverVersion()} starting`,
);
let started: Started | undefined;
let stopping = false;
// Listening from the start: a signal while the store is still opening (or
// just after "listening on") must not kill the process without a line.
process.on("SIGHUP", () => reload(started));
for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal));
try {
  started = await start(config, logger);
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  logger.fatal(error.message);
  process.exit(1);
}

/** Graceful stop; before start-up has finished there is nothing to drain, so it exits at once. */
function stop(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  if (started === undefined) {
    logger.info({ signal }, "stopped while starting");
    process.exit(0);
  }
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
}

/** SIGHUP: re-reads the tokens and the TLS certificate; on a bad value keeps the old ones. */
function reload(running: Started | undefined): void {
  if (running === undefined || stopping) {
    logger.warn({ signal: "SIGHUP" }, "SIGHUP ignored: the server is not serving");
    return;
  }
  try {
    running.reload(readReloadable());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error(
      { signal: "SIGHUP" },
      `reload refused, still serving the previous tokens and certificate: ${message}`,
    );
  }
}

function help(): string {
  const lines = [
    `runstore ${serverVersion()}: the RunStore server (gRPC, gRPC-Web, Connect over HTTP/2)`,
    "",
    "Usage: node dist/main.js [--help | -h | --version | -v]",
    "",
    "Settings are environment variables:",
    ...SETTINGS.map(
      ([name, fallback, meaning]) => `  ${name.padEnd(25)} ${meaning} [default: ${fallback}]`,
    ),
    "",
    "Signals: SIGTERM, SIGINT, SIGQUIT, SIGUSR2 stop gracefully (SHUTDOWN_GRACE_MS);",
    "SIGHUP re-reads AUTH_TOKENS_FILE and the TLS files without dropping connections;",
    "SIGUSR1 is ignored (no inspector). Every log line is JSON on stdout.",
  ];
  return lines.join("\n");
}
