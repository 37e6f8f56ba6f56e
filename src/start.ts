import { type Config, ConfigError } from "./config.js";
import { tracingInterceptor } from "./interceptors/tracing.js";
import type { Logger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { type OpenedStore, openStore, StartupError } from "./open-store.js";
import { Overload } from "./overload.js";
import { defaultOverloadLimits } from "./overload-settings.js";
import { startRetention } from "./retention.js";
import { startServer } from "./server.js";
import { startTracing } from "./tracing.js";

/** What main.ts stops on a signal. */
export interface Started {
  /** The retention sweeper, the server (in-flight calls finish), then the store and the metrics port. */
  close(): Promise<void>;
  /**
   * New calls use these tokens and new TLS connections this certificate;
   * open ones go on. A ConfigError (nothing changed) when they would turn
   * authentication, TLS or mutual TLS on or off: that takes a restart.
   */
  reload(next: Pick<Config, "tokens" | "tls">): void;
}

/**
 * Start-up as an operator runs it: opens the configured store (StartupError
 * when the database cannot be used), serves it, serves metrics when a port
 * is configured, and logs where everything listens. When serving fails (a
 * port in use), the store is closed again and a StartupError says why.
 */
export async function start(config: Config, logger: Logger): Promise<Started> {
  const opened = await openStore(config, (line) => logger.warn(line));
  logger.info(opened.description);
  try {
    return await serve(config, logger, opened);
  } catch (error) {
    await opened.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartupError(`cannot serve: ${reason}`, { cause: error });
  }
}

/**
 * The metrics port, then the RunStore server: the metrics port is bound
 * first so that a taken one fails before the server listens or anything
 * says SERVING; it is closed again when the server cannot listen. Its
 * probes start answering once the server's health is attached.
 */
async function serve(config: Config, logger: Logger, opened: OpenedStore): Promise<Started> {
  const overload = new Overload(defaultOverloadLimits(opened.store, config.overload));
  const metrics =
    config.metricsPort === null ? null : createMetrics({ store: opened.store, overload });
  const metricsServer =
    metrics === null || config.metricsPort === null
      ? null
      : await metrics.serve({ port: config.metricsPort, host: config.metricsHost });
  // Off (nothing registered) unless the standard OTEL_* variables ask for it.
  const tracing = startTracing(process.env, logger);
  const server = await startServer({
    store: opened.store,
    port: config.port,
    host: config.host,
    tokens: config.tokens,
    jwt: config.jwt,
    tls: config.tls,
    maxRequestBytes: config.maxRequestBytes,
    shutdownGraceMs: config.shutdownGraceMs,
    healthCheckIntervalMs: config.healthCheckIntervalMs,
    limits: config.limits,
    callerShare: config.callerShare,
    overload,
    console: config.console,
    watch: config.watch,
    watchObserver: metrics?.watch,
    logger,
    interceptors: [
      ...(tracing === null ? [] : [tracingInterceptor()]),
      ...(metrics === null ? [] : [metrics.interceptor]),
    ],
  }).catch(async (error: unknown) => {
    await metricsServer?.close();
    throw error;
  });
  if (metricsServer !== null) {
    metricsServer.attachHealth(server.health);
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
  if (server.consoleUrl !== null) {
    logger.info({ url: `${server.consoleUrl}/` }, "serving the run console");
  }
  const sweeper =
    config.retention === null
      ? null
      : startRetention(opened.store, config.retention, logger, metrics?.registry);
  return {
    async close() {
      await sweeper?.close(); // first: no batch starts on a store being closed
      await server.close();
      await Promise.all([opened.close(), metricsServer?.close()]);
      await tracing?.shutdown(); // exports the spans still batched
    },
    reload(next) {
      const change = restartNeeded(config, next);
      if (change !== null) throw new ConfigError(`${change} needs a restart`);
      server.reload({ tokens: next.tokens, tls: next.tls });
      logger.info(
        { auth: next.tokens.length > 0 ? `${next.tokens.length} bearer token(s)` : "none" },
        next.tls === null ? "reloaded the tokens" : "reloaded the tokens and the TLS certificate",
      );
    },
  };
}

/** What a reload cannot change on a running server, or null. */
function restartNeeded(was: Pick<Config, "tokens" | "tls">, next: Pick<Config, "tokens" | "tls">) {
  if (was.tokens.length > 0 !== next.tokens.length > 0) {
    return "turning authentication on or off";
  }
  if ((was.tls === null) !== (next.tls === null)) return "turning TLS on or off";
  if ((was.tls?.clientCa == null) !== (next.tls?.clientCa == null)) {
    return "turning mutual TLS on or off";
  }
  return null;
}
