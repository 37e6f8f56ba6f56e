import * as http2 from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  isMessage,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import {
  requestHeader,
  validateResponse,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { type Envelope, EnvelopeReader, parseEnvelope, webHeaders } from "./grpc-framing.js";

// RemoteRunStore's gRPC unary calls without connect-node's client pipeline.
//
// Why hand-written: connect-node's gRPC transport runs every unary call
// through the streaming machinery (async generators for the request and the
// response body, linked abort controllers, a deadline signal). The bench
// measured its client at about 1 ms of CPU per call, more than the server
// spends answering it. This transport sends the same request (headers built
// by Connect's own requestHeader()), reads the answer with Connect's own
// validateResponse() / validateTrailer(), and keeps Connect's error codes and
// messages, its deadline and cancel semantics and its interceptors. The
// HTTP/2 connection stays Connect's Http2SessionManager (connect, keepalive
// pings, GOAWAY, reconnect). Streaming calls go to Connect's transport.

export interface GrpcUnaryTransportOptions {
  baseUrl: string;
  sessionManager: Http2SessionManager;
  writeMaxBytes: number;
  interceptors: readonly Interceptor[];
  /** Serves the streaming calls (RunStoreService has none today). */
  streaming: Transport;
}

type Next = (req: UnaryRequest) => Promise<UnaryResponse>;

export function createGrpcUnaryTransport(options: GrpcUnaryTransportOptions): Transport {
  const base = options.baseUrl.replace(/\/+$/, "");
  const basePath = new URL(base).pathname.replace(/\/+$/, "");
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const timeout = timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
      const path = `${basePath}/${method.parent.typeName}/${method.name}`;
      const call: Next = (req) => send(options, path, req);
      const next = options.interceptors.reduceRight<Next>(
        (inner, interceptor) => interceptor(inner as never) as Next,
        call,
      );
      const message = isMessage(input, method.input)
        ? input
        : create(method.input as DescMessage, input as never);
      // As Connect's runUnaryCall: one signal for the whole call, interceptors
      // included, aborted by the caller's signal or when the deadline passes.
      const controller = new AbortController();
      const onAbort = () => controller.abort(aborted(signal as AbortSignal));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      const timer =
        timeout === undefined
          ? undefined
          : setTimeout(
              () =>
                controller.abort(
                  new ConnectError("the operation timed out", Code.DeadlineExceeded),
                ),
              timeout,
            );
      try {
        return (await next({
          stream: false,
          service: method.parent,
          method: method as DescMethodUnary,
          requestMethod: "POST",
          url: `${base}/${method.parent.typeName}/${method.name}`,
          header: requestHeader(true, timeout, header),
          contextValues: contextValues ?? createContextValues(),
          signal: controller.signal,
          message,
        })) as UnaryResponse<I, O>;
      } catch (error) {
        // The deadline's or the caller's reason, whatever an interceptor made of it.
        throw controller.signal.aborted ? aborted(controller.signal) : ConnectError.from(error);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return options.streaming.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

/** One request on the shared HTTP/2 connection, answered by one response message. */
async function send(
  options: GrpcUnaryTransportOptions,
  path: string,
  req: UnaryRequest,
): Promise<UnaryResponse> {
  const signal = req.signal;
  if (signal.aborted) throw aborted(signal);
  const bytes = toBinary(req.method.input, req.message);
  if (bytes.byteLength > options.writeMaxBytes) {
    throw new ConnectError(
      `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${options.writeMaxBytes}`,
      Code.ResourceExhausted,
    );
  }
  const headers: http2.OutgoingHttpHeaders = {};
  req.header.forEach((value, key) => {
    headers[key] = value;
  });

  // The connection may still be opening (TCP, TLS, a keepalive check): the
  // call's signal ends the wait too, and a stream that arrives too late is
  // cancelled.
  const stream = await new Promise<http2.ClientHttp2Stream>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    options.sessionManager.request("POST", path, headers, {}).then(
      (opened) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) opened.close(http2.constants.NGHTTP2_CANCEL);
        else resolve(opened);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(fromNodeError(error));
      },
    );
  });
  return new Promise<UnaryResponse>((resolve, reject) => {
    let settled = false;
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const settle = (error: ConnectError | undefined, response?: UnaryResponse) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (error === undefined) resolve(response as UnaryResponse);
      else {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(error);
      }
    };
    const onAbort = () => settle(aborted(signal));
    if (signal.aborted) {
      onAbort();
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    stream.on("response", (h) => {
      responseHeaders = h;
      status = Number(h[":status"]);
    });
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      // Bytes read prove the connection alive: no keepalive PING needed.
      options.sessionManager.notifyResponseByteRead(stream);
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("error", (error) => {
      // A server that answered and closed while the body was still being
      // written: its answer, not this, is what counts (as connect-node).
      const code = (error as { code?: unknown }).code;
      if (stream.writableEnded && code === "ERR_STREAM_WRITE_AFTER_END") return;
      settle(fromNodeError(error));
    });
    stream.on("close", () => {
      if (settled) return;
      if (responseHeaders === undefined) {
        settle(fromResetCode(stream.rstCode));
        return;
      }
      try {
        settle(undefined, answer(req, status, responseHeaders, trailers, chunks, stream.rstCode));
      } catch (error) {
        settle(ConnectError.from(error));
      }
    });
    stream.end(encodeEnvelope(0, bytes));
  });
}

/** The response message, or the error the answer carries (as Connect reads it). */
function answer(
  req: UnaryRequest,
  status: number,
  rawHeaders: http2.IncomingHttpHeaders,
  rawTrailers: http2.IncomingHttpHeaders,
  chunks: Buffer[],
  rstCode: number,
): UnaryResponse {
  const header = webHeaders(rawHeaders);
  const trailer = webHeaders(rawTrailers);
  const { headerError } = validateResponse(status, header);
  const encoding = header.get("grpc-encoding");
  // We offer no compression, so a compressed answer cannot be read.
  if (encoding !== null && encoding.toLowerCase() !== "identity") {
    throw new ConnectError(`unsupported response encoding "${encoding}"`, Code.Internal, header);
  }
  const reader = new EnvelopeReader();
  const envelopes = chunks.flatMap((chunk) => reader.push(chunk) as Envelope[]);
  if (reader.pending) {
    throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  }
  const message =
    envelopes[0] === undefined ? undefined : parseEnvelope(envelopes[0], req.method.output);
  if (message instanceof ConnectError) throw message;
  if (envelopes.length > 1) {
    throw new ConnectError(
      "protocol error: received extra output message for unary method",
      Code.Unimplemented,
    );
  }
  if (!header.has("grpc-status") && !trailer.has("grpc-status") && rstCode !== 0) {
    throw fromResetCode(rstCode);
  }
  validateTrailer(trailer, header);
  if (message === undefined) {
    if (headerError) throw headerError;
    throw new ConnectError(
      "protocol error: missing output message for unary method",
      trailer.has("grpc-status") ? Code.Unimplemented : Code.Unknown,
    );
  }
  if (headerError) {
    throw new ConnectError(
      "protocol error: received output message for unary method with error status",
      Code.Unknown,
    );
  }
  return { stream: false, service: req.service, method: req.method, header, trailer, message };
}

/** The signal's reason as Connect reports it (an AbortError is CANCELED). */
function aborted(signal: AbortSignal): ConnectError {
  return ConnectError.from(
    signal.reason ?? new DOMException("This operation was aborted", "AbortError"),
    Code.Canceled,
  );
}

/** As connect-node maps Node errors: a refused or lost connection is UNAVAILABLE. */
function fromNodeError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const codes: string[] = [];
  for (let e: unknown = error; e instanceof Error && codes.length < 8; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  let code = Code.Internal;
  if (codes.includes("ERR_STREAM_WRITE_AFTER_END")) code = Code.Aborted;
  else if (
    codes.some((c) =>
      ["ERR_STREAM_DESTROYED", "ERR_HTTP2_INVALID_STREAM", "ECONNRESET"].includes(c),
    )
  ) {
    code = Code.Aborted;
  } else if (
    codes.some((c) => ["ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED"].includes(c))
  ) {
    code = Code.Unavailable;
  }
  const mapped = ConnectError.from(error, code);
  if (mapped !== error) mapped.cause = error;
  return mapped;
}

/** HTTP/2 error codes by number (RFC 9113 §7), as connect-node names them. */
const H2_ERRORS = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** A stream reset before any answer, by its HTTP/2 error code (as connect-node maps it). */
function fromResetCode(rstCode: number): ConnectError {
  const message = `http/2 stream closed with error code ${H2_ERRORS[rstCode] ?? rstCode} (0x${rstCode.toString(16)})`;
  switch (rstCode) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return new ConnectError(message, Code.Unavailable);
    case http2.constants.NGHTTP2_CANCEL:
      return new ConnectError(message, Code.Canceled);
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return new ConnectError(message, Code.ResourceExhausted);
    case http2.constants.NGHTTP2_INADEQUATE_SECURITY:
    case http2.constants.NGHTTP2_HTTP_1_1_REQUIRED:
      return new ConnectError(message, Code.PermissionDenied);
    case http2.constants.NGHTTP2_NO_ERROR:
    case http2.constants.NGHTTP2_STREAM_CLOSED:
      return new ConnectError("protocol error: missing status", Code.Internal);
    default:
      return new ConnectError(message, Code.Internal);
  }
}
