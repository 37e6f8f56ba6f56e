import * as http2 from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type Interceptor,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createMethodSerializationLookup,
  createMethodUrl,
  encodeEnvelope,
  type MethodSerializationLookup,
  runUnaryCall,
} from "@connectrpc/connect/protocol";
import { requestHeader } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { calmedStream, connectionLost, streamCalmed, streamRefused } from "./connection-errors.js";
import { answer, type RawAnswer, READ_MAX_BYTES } from "./grpc-answer.js";
import { grpcRequestHeaders, nodeHeaders } from "./grpc-request-headers.js";
import { certificateAlert } from "./tls-errors.js";

// RemoteRunStore's gRPC unary calls: Connect's protocol helpers (request
// headers, envelopes, message limits, response and trailer validation) over
// one stream of Connect's Http2SessionManager (connect, keepalive pings,
// GOAWAY, reconnect), read with plain stream events. With interceptors a
// call goes through Connect's runUnaryCall (the interceptors see its signal
// and request); without (RemoteRunStore's default) it is run directly, with
// runUnaryCall's results and errors (see `direct`). Streaming calls go to
// Connect's transport.
//
// Why not connect-node's gRPC transport for unary calls: it takes each one
// through its streaming pipeline (async generators for the request body and
// the response body, a Node stream wrapped as an async iterable), which
// `npm run bench -- --client-transport=sdk,connect` measures at about twice
// this transport's client CPU per call. What is still written here is what
// connect-node keeps private: the HTTP/2 stream handling and its error
// mapping. `bench/caller-cpu.ts` measures the client's CPU per call.

/** What RemoteRunStore hands the transport: the session it owns and its limits. */
export interface GrpcUnaryTransportOptions {
  baseUrl: string;
  sessionManager: Http2SessionManager;
  writeMaxBytes: number;
  interceptors: Interceptor[];
  /** Serves the streaming calls (RunStoreService has none today). */
  streaming: Transport;
}

/** A Transport whose unary calls cost about half of connect-node's client CPU. */
export function createGrpcUnaryTransport(options: GrpcUnaryTransportOptions): Transport {
  const basePath = new URL(options.baseUrl).pathname.replace(/\/+$/, "");
  const serializers = new WeakMap<DescMethodUnary, Lookup>();
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
  const { sessionManager, interceptors } = options;
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const timeout = timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
      const path = `${basePath}/${method.parent.typeName}/${method.name}`;
      if (interceptors.length === 0) {
        const headers = grpcRequestHeaders(timeout, header);
        const lookup = serializer(method);
        return direct(sessionManager, path, headers, method, input, lookup, signal, timeout);
      }
      return runUnaryCall({
        interceptors,
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
          const headers = nodeHeaders(req.header);
          const ends = { signal: req.signal, timeoutMs: undefined, aborted: abortReason };
          const raw = await exchange(sessionManager, path, headers, body, ends);
          return (await answer(req, raw, lookup, fromResetCode)) as never;
        },
      });
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return options.streaming.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

type Lookup = MethodSerializationLookup<DescMessage, DescMessage>;

/**
 * A call without interceptors, with what Connect's runUnaryCall would give
 * it and without its per-call machinery: runUnaryCall links the caller's
 * signal and a deadline signal into a third AbortController, arms a timer
 * for the deadline and aborts the controller when the call ends (an
 * AbortError built and dispatched per call), about a sixth of the client's
 * CPU per call. Here the deadline is one timer and the caller's signal one
 * listener, both on the exchange itself. The errors are runUnaryCall's: the
 * signal's reason as CANCELED when the caller aborted, "the operation timed
 * out" (DEADLINE_EXCEEDED) at the deadline, anything else through
 * ConnectError.from.
 */
async function direct<I extends DescMessage, O extends DescMessage>(
  sessionManager: Http2SessionManager,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
  lookup: Lookup,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<UnaryResponse<I, O>> {
  const message = create(method.input, input);
  try {
    const body = encodeEnvelope(0, lookup.getI(true).serialize(message));
    const ends = { signal, timeoutMs, aborted: canceledBy };
    const raw = await exchange(sessionManager, path, headers, body, ends);
    const response = await answer({ service: method.parent, method }, raw, lookup, fromResetCode);
    return response as UnaryResponse<I, O>;
  } catch (error) {
    if (signal?.aborted) throw canceledBy(signal);
    throw ConnectError.from(error);
  }
}

/** What ends an exchange early, and the error an abort of `signal` gives. */
interface Ends {
  signal: AbortSignal | undefined;
  timeoutMs: number | undefined;
  aborted: (signal: AbortSignal) => unknown;
}

/** Under runUnaryCall: the linked signal's reason, which runUnaryCall turns into the call's error. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason;
}

/** As runUnaryCall reports a call its caller aborted. */
function canceledBy(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason, Code.Canceled);
}

/**
 * Sends one request body on the shared HTTP/2 connection and collects the
 * whole answer. The connection may still be opening (TCP, TLS, a keepalive
 * check): the signal and the deadline end that wait too, and a stream that
 * arrives after the call ended is cancelled before anything is written on it.
 */
function exchange(
  sessionManager: Http2SessionManager,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array,
  ends: Ends,
): Promise<RawAnswer> {
  const { signal } = ends;
  if (signal?.aborted) return Promise.reject(ends.aborted(signal));
  return new Promise<RawAnswer>((resolve, reject) => {
    let stream: http2.ClientHttp2Stream | undefined;
    let over = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      over = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (error: unknown) => {
      if (over) return;
      finish();
      if (stream !== undefined && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(error);
    };
    const onAbort = () => fail(ends.aborted(signal as AbortSignal));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (ends.timeoutMs !== undefined) timer = setTimeout(failDeadline, ends.timeoutMs, fail);
    sessionManager.request("POST", path, headers, {}).then(
      (opened) => {
        if (over) {
          opened.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        stream = opened;
        read(sessionManager, opened, fail, (raw) => {
          if (over) return;
          finish();
          resolve(raw);
        });
        opened.end(body);
      },
      (error: unknown) => fail(fromNodeError(error)),
    );
  });
}

/** Fails a call whose deadline passed, as Connect words it (the error built only then: it captures a stack). */
function failDeadline(fail: (error: unknown) => void): void {
  fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}

/** Collects the answer on `stream`: `done` with it once the stream closes, else `fail`. */
function read(
  sessionManager: Http2SessionManager,
  stream: http2.ClientHttp2Stream,
  fail: (error: unknown) => void,
  done: (raw: RawAnswer) => void,
): void {
  // Kept: a stream closed with its connection no longer names its session.
  const session = stream.session;
  let status = 0;
  let header: http2.IncomingHttpHeaders | undefined;
  let trailer: http2.IncomingHttpHeaders | undefined;
  const chunks: Uint8Array[] = [];
  stream.on("response", (h) => {
    status = Number(h[":status"]);
    header = h;
  });
  stream.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    // Bytes read prove the connection alive: no keepalive PING needed.
    sessionManager.notifyResponseByteRead(stream);
  });
  stream.on("trailers", (t) => {
    trailer = t;
  });
  stream.on("error", (error) => {
    // A server that answered and closed while the body was still being
    // written: its answer, not this, is what counts (as connect-node).
    const code = (error as { code?: unknown }).code;
    if (stream.writableEnded && code === "ERR_STREAM_WRITE_AFTER_END") return;
    // Refused before processing (after GOAWAY): UNAVAILABLE, as a reset code it is.
    if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) fail(streamRefused(error));
    else if (calmedStream(error)) fail(streamCalmed(error));
    else fail(fromNodeError(error));
  });
  stream.on("close", () => {
    if (header !== undefined) done({ status, header, trailer, chunks, rstCode: stream.rstCode });
    else if (session?.destroyed) fail(connectionLost(fromResetCode(stream.rstCode)));
    else fail(fromResetCode(stream.rstCode));
  });
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
