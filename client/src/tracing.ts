import { createRequire } from "node:module";

// The narrow slice of @opentelemetry/api this SDK uses, declared here so the
// package neither needs the API to build nor makes its users install it: it
// is an optional peer dependency, loaded when present. The API keeps its
// registrations (tracer provider, propagator, context manager) on
// globalThis, so the copy loaded here sees what the application registered.

interface SpanLike {
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface ContextLike {
  readonly __brand?: "Context";
}

interface OtelApi {
  trace: {
    getTracer(name: string): {
      startSpan(
        name: string,
        options: { kind: number; attributes: Record<string, string> },
        context: ContextLike,
      ): SpanLike;
    };
    setSpan(context: ContextLike, span: SpanLike): ContextLike;
  };
  context: {
    active(): ContextLike;
    with<T>(context: ContextLike, fn: () => T): T;
  };
  propagation: {
    inject(
      context: ContextLike,
      carrier: Record<string, string>,
      setter?: {
        set(carrier: Record<string, string>, key: string, value: string): void;
      },
    ): void;
  };
}

const SPAN_KIND_CLIENT = 2;
const SPAN_STATUS_ERROR = 2;

let api: OtelApi | null | undefined;

/** @opentelemetry/api when the application has it installed, else null (looked up once). */
function otelApi(): OtelApi | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)("@opentelemetry/api") as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

/** A client span opened by hand, for a call that is not one promise (a stream read over time). */
export interface CallSpan {
  /** The headers that carry the span (`traceparent`); empty without a tracer. */
  readonly headers: Record<string, string>;
  /** Marks the span failed with the code `code`. */
  fail(code: string): void;
  /** Ends the span; later calls do nothing. */
  end(): void;
}

/** The no-op span of a process without @opentelemetry/api. */
const NO_SPAN: CallSpan = { headers: {}, fail() {}, end() {} };

/**
 * Opens a client span `runstore.v1.RunStoreService/<Method>` (a child of the
 * caller's active span) and the headers that carry it: `traceparent` from
 * the propagator the application registered. Without @opentelemetry/api, a
 * registered tracer provider or propagator, the span is a no-op and the
 * headers are empty.
 */
export function startCallSpan(service: string, method: string): CallSpan {
  return openSpan(service, method)?.span ?? NO_SPAN;
}

/** The span and its context, or undefined without @opentelemetry/api. */
function openSpan(
  service: string,
  method: string,
): { otel: OtelApi; span: CallSpan; context: ContextLike } | undefined {
  const otel = otelApi();
  if (otel === null) return undefined;
  const parent = otel.context.active();
  const span = otel.trace.getTracer("@runstore/client").startSpan(
    `${service}/${method}`,
    {
      kind: SPAN_KIND_CLIENT,
      attributes: { "rpc.service": service, "rpc.method": method },
    },
    parent,
  );
  const context = otel.trace.setSpan(parent, span);
  const headers: Record<string, string> = {};
  otel.propagation.inject(context, headers, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
  let ended = false;
  const handle: CallSpan = {
    headers,
    fail: (code) => span.setStatus({ code: SPAN_STATUS_ERROR, message: code }),
    end() {
      if (ended) return;
      ended = true;
      span.end();
    },
  };
  return { otel, span: handle, context };
}

/**
 * Runs one RunStore call inside a client span (startCallSpan's) and hands
 * `attempt` the headers that carry it; `attempt` runs in the span's context.
 * `errorCode` names the code of a failure, for the span's status.
 */
export async function tracedCall<T>(
  service: string,
  method: string,
  attempt: (traceHeaders: Record<string, string>) => Promise<T>,
  errorCode: (error: unknown) => string,
): Promise<T> {
  const opened = openSpan(service, method);
  if (opened === undefined) return attempt({});
  const { otel, span, context } = opened;
  try {
    return await otel.context.with(context, () => attempt(span.headers));
  } catch (error) {
    span.fail(errorCode(error));
    throw error;
  } finally {
    span.end();
  }
}
