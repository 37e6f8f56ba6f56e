import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { TRACER_NAME } from "../tracing.js";
import { serverVersion } from "../version.js";

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/**
 * A server span per RPC, `runstore.v1.RunStoreService/<Method>`, parented on
 * the request's W3C `traceparent` and active while the call runs, so the
 * store's SQL spans are its children. A call that fails sets the span's
 * status to ERROR with its Connect code. Put first in the chain: the span
 * covers auth refusals and the code callers see.
 */
export function tracingInterceptor(): Interceptor {
  const tracer = trace.getTracer(TRACER_NAME, serverVersion());
  return (next) => async (req) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const system = rpcSystem(req.header.get("content-type"));
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": system,
          "rpc.service": req.service.typeName,
          "rpc.method": req.method.name,
        },
      },
      parent,
    );
    try {
      const response = await context.with(trace.setSpan(parent, span), () => next(req));
      span.setAttribute(codeAttribute(system), 0);
      return response;
    } catch (error) {
      const code = ConnectError.from(error).code;
      span.setAttribute(codeAttribute(system), code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] ?? "unknown" });
      throw error;
    } finally {
      span.end();
    }
  };
}

/** gRPC and gRPC-Web are "grpc"; the Connect protocol is "connect_rpc". */
function rpcSystem(contentType: string | null): "grpc" | "connect_rpc" {
  return contentType?.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/** The semantic conventions' status attribute of each RPC system. */
function codeAttribute(system: "grpc" | "connect_rpc"): string {
  return system === "grpc" ? "rpc.grpc.status_code" : "rpc.connect_rpc.error_code";
}
