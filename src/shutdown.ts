import { setMaxListeners } from "node:events";
import type * as http2 from "node:http2";
import type { Socket } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { HealthMonitor } from "./health.js";
import type { Http2AnyServer } from "./http2-server.js";
import type { Logger } from "./logger.js";
import { OpenSet } from "./open-set.js";
import { withTimeout } from "./with-timeout.js";

/** How long close() waits, past the grace period, for cut-off calls to answer. */
const CUT_OFF_WAIT_MS = 1000;

/**
 * Graceful stop of one server. From the start it tracks what a stop must
 * wait for or close: calls of the guarded service (from request until their
 * response closes, on HTTP/2 and HTTP/1.1 alike), HTTP/2 sessions and
 * sockets, since Node 20's http2 server.close() waits for open sessions and
 * HTTP/1.1 keep-alive sockets for ever. Every wait is on their 'close'
 * events, never a poll.
 */
export class GracefulShutdown {
  private draining = false;
  private readonly calls = new OpenSet<http2.Http2ServerResponse>();
  private readonly sessions = new OpenSet<http2.ServerHttp2Session>();
  private readonly sockets = new OpenSet<Socket>();
  private readonly cutOff = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: Http2AnyServer,
    private readonly health: HealthMonitor,
    private readonly logger: Logger,
    /** The service whose calls are refused while draining and waited for. */
    private readonly guarded: string,
  ) {
    // One listener per call in flight, on both the lean and the Connect path.
    setMaxListeners(0, this.cutOff.signal);
    server.on("session", (session: http2.ServerHttp2Session) => this.sessions.add(session));
    server.on("connection", (socket: Socket) => this.sockets.add(socket));
  }

  /**
   * Aborted when the grace period ends: every handler's signal follows it,
   * so calls still running are cut off (and their SQL killed) rather than
   * holding the process open.
   */
  get signal(): AbortSignal {
    return this.cutOff.signal;
  }

  /** Refuses new calls of the guarded service with UNAVAILABLE once close() has begun. */
  readonly interceptor: Interceptor = (next) => async (req) => {
    if (this.draining && req.service.typeName === this.guarded) {
      throw new ConnectError("server is shutting down", Code.Unavailable);
    }
    return next(req);
  };

  /** Sees every request first: counts the guarded service's calls until their responses close. */
  admit(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    if (req.url?.startsWith(`/${this.guarded}/`)) this.calls.add(res);
    // HTTP/1.1 has no GOAWAY: ask the client to open a new connection.
    if (this.draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
  }

  /**
   * Health goes NOT_SERVING, new calls are refused, every HTTP/2 session
   * gets GOAWAY, in-flight calls finish (for up to `graceMs`), then what is
   * left is cut off and every connection closed. A second call waits for
   * the first.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.stop(graceMs);
    return this.closing;
  }

  private async stop(graceMs: number): Promise<void> {
    this.draining = true;
    this.health.shutdown();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    // GOAWAY: clients start no new streams here; open ones go on.
    for (const session of this.sessions) session.close();
    if (!(await settlesWithin(this.calls.empty(), graceMs))) {
      this.logger.warn({ inFlight: this.calls.size }, "grace period over: cutting off calls");
    }
    // Cut off what is left (calls past the grace period, reflection and
    // health streams): their handlers' signals abort, so SQL is killed too.
    this.cutOff.abort(new ConnectError("server is shutting down", Code.Unavailable));
    await settlesWithin(
      Promise.all([this.calls.empty(), this.sessions.empty()]),
      Math.max(deadline - Date.now(), CUT_OFF_WAIT_MS),
    );
    // Idle HTTP/1.1 keep-alive sockets, and anything still hanging on.
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Whether `promise` settles within `ms`. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(promise, ms).then(
    () => true,
    () => false,
  );
}
