import type * as http2 from "node:http2";
import {
  type BinaryReadOptions,
  create,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
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
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { type Envelope, EnvelopeReader, parseEnvelope, webHeaders } from "./grpc-framing.js";

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
  /** Each call's first context values, as connect-node's adapter option of that name. */
  contextValues?: (req: http2.Http2ServerRequest) => ContextValues;
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
      // Of Connect's HandlerContext only the signal is given (all that
      // RunStoreServiceImpl reads); it is made only if asked for.
      const context = {
        get signal() {
          return req.signal;
        },
        get values() {
          return req.contextValues;
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

  // One listener for every call, not one each: EventTarget's
  // removeEventListener scans the listeners, so a listener per call cost
  // each call time in proportion to the calls in flight (issue 18).
  const live = new Set<Call>();
  const shutdown = options.shutdownSignal;
  shutdown.addEventListener(
    "abort",
    () => {
      for (const call of live) call.shutDown(shutdown.reason);
    },
    { once: true },
  );

  return (req, res) => {
    if (req.httpVersionMajor !== 2 || req.method !== "POST") return false;
    const route = routes.get(req.url);
    if (route === undefined) return false;
    const headers = req.headers;
    const contentType = headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== CONTENT_TYPE) return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    new Call(req, res, route, options, live).start();
    return true;
  };
}

/** One call, from the request headers to the trailers. */
class Call {
  private done = false;
  private controller: AbortController | undefined;
  private abortReason: ConnectError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly reader: EnvelopeReader;
  private message: UnaryRequest["message"] | undefined;

  constructor(
    private readonly req: http2.Http2ServerRequest,
    private readonly res: http2.Http2ServerResponse,
    private readonly route: Route,
    private readonly options: GrpcUnaryOptions,
    /** The calls the shutdown signal aborts: this one from start until its stream closes. */
    private readonly live: Set<Call>,
  ) {
    this.reader = new EnvelopeReader(options.readMaxBytes);
  }

  /** The end of the shutdown grace period: aborted and answered UNAVAILABLE. */
  shutDown(reason: unknown): void {
    this.abort(ConnectError.from(reason, Code.Unavailable), true);
  }

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
    this.live.add(this);
    this.res.once("close", () => {
      this.live.delete(this);
      // The client went away (RST_STREAM, connection lost) before the answer.
      if (!this.done) this.abort(new ConnectError("operation was aborted", Code.Canceled), false);
    });
    this.req.on("data", (chunk: Buffer) => this.onData(chunk));
    this.req.once("end", () => this.onEnd());
  }

  /**
   * Envelopes are taken as their bytes arrive, in Connect's order of checks:
   * size (on the prefix), compression flag, protobuf, then "one message
   * only". So a body is never held beyond one envelope of readMaxBytes.
   */
  private onData(chunk: Buffer): void {
    if (this.done) return;
    const envelopes = this.reader.push(chunk);
    if (envelopes instanceof ConnectError) {
      this.fail(envelopes);
      return;
    }
    for (const envelope of envelopes) {
      const error = this.accept(envelope);
      if (error !== undefined) {
        this.fail(error);
        return;
      }
    }
  }

  private accept(envelope: Envelope): ConnectError | undefined {
    const message = parseEnvelope(envelope, this.route.method.input, this.options.binaryOptions);
    if (message instanceof ConnectError) return message;
    if (this.message !== undefined) {
      return new ConnectError(
        "protocol error: received extra input message for unary method",
        Code.Unimplemented,
      );
    }
    this.message = message;
    return undefined;
  }

  private onEnd(): void {
    if (this.done) return;
    if (this.reader.pending) {
      this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      return;
    }
    if (this.message === undefined) {
      this.fail(
        new ConnectError(
          "protocol error: missing input message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    this.route.next(this.request(this.message)).then(
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
      get url() {
        const h = call.req.headers;
        return `${h[":scheme"] ?? "http"}://${h[":authority"] ?? ""}${call.req.url}`;
      },
      message,
      get signal() {
        return call.signal();
      },
      get header() {
        header ??= webHeaders(call.req.headers);
        return header;
      },
      get contextValues() {
        values ??= call.options.contextValues?.(call.req) ?? createContextValues();
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
    // What interceptors set on the response goes out too, as with Connect.
    const headers: Record<string, string> = { ...RESPONSE_HEADERS };
    response.header.forEach((value, key) => {
      if (key !== "content-type") headers[key] = value;
    });
    const trailers: Record<string, string> = {};
    response.trailer.forEach((value, key) => {
      trailers[key] = value;
    });
    trailers["grpc-status"] = "0";
    const res = this.res;
    res.writeHead(200, headers);
    res.addTrailers(trailers);
    res.end(encodeEnvelope(0, bytes));
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
