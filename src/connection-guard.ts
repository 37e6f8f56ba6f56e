import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Http2AnyServer } from "./http2-server.js";
import type { ServerLimits } from "./limits.js";
import { type LogBudgetSettings, logBudget } from "./log-budget.js";
import type { Logger } from "./logger.js";

type Limits = Pick<ServerLimits, "maxConnections" | "firstRequestTimeoutMs" | "idleTimeoutMs">;

/**
 * Connection limits of one server: connections past maxConnections are
 * closed as they arrive; a connection must send a whole request within
 * firstRequestTimeoutMs (a silent socket, a dripped preface, a TLS
 * handshake left hanging) and is closed after idleTimeoutMs with no call
 * open, on HTTP/2 (GOAWAY) and HTTP/1.1 alike. Each closing is one warn
 * line with the peer's address, within a log budget (default 20 a minute,
 * the rest summed up in one line when the minute ends): anyone can open
 * connections as fast as they like.
 */
export function guardConnections(
  server: Http2AnyServer,
  limits: Limits,
  logger: Logger,
  budgetSettings?: LogBudgetSettings,
): void {
  const budget = logBudget(
    logger,
    "connections refused or closed: more than the log's budget, not logged one by one",
    budgetSettings,
  );
  server.once("close", () => budget.stop());
  const warn: Warn = (fields, msg) => {
    if (budget.take()) logger.warn(fields, msg);
  };
  server.maxConnections = limits.maxConnections;
  server.on("drop", (data?: { remoteAddress?: string }) =>
    warn(
      { peer: data?.remoteAddress, maxConnections: limits.maxConnections },
      "connection refused: MAX_CONNECTIONS open already",
    ),
  );
  server.on("session", (session: http2.ServerHttp2Session) =>
    watch(peerOf(session.socket), limits, warn, {
      close: () => session.close(),
      destroy: () => session.destroy(),
      onCall: (begin) => session.on("stream", (stream) => begin(stream)),
      onClose: (listener) => session.once("close", listener),
    }),
  );
  // HTTP/1.1 comes only over TLS (allowHTTP1); HTTP/2 sockets are sessions above.
  const http1 = new WeakMap<Socket, Begin>();
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.alpnProtocol === "h2") return;
    watch(peerOf(socket), limits, warn, {
      close: () => socket.destroy(),
      destroy: () => socket.destroy(),
      onCall: (begin) => http1.set(socket, begin),
      onClose: (listener) => socket.once("close", listener),
    });
  });
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.httpVersionMajor === 1) http1.get(req.socket)?.(res);
  });
}

/** A warn line that goes through the guard's log budget. */
type Warn = (fields: Record<string, unknown>, msg: string) => void;

/** Called with each call's stream or response, which says when it closes. */
type Begin = (call: { once(event: "close", listener: () => void): unknown }) => void;

/** One connection as the guard sees it. */
interface Connection {
  /** Graceful: GOAWAY for HTTP/2. */
  close(): void;
  destroy(): void;
  /** Calls `begin` with each call's stream or response (which says 'close'). */
  onCall(begin: Begin): void;
  onClose(listener: () => void): void;
}

/**
 * The timer of one connection: the first-request deadline until its first
 * call, then the idle timeout whenever no call is open.
 */
function watch(peer: string | undefined, limits: Limits, warn: Warn, connection: Connection): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => {
    warn(
      { peer, ms: limits.firstRequestTimeoutMs },
      "connection closed: no request within FIRST_REQUEST_TIMEOUT_MS",
    );
    connection.destroy();
  }, limits.firstRequestTimeoutMs).unref();
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  let closed = false;
  connection.onClose(() => {
    closed = true;
    stop();
  });
  connection.onCall((call) => {
    open++;
    stop();
    call.once("close", () => {
      open--;
      if (open > 0 || closed) return;
      timer = setTimeout(() => {
        warn({ peer, ms: limits.idleTimeoutMs }, "connection closed: idle for IDLE_TIMEOUT_MS");
        connection.close();
      }, limits.idleTimeoutMs).unref();
    });
  });
}

/** "address:port" of the other end, for log lines. */
function peerOf(socket: Socket | undefined): string | undefined {
  return socket?.remoteAddress === undefined
    ? undefined
    : `${socket.remoteAddress}:${socket.remotePort}`;
}
