import type * as http2 from "node:http2";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import { Http2SessionManager, type Http2SessionOptions } from "@connectrpc/connect-node";

// A server that requires a client certificate (mutual TLS) refuses a client
// in one of two ways, and Node reports neither as such:
// - no certificate: the server's TLS alert 116 "certificate required" (or,
//   from other servers, "bad certificate", "unknown ca", ...) arrives as an
//   OpenSSL error (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED), which
//   Connect reports as INTERNAL with OpenSSL's text;
// - a certificate it does not trust, over TLS 1.3: the client's side of the
//   handshake is already done when the server checks the certificate, and
//   a Node server then closes the connection without an alert, so the
//   client only sees the connection end: over HTTP/2 before the server's
//   first frame (its SETTINGS), reported as CANCELED (by our gRPC transport
//   as UNAVAILABLE, connection lost); over HTTP/1.1 before
//   any byte of an answer and before the TLS 1.3 session tickets a server
//   sends once it has accepted the client ("socket hang up", ABORTED).
// Both become UNAUTHENTICATED with a message saying so; neither is retried.

/** What the server's TLS alerts say about the client certificate, by Node's error code. */
const CERTIFICATE_ALERTS: Readonly<Record<string, string>> = {
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "bad certificate (TLS alert 42)",
  ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE: "unsupported certificate (TLS alert 43)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED: "certificate revoked (TLS alert 44)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "certificate expired (TLS alert 45)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: "certificate unknown (TLS alert 46)",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA:
    "signed by a CA the server does not trust (TLS alert 48, unknown ca)",
};

/** The message when no certificate was sent to a server that requires one. */
export const CERTIFICATE_REQUIRED_MESSAGE =
  "the server requires a client certificate (mutual TLS) and none was sent (TLS alert 116, certificate required): give tls.cert and tls.key";

/** The UNAUTHENTICATED error for a refused client certificate, `reason` said briefly. */
export function certificateRefused(reason: string, cause?: unknown): ConnectError {
  return new ConnectError(
    `the server requires a client certificate (mutual TLS) and refused this one: ${reason}`,
    Code.Unauthenticated,
    undefined,
    undefined,
    cause,
  );
}

/**
 * UNAUTHENTICATED when `error` (or an error in its cause chain) is a TLS
 * alert about the client certificate; undefined for anything else.
 */
export function certificateAlert(error: unknown): ConnectError | undefined {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") {
      return new ConnectError(
        CERTIFICATE_REQUIRED_MESSAGE,
        Code.Unauthenticated,
        undefined,
        undefined,
        error,
      );
    }
    const reason = typeof code === "string" ? CERTIFICATE_ALERTS[code] : undefined;
    if (reason !== undefined) return certificateRefused(reason, error);
  }
  return undefined;
}

/** The reason given when a server closes a TLS 1.3 connection right after the handshake. */
export const SILENT_REFUSAL_REASON =
  "the server closed the connection right after the TLS handshake without a word, as it does with a certificate it does not trust (another CA, expired, revoked)";

/**
 * The session manager of a RemoteRunStore that presents a client
 * certificate: it counts the HTTP/2 sessions that died before the server
 * sent its SETTINGS, the only trace of a certificate refused in TLS 1.3,
 * so the store can tell that failure from a lost connection.
 */
export class CertificateSessionManager extends Http2SessionManager {
  /** Streams lost with a session the server closed before its first HTTP/2 frame. */
  refusals = 0;

  constructor(
    url: string,
    pingOptions: Http2SessionOptions,
    options: http2.SecureClientSessionOptions,
  ) {
    super(url, pingOptions, options);
  }

  override async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(method, path, headers, options);
    const session = stream.session;
    // Registered before the transport's own listener, so counted before the call fails.
    stream.once("close", () => {
      // A server that accepted the connection acknowledged our SETTINGS.
      if (session?.destroyed && session.encrypted && session.pendingSettingsAck) this.refusals++;
    });
    return stream;
  }
}

/**
 * The HTTP/1.1 agent of a RemoteRunStore that presents a client
 * certificate: it counts the TLS connections that ended right after the
 * handshake, before any byte of an answer and without a session ticket
 * (which a TLS 1.3 server sends once it has accepted the client), the only
 * trace over HTTP/1.1 of a certificate refused in TLS 1.3.
 */
export class CertificateAgent extends https.Agent {
  /** Connections the server closed right after the handshake, as described above. */
  refusals = 0;

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const socket = super.createConnection(options, callback) as TLSSocket | null | undefined;
    // Listening before the HTTP client does, so counted before the call fails.
    if (socket) this.watch(socket);
    return socket;
  }

  private watch(socket: TLSSocket): void {
    let handshake = false;
    let ticket = false;
    let seen = false;
    socket.once("secureConnect", () => {
      handshake = true;
    });
    socket.once("session", () => {
      ticket = true;
    });
    const ended = () => {
      if (seen) return;
      seen = true;
      if (handshake && !ticket && socket.bytesRead === 0) this.refusals++;
    };
    socket.once("end", ended);
    socket.once("close", ended);
  }
}

/**
 * Counts connections lost the way a refused client certificate loses them:
 * a CertificateSessionManager, a CertificateAgent, or the sum of several
 * (a RemoteRunStore with several endpoints).
 */
export type RefusalCounter = { readonly refusals: number };

/**
 * Runs one attempt of a call; a refused client certificate becomes
 * UNAUTHENTICATED (so it is not retried): a TLS alert on any transport, or
 * a connection the server closed right after the handshake while
 * `connections` (an HTTP/2 session manager or an HTTP/1.1 agent presenting
 * a certificate, or a RefusalCounter over several) was connecting. `signal`
 * aborted (the caller or close()) leaves the error as it is.
 */
export async function refusedCertificateAsUnauthenticated<T>(
  connections: CertificateWatch,
  signal: AbortSignal,
  attempt: () => Promise<T>,
): Promise<T> {
  const before = refusalsSoFar(connections);
  try {
    return await attempt();
  } catch (error) {
    throw asRefusedCertificate(error, connections, before, signal);
  }
}

/** What may notice a refused client certificate (see refusedCertificateAsUnauthenticated). */
export type CertificateWatch = Http2SessionManager | https.Agent | RefusalCounter | undefined;

/** The refusals `connections` counted so far, read before an attempt. */
export function refusalsSoFar(connections: CertificateWatch): number {
  return watchedRefusals(connections)?.refusals ?? 0;
}

/**
 * The error an attempt that failed with `error` throws: UNAUTHENTICATED for a
 * refused client certificate (`before`: refusalsSoFar before the attempt),
 * else `error` itself (refusedCertificateAsUnauthenticated, without its own
 * promise per attempt).
 */
export function asRefusedCertificate(
  error: unknown,
  connections: CertificateWatch,
  before: number,
  signal: AbortSignal,
): unknown {
  if (signal.aborted) return error;
  const alert = certificateAlert(error);
  if (alert !== undefined) return alert;
  const watched = watchedRefusals(connections);
  if (watched !== undefined && watched.refusals > before && lostConnection(error)) {
    return certificateRefused(SILENT_REFUSAL_REASON, error);
  }
  return error;
}

function watchedRefusals(connections: CertificateWatch): RefusalCounter | undefined {
  return connections !== undefined && "refusals" in connections ? connections : undefined;
}

/** The codes Connect gives a connection that ended without an answer. */
function lostConnection(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return [Code.Canceled, Code.Aborted, Code.Unavailable, Code.Internal, Code.Unknown].includes(
    code,
  );
}
