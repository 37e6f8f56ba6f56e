import * as http2 from "node:http2";
import type { ServerLimits } from "./limits.js";
import type { Logger } from "./logger.js";

type Limits = Pick<ServerLimits, "bodyTimeoutMs" | "sendTimeoutMs">;

/** One open call: its request, its response and when each side began to wait. */
interface Watched {
  req: http2.Http2ServerRequest;
  res: http2.Http2ServerResponse;
  began: number;
  /** When the answer was first seen written but not yet taken by the client. */
  ended: number | undefined;
}

/**
 * The time limits of single calls: a request body that is not complete
 * within bodyTimeoutMs, and an answer the client does not take within
 * sendTimeoutMs (it never opens its receive window), are cancelled
 * (RST_STREAM CANCEL; HTTP/1.1: the connection is closed) so what they hold
 * is released. One sweep every fraction of the shorter limit looks at the
 * calls still open, instead of a timer per call on the hot path.
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
    const entry: Watched = { req, res, began: performance.now(), ended: undefined };
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
      const { req, res } = entry;
      if (!req.complete && now - entry.began > this.limits.bodyTimeoutMs) {
        this.cancel(
          entry,
          "request body not complete within BODY_TIMEOUT_MS",
          this.limits.bodyTimeoutMs,
        );
      } else if (res.writableEnded) {
        entry.ended ??= now;
        if (now - entry.ended > this.limits.sendTimeoutMs) {
          this.cancel(
            entry,
            "answer not taken by the client within SEND_TIMEOUT_MS",
            this.limits.sendTimeoutMs,
          );
        }
      }
    }
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
