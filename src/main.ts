import { ConfigError, readConfig, SETTINGS } from "./config.js";
import { createLogger } from "./logger.js";
import { createMetrics, type MetricsServer } from "./metrics.js";
import { openStore, StartupError } from "./open-store.js";
import { startServer } from "./server.js";
import { MysqlRunStore } from "./stores/mysql-run-store.js";

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
let opened: Awaited<ReturnType<typeof openStore>>;
try {
  opened = await openStore(config, (line) => logger.warn(line));
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  logger.fatal(error.message);
  process.exit(1);
}
logger.info(opened.description);

const metrics = config.metricsPort === null ? null : createMetrics();
if (metrics !== null && opened.store instanceof MysqlRunStore) {
  metrics.observeMysqlPool(opened.store.pool);
}

const server = await startServer({
  store: opened.store,
  port: config.port,
  host: config.host,
  tokens: config.tokens,
  tls: config.tls,
  maxRequestBytes: config.maxRequestBytes,
  shutdownGraceMs: config.shutdownGraceMs,
  healthCheckIntervalMs: config.healthCheckIntervalMs,
  logger,
  interceptors: metrics === null ? [] : [metrics.interceptor],
});
let metricsServer: MetricsServer | null = null;
if (metrics !== null && config.metricsPort !== null) {
  metricsServer = await metrics.serve({ port: config.metricsPort, host: config.metricsHost });
  logger.info({ url: `${metricsServer.url}/metrics` }, "serving Prometheus metrics");
}
logger.info(
  {
    url: server.url,
    auth: config.tokens.length > 0 ? `${config.tokens.length} bearer token(s)` : "none",
    tls: config.tls === null ? "off" : config.tls.clientCa === null ? "on" : "mutual",
  },
  `listening on ${server.url} (gRPC, gRPC-Web, Connect)`,
);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    server
      .close()
      .then(() => Promise.all([opened.close(), metricsServer?.close()]))
      .then(
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
