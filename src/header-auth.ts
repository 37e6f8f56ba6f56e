import * as http2 from "node:http2";
import { create, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Authenticate, Authentication, AuthFailure } from "./authenticate.js";
import { webHeaders } from "./grpc-framing.js";

/** What the check needs: which service it guards, how, and who hears of refusals. */
export interface HeaderAuthOptions {
  service: DescService;
  authenticate: Authenticate;
  /** Run on a refused call, as on any other, so metrics and call logs see it. */
  interceptors: readonly Interceptor[];
  onRefused: (procedure: string, reason: AuthFailure, peer: string | undefined) => void;
}

/** Answers a refused call, or calls `next` (at once when the check needs no I/O). */
export type HeaderAuth = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  next: () => void,
) => void;

/**
 * Authentication on the request headers, before the body is read, for every
 * protocol (the lean gRPC path and connect-node's). A refused call is
 * answered at once in its protocol's form (gRPC and gRPC-Web: trailers-only
 * UNAUTHENTICATED; Connect: HTTP 401 with the JSON error) and its stream is
 * closed (RST_STREAM CANCEL), so a client that goes on sending is not read and nothing is held
 * for it. The interceptors still see the call, with an empty message, and
 * any earlier refusal of theirs (shutting down) is the answer instead.
 */
export function headerAuth(options: HeaderAuthOptions): HeaderAuth {
  const prefix = `/${options.service.typeName}/`;
  const methods = new Map(
    options.service.methods
      .filter((m): m is DescMethodUnary => m.methodKind === "unary")
      .map((m) => [m.name, m]),
  );
  const refuse = (
    req: http2.Http2ServerRequest,
    res: http2.Http2ServerResponse,
    outcome: Refusal,
  ) => {
    const path = req.url ?? "";
    const name = path.slice(prefix.length).split("?")[0] ?? "";
    options.onRefused(
      `${options.service.typeName}/${name}`,
      outcome.reason,
      req.socket?.remoteAddress,
    );
    const refusal = new ConnectError(outcome.message, Code.Unauthenticated);
    const method = methods.get(name);
    if (method === undefined) {
      answer(req, res, refusal);
      return;
    }
    const next = options.interceptors.reduceRight<(r: UnaryRequest) => Promise<UnaryResponse>>(
      (inner, interceptor) => interceptor(inner as never) as never,
      () => Promise.reject(refusal),
    );
    next(emptyRequest(req, options.service, method)).then(
      () => answer(req, res, refusal),
      (error: unknown) => answer(req, res, ConnectError.from(error)),
    );
  };
  return (req, res, next) => {
    if (!(req.url ?? "").startsWith(prefix)) return next();
    const outcome = options.authenticate(req.headers);
    const decide = (result: Authentication) => (result.ok ? next() : refuse(req, res, result));
    // The body stays unread (and unacknowledged) while an asynchronous check
    // (a JWT's signature) runs; a stream the client closed meanwhile is left.
    if (outcome instanceof Promise) {
      outcome.then(
        (result) => {
          if (!gone(res)) decide(result);
        },
        (error: unknown) =>
          answer(
            req,
            res,
            new ConnectError("authentication failed", Code.Internal, undefined, undefined, error),
          ),
      );
    } else decide(outcome);
  };
}

type Refusal = Extract<Authentication, { ok: false }>;

/** Whether the client closed the call (an HTTP/2 stream, or the HTTP/1.1 response). */
function gone(res: http2.Http2ServerResponse): boolean {
  const stream = res.stream as http2.ServerHttp2Stream | undefined;
  return stream === undefined
    ? (res as { destroyed?: boolean }).destroyed === true
    : stream.destroyed;
}

/** The call as interceptors see it, without reading its body. */
function emptyRequest(
  req: http2.Http2ServerRequest,
  service: DescService,
  method: DescMethodUnary,
): UnaryRequest {
  const h = req.headers;
  return {
    stream: false,
    service,
    method,
    requestMethod: req.method,
    url: `${h[":scheme"] ?? "http"}://${h[":authority"] ?? h.host ?? ""}${req.url}`,
    message: create(method.input),
    signal: new AbortController().signal,
    header: webHeaders(h),
    contextValues: createContextValues(),
  } as UnaryRequest;
}

/** `error` in the request's protocol, then the stream closed to anything more it sends. */
function answer(
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  error: ConnectError,
): void {
  if (gone(res) || res.headersSent) return;
  const type = String(req.headers["content-type"] ?? "");
  let status: number;
  let headers: Record<string, string>;
  let body: Uint8Array | undefined;
  if (/^application\/grpc(-web)?([+;]|$)/.test(type)) {
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    status = 200;
    headers = { "content-type": type, ...Object.fromEntries(trailer) };
  } else {
    status = codeToHttpStatus(error.code);
    headers = { "content-type": "application/json" };
    body = errorToJsonBytes(error, {});
  }
  if (req.httpVersionMajor === 2) {
    const stream = res.stream;
    stream.respond({ ":status": status, ...headers }, { endStream: body === undefined });
    if (body !== undefined) stream.end(body);
    // A client that already sent its whole request needs nothing more. One
    // still sending is told to stop with RST_STREAM(NO_ERROR) after the
    // complete answer (RFC 9113 8.1): gRPC clients read that as the end of a
    // finished call, where CANCEL made grpcio report CANCELLED instead.
    if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    return;
  }
  // HTTP/1.1 cannot skip an unread body: the connection is closed after the answer.
  res.writeHead(status, { ...headers, connection: "close" });
  if (body === undefined) res.end();
  else res.end(body);
}
