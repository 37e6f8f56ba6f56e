import * as http2 from "node:http2";
import type { ServerLimits } from "./limits.js";
import type { Logger } from "./logger.js";

type Limits = Pick<ServerLimits, "bodyTimeoutMs" | "sendTimeoutMs">;

/** One open call: its request, its response and when bytes last moved each way. */
interface Watched {
  req: http2.Http2ServerRequest;
  res: http2.Http2ServerResponse;
  /** When the last request body bytes arrived (or the call began). */
  received: number;
  /** Body bytes at the last progress (HTTP/2: this stream's; HTTP/1.1: the socket's). */
  bytesIn: number;
  /** When the answer's buffered bytes last changed after it was ended; undefined before. */
  sent: number | undefined;
  /** The answer's bytes still buffered at the last sweep. */
  pending: number;
}

/**
 * The stall limits of single calls: a request body that makes no progress
 * for bodyTimeoutMs (no bytes arrive), and an ended answer the client takes
 * none of for sendTimeoutMs (it does not open its receive window), are
 * cancelled (RST_STREAM CANCEL; HTTP/1.1: the connection is closed) so what
 * they hold is released. Both count from the last bytes that moved, not
 * from the start: a slow but steady client is never cut. One sweep every
 * fraction of the shorter limit looks at the calls still open, instead of a
 * timer per call on the hot path.
 */
export class StreamDeadlines {
  private readonly open = new Set<Watched>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: Limits,
    private readonly logger: Logger,
  ) {
    const tick = Math.min(
      1000,
      Math.max(20, Math.min(limits.bodyTimeoutMs, limits.sendTimeoutMs) / 4),
    );
    this.sweeper = setInterval(() => this.sweep(), tick).unref();
  }

  /** Watches one call until its response closes. */
  watch(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    const entry: Watched = {
      req,
      res,
      received: performance.now(),
      bytesIn: 0,
      sent: undefined,
      pending: 0,
    };
    this.open.add(entry);
    res.once("close", () => this.open.delete(entry));
  }

  /** Stops the sweep (the server has closed). */
  stop(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = performance.now();
    for (const entry of this.open) {
      const stalled = this.stalled(entry, now);
      if (stalled !== undefined) this.cancel(entry, stalled.why, stalled.ms);
    }
  }

  /** Which limit a call has stalled past, if any; notes the progress it made. */
  private stalled(entry: Watched, now: number): { why: string; ms: number } | undefined {
    const { req, res } = entry;
    if (!req.complete) {
      // The connection's bytes read: a listener on the stream itself would
      // put it into flowing mode and lose a body the handler reads later (after
      // an asynchronous authentication). Progress on the connection counts as
      // progress here, so a multiplexed body is never cut while bytes move.
      const bytesIn = req.socket?.bytesRead ?? 0;
      if (bytesIn !== entry.bytesIn) {
        entry.bytesIn = bytesIn;
        entry.received = now;
      } else if (now - entry.received > this.limits.bodyTimeoutMs) {
        return {
          why: "request body made no progress within BODY_TIMEOUT_MS",
          ms: this.limits.bodyTimeoutMs,
        };
      }
    } else if (res.writableEnded) {
      const pending = pendingBytes(req, res);
      if (entry.sent === undefined || pending !== entry.pending) {
        entry.sent = now;
        entry.pending = pending;
      } else if (now - entry.sent > this.limits.sendTimeoutMs) {
        return {
          why: "answer not taken by the client within SEND_TIMEOUT_MS",
          ms: this.limits.sendTimeoutMs,
        };
      }
    }
    return undefined;
  }

  private cancel(entry: Watched, why: string, ms: number): void {
    this.open.delete(entry);
    const { req, res } = entry;
    this.logger.warn(
      { peer: req.socket?.remoteAddress, path: req.url, ms },
      `call cancelled: ${why}`,
    );
    if (req.httpVersionMajor === 2) res.stream.close(http2.constants.NGHTTP2_CANCEL);
    else req.socket?.destroy();
  }
}

/** The answer's bytes written but not yet sent: they shrink as the client takes them. */
function pendingBytes(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): number {
  if (req.httpVersionMajor === 2) return res.stream.bufferSize;
  return req.socket?.writableLength ?? 0;
}
