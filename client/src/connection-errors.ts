import { Code, ConnectError } from "@connectrpc/connect";

// What a failed attempt says about the connection it used, read from the
// Node errors in its cause chain (connect-node and our gRPC transport keep
// them as `cause`).

/** The Node errors of `error`'s cause chain, at most 8 deep. */
function chain(error: unknown): { code?: unknown; syscall?: unknown }[] {
  const errors: { code?: unknown; syscall?: unknown }[] = [];
  for (let e: unknown = error; e instanceof Error && errors.length < 8; e = e.cause) {
    errors.push(e as { code?: unknown; syscall?: unknown });
  }
  return errors;
}

/**
 * True when the attempt failed before any connection existed: the TCP
 * connect was refused or could not reach the host, or the name did not
 * resolve. Nothing of the request left this process, so the server cannot
 * have applied it: moving the attempt to another endpoint is safe for every
 * RPC, the single-attempt ones included (gRPC calls this a transparent retry).
 */
export function neverConnected(error: unknown): boolean {
  return chain(error).some(
    (e) =>
      e.syscall === "connect" ||
      e.syscall === "getaddrinfo" ||
      e.code === "ENOTFOUND" ||
      e.code === "EAI_AGAIN",
  );
}

/**
 * True when the server reset the call's stream with REFUSED_STREAM (it does
 * so after GOAWAY, while shutting down): by RFC 9113 §8.7 the stream was
 * closed before any processing, so it is as safe to repeat as a call that
 * never connected. Node reports it as ERR_HTTP2_STREAM_ERROR.
 */
export function refusedStream(error: unknown): boolean {
  return streamResetWith(error, "NGHTTP2_REFUSED_STREAM");
}

/** True when `error` (or a cause of it) is Node's report of a stream reset with `code`. */
function streamResetWith(error: unknown, code: string): boolean {
  return chain(error).some(
    (e) => e.code === "ERR_HTTP2_STREAM_ERROR" && e instanceof Error && e.message.includes(code),
  );
}

/** The UNAVAILABLE of a stream the server refused before processing it (`cause`: Node's error). */
export function streamRefused(cause: unknown): ConnectError {
  return new ConnectError(
    "the server refused the call before processing it (REFUSED_STREAM: it is shutting down)",
    Code.Unavailable,
    undefined,
    undefined,
    cause,
  );
}

/**
 * True when the server reset the call's stream with ENHANCE_YOUR_CALM. A
 * Node server (ours) does so only to a stream it could not take on (over
 * its concurrent-stream or session-memory limit), before any handler ran:
 * a refusal under load, so UNAVAILABLE (streamCalmed), as REFUSED_STREAM is.
 * Not proof for every server that nothing ran, so unlike refusedStream it
 * is repeated only as a plain UNAVAILABLE is (idempotent calls). Node
 * reports it as ERR_HTTP2_STREAM_ERROR.
 */
export function calmedStream(error: unknown): boolean {
  return streamResetWith(error, "NGHTTP2_ENHANCE_YOUR_CALM");
}

/** The UNAVAILABLE of a stream the server reset with ENHANCE_YOUR_CALM (`cause`: Node's error). */
export function streamCalmed(cause: unknown): ConnectError {
  return new ConnectError(
    "the server refused the call under load (http/2 stream reset ENHANCE_YOUR_CALM)",
    Code.Unavailable,
    undefined,
    undefined,
    cause,
  );
}

/** The Node error codes of a connection that broke under a call. */
const BROKEN = new Set([
  "ECONNRESET",
  "EPIPE",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
]);

/**
 * True when the connection broke under the attempt (reset, or closed by a
 * server that died) before the answer came. The request may have been
 * applied: as gRPC says for "some data transmitted before the connection
 * broke", this is UNAVAILABLE, retried only by idempotent calls.
 */
export function brokenConnection(error: unknown): boolean {
  return chain(error).some((e) => typeof e.code === "string" && BROKEN.has(e.code));
}

/**
 * The UNAVAILABLE a call gets when its connection was lost before the
 * answer (Node reports it as ECONNRESET, or as the stream cancelled when
 * the server closed the connection): `cause` is what Node said.
 */
export function connectionLost(cause: unknown): ConnectError {
  const said =
    cause instanceof ConnectError
      ? cause.rawMessage
      : cause instanceof Error
        ? cause.message
        : String(cause);
  return new ConnectError(
    `connection lost before the answer (${said})`,
    Code.Unavailable,
    undefined,
    undefined,
    cause,
  );
}
