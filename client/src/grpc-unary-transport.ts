import * as http2 from "node:http2";
import type { DescMessage, DescMethodUnary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type Interceptor,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  createMethodSerializationLookup,
  createMethodUrl,
  encodeEnvelope,
  envelopeDecompress,
  type MethodSerializationLookup,
  runUnaryCall,
  transformSplitEnvelope,
} from "@connectrpc/connect/protocol";
import {
  requestHeader,
  validateResponseWithCompression,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { connectionLost, streamRefused } from "./connection-errors.js";
import { certificateAlert } from "./tls-errors.js";

// RemoteRunStore's gRPC unary calls: Connect's runUnaryCall (interceptors,
// one call signal, deadline) and Connect's protocol helpers (request headers,
// envelopes, message limits, response and trailer validation), over one
// stream of Connect's Http2SessionManager (connect, keepalive pings, GOAWAY,
// reconnect), read with plain stream events. Streaming calls go to Connect's
// transport.
//
// Why not connect-node's gRPC transport for unary calls: it takes each one
// through its streaming pipeline (async generators for the request body and
// the response body, a Node stream wrapped as an async iterable), which
// `npm run bench -- --client-transport=sdk,connect` measures at about twice
// this transport's client CPU per call. What is still written here is what
// connect-node keeps private: the HTTP/2 stream handling and its error
// mapping.

/** What RemoteRunStore hands the transport: the session it owns and its limits. */
export interface GrpcUnaryTransportOptions {
  baseUrl: string;
  sessionManager: Http2SessionManager;
  writeMaxBytes: number;
  interceptors: Interceptor[];
  /** Serves the streaming calls (RunStoreService has none today). */
  streaming: Transport;
}

/** The largest answer read, as connect-node's default readMaxBytes. */
const READ_MAX_BYTES = 0xffffffff;

/** A Transport whose unary calls cost about half of connect-node's client CPU. */
export function createGrpcUnaryTransport(options: GrpcUnaryTransportOptions): Transport {
  const basePath = new URL(options.baseUrl).pathname.replace(/\/+$/, "");
  const serializers = new WeakMap<
    DescMethodUnary,
    MethodSerializationLookup<DescMessage, DescMessage>
  >();
  const serializer = (method: DescMethodUnary) => {
    let lookup = serializers.get(method);
    if (lookup === undefined) {
      lookup = createMethodSerializationLookup(method, undefined, undefined, {
        writeMaxBytes: options.writeMaxBytes,
        readMaxBytes: READ_MAX_BYTES,
      });
      serializers.set(method, lookup);
    }
    return lookup;
  };
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const timeout = timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
      const path = `${basePath}/${method.parent.typeName}/${method.name}`;
      return runUnaryCall({
        interceptors: options.interceptors,
        signal,
        timeoutMs: timeout,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: createMethodUrl(options.baseUrl, method),
          header: requestHeader(true, timeout, header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req) => {
          const lookup = serializer(req.method as DescMethodUnary);
          const body = encodeEnvelope(0, lookup.getI(true).serialize(req.message));
          const raw = await exchange(options.sessionManager, path, req, body);
          return (await answer(req, raw, lookup)) as never;
        },
      });
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return options.streaming.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

/** What came back on the stream. */
interface RawAnswer {
  status: number;
  header: Headers;
  trailer: Headers;
  chunks: Uint8Array[];
  rstCode: number;
}

/** Sends one request body on the shared HTTP/2 connection and collects the whole answer. */
async function exchange(
  sessionManager: Http2SessionManager,
  path: string,
  req: UnaryRequest,
  body: Uint8Array,
): Promise<RawAnswer> {
  const signal = req.signal;
  const headers: http2.OutgoingHttpHeaders = {};
  req.header.forEach((value, key) => {
    headers[key] = value;
  });
  const stream = await open(sessionManager, path, headers, signal);
  // Kept: a stream closed with its connection no longer names its session.
  const session = stream.session;
  return new Promise<RawAnswer>((resolve, reject) => {
    let status = 0;
    let header: Headers | undefined;
    let trailer = new Headers();
    const chunks: Uint8Array[] = [];
    const fail = (error: unknown) => {
      signal.removeEventListener("abort", onAbort);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(error);
    };
    const onAbort = () => fail(signal.reason);
    // An abort between open() handing over the stream and this line fires no event.
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      header = toHeaders(h);
    });
    stream.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      // Bytes read prove the connection alive: no keepalive PING needed.
      sessionManager.notifyResponseByteRead(stream);
    });
    stream.on("trailers", (t) => {
      trailer = toHeaders(t);
    });
    stream.on("error", (error) => {
      // A server that answered and closed while the body was still being
      // written: its answer, not this, is what counts (as connect-node).
      const code = (error as { code?: unknown }).code;
      if (stream.writableEnded && code === "ERR_STREAM_WRITE_AFTER_END") return;
      // Refused before processing (after GOAWAY): UNAVAILABLE, as a reset code it is.
      if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) fail(streamRefused(error));
      else fail(fromNodeError(error));
    });
    stream.on("close", () => {
      signal.removeEventListener("abort", onAbort);
      if (header !== undefined)
        resolve({ status, header, trailer, chunks, rstCode: stream.rstCode });
      else if (session?.destroyed) reject(connectionLost(fromResetCode(stream.rstCode)));
      else reject(fromResetCode(stream.rstCode));
    });
    stream.end(body);
  });
}

/**
 * A stream on the session manager's connection, which may still be opening
 * (TCP, TLS, a keepalive check): the call's signal ends the wait too, and a
 * stream that arrives too late is cancelled.
 */
function open(
  sessionManager: Http2SessionManager,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  signal: AbortSignal,
): Promise<http2.ClientHttp2Stream> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    sessionManager.request("POST", path, headers, {}).then(
      (stream) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) stream.close(http2.constants.NGHTTP2_CANCEL);
        else resolve(stream);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(fromNodeError(error));
      },
    );
  });
}

/** The response message, or the error the answer carries (as connect-node's gRPC transport reads it). */
async function answer(
  req: UnaryRequest,
  raw: RawAnswer,
  lookup: MethodSerializationLookup<DescMessage, DescMessage>,
): Promise<UnaryResponse> {
  const { header, trailer } = raw;
  const { headerError } = validateResponseWithCompression([], raw.status, header);
  let message: unknown;
  for await (const envelope of transformSplitEnvelope(READ_MAX_BYTES)(
    createAsyncIterable(raw.chunks),
  )) {
    if (message !== undefined) {
      throw new ConnectError(
        "protocol error: received extra output message for unary method",
        Code.Unimplemented,
      );
    }
    const { data } = await envelopeDecompress(envelope, null, READ_MAX_BYTES);
    message = lookup.getO(true).parse(data);
  }
  if (!header.has("grpc-status") && !trailer.has("grpc-status") && raw.rstCode !== 0) {
    throw fromResetCode(raw.rstCode);
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
  return {
    stream: false,
    service: req.service,
    method: req.method,
    header,
    trailer,
    message: message as UnaryResponse["message"],
  };
}

/** Node's HTTP/2 headers without the pseudo-headers. */
function toHeaders(node: http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(node)) {
    if (name[0] === ":" || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

/**
 * As connect-node maps Node errors: a refused connection is UNAVAILABLE;
 * but a connection reset under a call is UNAVAILABLE too, as gRPC reports
 * a connection that broke after the request went out (connect-node:
 * ABORTED, a server's view of a client that hung up); and a TLS alert
 * refusing the client certificate is UNAUTHENTICATED (connect-node: INTERNAL).
 */
function fromNodeError(error: unknown): ConnectError {
  const refused = certificateAlert(error);
  if (refused !== undefined) return refused;
  if (error instanceof ConnectError) return error;
  const codes: string[] = [];
  for (let e: unknown = error; e instanceof Error && codes.length < 8; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  let code = Code.Internal;
  if (codes.includes("ECONNRESET")) {
    return connectionLost(error);
  }
  if (
    codes.some((c) =>
      ["ERR_STREAM_WRITE_AFTER_END", "ERR_STREAM_DESTROYED", "ERR_HTTP2_INVALID_STREAM"].includes(
        c,
      ),
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
