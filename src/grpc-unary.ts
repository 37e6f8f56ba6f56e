import type * as http2 from "node:http2";
import {
  type BinaryReadOptions,
  create,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  isMessage,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

// A lean handler for the one call shape on every agent run's hot path:
// unary gRPC (binary, uncompressed) over HTTP/2. Everything else (Connect,
// gRPC-Web, JSON, compression, HTTP/1.1, health, reflection) goes to
// connect-node's router as before.
//
// Why hand-written: connect-node runs each unary call through the same
// async-iterable pipeline as a bidi stream (async generators, linked abort
// controllers, three Headers objects and a DOMException per call). The
// benchmark showed that plumbing at 4-5× the server CPU per call of a
// @grpc/grpc-js server, and no maintained package offers a cheaper gRPC
// adapter for Connect routers. This file keeps Connect's semantics: the same
// interceptors run (auth, metrics, logs, drain, the call signal), the same
// errors with the same messages come back (test/faults/raw-protocol.test.ts
// asserts them byte for byte), and the request signal aborts on deadline,
// client cancel and shutdown.

const CONTENT_TYPE = "application/grpc+proto";
/** Sent back with every answer, as connect-node does. */
const RESPONSE_HEADERS = { "content-type": CONTENT_TYPE };

/** What the handler serves and how. */
export interface GrpcUnaryOptions {
  service: DescService;
  /** The service implementation (methods by local name, taking the request message). */
  impl: object;
  /** Connect interceptors, outermost first, as given to connectNodeAdapter. */
  interceptors: readonly Interceptor[];
  readMaxBytes: number;
  binaryOptions: Partial<BinaryReadOptions>;
  /** Aborts every call still running (end of the shutdown grace period). */
  shutdownSignal: AbortSignal;
}

/** Answers a plain unary gRPC call and returns true; false: not one, Connect takes it. */
export type GrpcUnaryHandler = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
) => boolean;

type Next = (req: UnaryRequest) => Promise<UnaryResponse>;

interface Route {
  method: DescMethodUnary;
  next: Next;
}

export function grpcUnaryHandler(options: GrpcUnaryOptions): GrpcUnaryHandler {
  const routes = new Map<string, Route>();
  for (const method of options.service.methods) {
    if (method.methodKind !== "unary") continue;
    const fn = (
      options.impl as Record<
        string,
        (input: unknown, context: { readonly signal: AbortSignal }) => Promise<unknown>
      >
    )[method.localName];
    if (typeof fn !== "function") continue;
    const invoke: Next = async (req) => {
      // The signal is made only if the implementation asks for it.
      const context = {
        get signal() {
          return req.signal;
        },
      };
      const output = await fn.call(options.impl, req.message, context);
      return {
        stream: false,
        service: req.service,
        method: method as DescMethodUnary,
        header: new Headers(),
        trailer: new Headers(),
        message: isMessage(output, method.output)
          ? output
          : create(method.output as DescMessage, output as never),
      };
    };
    // As Connect applies them: the first interceptor sees the call first.
    const next = options.interceptors.reduceRight<Next>(
      (inner, interceptor) => interceptor(inner as never) as Next,
      invoke,
    );
    routes.set(`/${options.service.typeName}/${method.name}`, {
      method: method as DescMethodUnary,
      next,
    });
  }

  return (req, res) => {
    if (req.httpVersionMajor !== 2 || req.method !== "POST") return false;
    const route = routes.get(req.url);
    if (route === undefined) return false;
    const headers = req.headers;
    const contentType = headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== CONTENT_TYPE) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    new Call(req, res, route, options).start();
    return true;
  };
}

/** One call, from the request headers to the trailers. */
class Call {
  private done = false;
  private controller: AbortController | undefined;
  private abortReason: ConnectError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly chunks: Buffer[] = [];
  private received = 0;

  constructor(
    private readonly req: http2.Http2ServerRequest,
    private readonly res: http2.Http2ServerResponse,
    private readonly route: Route,
    private readonly options: GrpcUnaryOptions,
  ) {}

  start(): void {
    const timeout = parseTimeout(
      (this.req.headers["grpc-timeout"] as string | undefined) ?? null,
      Number.MAX_SAFE_INTEGER,
    );
    if (timeout.error !== undefined) {
      this.fail(timeout.error);
      return;
    }
    if (timeout.timeoutMs !== undefined) {
      this.timer = setTimeout(
        () => this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded), true),
        timeout.timeoutMs,
      );
    }
    const shutdown = this.options.shutdownSignal;
    if (shutdown.aborted) {
      this.fail(ConnectError.from(shutdown.reason, Code.Unavailable));
      return;
    }
    const onShutdown = () => this.abort(ConnectError.from(shutdown.reason, Code.Unavailable), true);
    shutdown.addEventListener("abort", onShutdown, { once: true });
    this.res.once("close", () => {
      shutdown.removeEventListener("abort", onShutdown);
      // The client went away (RST_STREAM, connection lost) before the answer.
      if (!this.done) this.abort(new ConnectError("operation was aborted", Code.Canceled), false);
    });
    this.req.on("data", (chunk: Buffer) => this.onData(chunk));
    this.req.once("end", () => this.onEnd());
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    if (this.received < 5 && this.received + chunk.length >= 5) {
      const head = this.chunks.length === 0 ? chunk : Buffer.concat([...this.chunks, chunk]);
      const length = head.readUInt32BE(1);
      if (length > this.options.readMaxBytes) {
        this.fail(
          new ConnectError(
            `message size ${length} is larger than configured readMaxBytes ${this.options.readMaxBytes}`,
            Code.ResourceExhausted,
          ),
        );
        return;
      }
    }
    this.chunks.push(chunk);
    this.received += chunk.length;
  }

  private onEnd(): void {
    if (this.done) return;
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const decoded = decode(body, this.route.method.input, this.options.binaryOptions);
    if (decoded instanceof ConnectError) {
      this.fail(decoded);
      return;
    }
    this.route.next(this.request(decoded)).then(
      (response) => this.succeed(response),
      (error: unknown) =>
        this.fail(
          error instanceof ConnectError
            ? error
            : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
        ),
    );
  }

  /** The request as interceptors see it; the signal, header and values made on first use. */
  private request(message: UnaryRequest["message"]): UnaryRequest {
    const call = this;
    let header: Headers | undefined;
    let values: ContextValues | undefined;
    return {
      stream: false,
      service: this.options.service,
      method: this.route.method,
      requestMethod: "POST",
      url: this.req.url,
      message,
      get signal() {
        return call.signal();
      },
      get header() {
        header ??= webHeaders(call.req.headers);
        return header;
      },
      get contextValues() {
        values ??= createContextValues();
        return values;
      },
    } as UnaryRequest;
  }

  private signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts the call's signal; `answer`: also answer now with `reason`. */
  private abort(reason: ConnectError, answer: boolean): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    if (answer) this.fail(reason);
    else this.finish();
  }

  private succeed(response: UnaryResponse): void {
    if (this.done) return;
    this.finish();
    let bytes: Uint8Array;
    try {
      bytes = toBinary(this.route.method.output, response.message as never);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.done = false;
      this.fail(new ConnectError(`serialize binary: ${why}`, Code.Internal));
      return;
    }
    const frame = Buffer.allocUnsafe(5 + bytes.length);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    frame.set(bytes, 5);
    const res = this.res;
    res.writeHead(200, RESPONSE_HEADERS);
    res.addTrailers({ "grpc-status": "0" });
    res.end(frame);
  }

  private fail(error: ConnectError): void {
    if (this.done) return;
    this.finish();
    const res = this.res;
    if (res.destroyed || res.writableEnded) return;
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    res.writeHead(200, RESPONSE_HEADERS);
    res.addTrailers(Object.fromEntries(trailer));
    res.end();
    // Stop reading a body we no longer want (Connect does the same).
    this.req.resume();
  }

  private finish(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/**
 * The one request message of a unary call's body, or the error Connect
 * answers for the same bytes (same codes, same messages).
 */
function decode(
  body: Buffer,
  input: DescMessage,
  options: Partial<BinaryReadOptions>,
): UnaryRequest["message"] | ConnectError {
  if (body.length === 0) {
    return new ConnectError(
      "protocol error: missing input message for unary method",
      Code.Unimplemented,
    );
  }
  const length = body.length >= 5 ? body.readUInt32BE(1) : -1;
  if (length < 0 || body.length < 5 + length) {
    return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  }
  if ((body[0] as number) & 1) {
    return new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  let message: UnaryRequest["message"];
  try {
    message = fromBinary(input, body.subarray(5, 5 + length), options);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return new ConnectError(`parse binary: ${why}`, Code.Internal);
  }
  const rest = body.length - 5 - length;
  if (rest === 0) return message;
  // A second envelope: Connect reads it as an extra message, or as an
  // incomplete one.
  return rest >= 5 && rest >= 5 + body.readUInt32BE(5 + length + 1)
    ? new ConnectError(
        "protocol error: received extra input message for unary method",
        Code.Unimplemented,
      )
    : new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}

/** Node's request headers as web Headers, without HTTP/2 pseudo-headers. */
function webHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.append(name, value);
  }
  return out;
}
