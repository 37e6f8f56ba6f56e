import type { Http2SecureServer } from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { LOG_LINES_PER_WINDOW, LOG_WINDOW_MS, logBudget } from "./log-budget.js";
import type { Logger } from "./logger.js";

/** Warn lines per window; past that, refusals are counted and summed up once the window ends. */
export const REFUSAL_LINES_PER_WINDOW = LOG_LINES_PER_WINDOW;
/** The window of that budget. */
export const REFUSAL_WINDOW_MS = LOG_WINDOW_MS;

/**
 * Logs failed TLS handshakes of a server: a refused client certificate
 * (mutual TLS) is one warn line with the peer and the reason, at most
 * REFUSAL_LINES_PER_WINDOW a minute (anyone who can reach the port can
 * make refusals as fast as handshakes, so a flood must not fill the log);
 * refusals past that are counted and reported in one warn line when the
 * window ends. Any other failed handshake (a port scan, a client that
 * does not trust the server) stays a debug line.
 */
export function logTlsRefusals(server: Http2SecureServer, logger: Logger): void {
  // A refused socket is destroyed before 'tlsClientError', taking its
  // address with it; the TCP socket under it is seen first.
  const peers = new WeakMap<Socket, string>();
  server.on("connection", (socket: Socket) => {
    peers.set(socket, `${socket.remoteAddress}:${socket.remotePort}`);
  });
  const budget = logBudget(
    logger,
    "TLS client certificate refused: more refusals than the log's budget, not logged one by one",
  );
  server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    const reason = refusalReason(error, socket);
    const parent = (socket as unknown as { _parent?: Socket })._parent;
    const peer =
      (parent && peers.get(parent)) ??
      (socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined);
    if (reason === undefined) logger.debug({ peer, err: error.message }, "TLS handshake failed");
    else if (budget.take()) logger.warn({ peer, reason }, "TLS client certificate refused");
  });
  server.on("close", () => budget.stop());
}

/** Why a handshake was a mutual-TLS refusal, or undefined when it was not one. */
function refusalReason(error: Error, socket: TLSSocket): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return "no client certificate";
  // Node checks the certificate after OpenSSL's handshake and closes the
  // socket itself, leaving OpenSSL's verdict here (TLS 1.3 sends no alert).
  if (socket.authorizationError) {
    return `client certificate not trusted (${String(socket.authorizationError)})`;
  }
  return undefined;
}
