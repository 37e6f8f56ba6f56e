import { context, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { redactUrl } from "./config.js";
import type { Logger } from "./logger.js";
import { serverVersion } from "./version.js";
import { TimeoutError, withTimeout } from "./with-timeout.js";

/** The tracer name of the server's spans (instrumentation scope). */
export const TRACER_NAME = "runstore";

/** Tracing registered at start-up; flush() exports what the batch still holds. */
export interface Tracing {
  /** Where spans go, for the start-up line. */
  endpoint: string;
  /** Exports the spans still batched, then stops the exporter; for shutdown. */
  shutdown(): Promise<void>;
}

/**
 * Turns tracing on when the standard OpenTelemetry variables ask for it: an
 * OTLP endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT) is set and neither OTEL_SDK_DISABLED=true nor
 * OTEL_TRACES_EXPORTER=none says no. Then an OTLP/HTTP (JSON) exporter
 * behind a batch processor is registered globally with W3C trace-context
 * propagation, and the API's tracer records. Otherwise nothing is
 * registered and every span the server starts is the API's no-op: null.
 */
export function startTracing(
  env: NodeJS.ProcessEnv = process.env,
  logger?: Logger,
): Tracing | null {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return null;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none") return null;
  const endpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ??
    tracesPath(nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT));
  if (endpoint === undefined) return null;
  // The exporter reads the rest (headers, timeout, compression) from the
  // same variables itself.
  const exporter = new OTLPTraceExporter({ url: endpoint });
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({ "service.name": "runstore", "service.version": serverVersion() }),
    )
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over ours.
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  // The endpoint may carry credentials (user:password@, ?api_key=).
  logger?.info({ endpoint: redactUrl(endpoint) }, "tracing: exporting spans over OTLP/HTTP");
  return {
    endpoint,
    async shutdown() {
      try {
        // After the grace period, stop must not wait for the exporter's own timeout.
        await withTimeout(provider.shutdown(), SHUTDOWN_EXPORT_MS);
      } catch (error) {
        if (error instanceof TimeoutError) {
          logger?.warn(
            { ms: SHUTDOWN_EXPORT_MS },
            "tracing: the last spans were not exported in time; stopping without them",
          );
        } else logger?.warn({ err: error }, "tracing: could not export the last spans");
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
      }
    },
  };
}

/** How long shutdown waits for the last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 2000;

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; traces go to its /v1/traces (the spec's rule). */
function tracesPath(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  return base.endsWith("/") ? `${base}v1/traces` : `${base}/v1/traces`;
}
