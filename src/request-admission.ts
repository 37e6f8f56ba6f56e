import type * as http from "node:http";
import type * as http2 from "node:http2";
import { refusedBeforeRunning } from "@runstore/client/internal";
import { LagMonitor } from "./overload-lag.js";
import { type Form, formOf, RefusalResponse } from "./refusal-responses.js";
import { retryAfterMs } from "./retry-hint.js";

// Overload before the handler (docs/operations.md, "Overload"): store calls
// that finish at once (the memory store) never wait in overload.ts's line;
// under overload the wait is in the event loop and in HTTP/2 streams read
// but not yet answered. So each RunStoreService request is admitted or
// refused as it arrives, before its body is read: refused when the event
// loop runs OVERLOAD_LAG_MS or more late, or when MAX_INFLIGHT_REQUESTS
// requests are between arrival and answer already. The refusal is the same
// UNAVAILABLE with a retry hint as a store call's, prebuilt, so refusing
// costs far less than serving. WatchRuns streams (long by design), health,
// reflection and requests in no RPC protocol are neither counted nor refused.

/** The request-level bounds; 0 turns one off. */
export interface RequestLimits {
  /** RunStoreService requests between arrival and answer; 0: unbounded. */
  maxInflightRequests: number;
  /** Event loop delay, ms, from which new requests are refused; 0: not measured. */
  overloadLagMs: number;
}

/** The setting that refused a request. */
export type RequestRefusal = "MAX_INFLIGHT_REQUESTS" | "OVERLOAD_LAG_MS";

/** The hint when only MAX_INFLIGHT_REQUESTS is on. */
const DEFAULT_RETRY_AFTER_MS = 50;

type Request = http2.Http2ServerRequest | http.IncomingMessage;
type Response = http2.Http2ServerResponse | http.ServerResponse;

/** The request-level bounds of one server, with the counts the metrics read. */
export class RequestAdmission {
  /** The event loop's delay (sampled while a server with OVERLOAD_LAG_MS has requests in progress). */
  readonly lag = new LagMonitor(() => this.running > 0);
  private running = 0;
  private readonly lagRefusal: RefusalResponse;
  private readonly inflightRefusal: RefusalResponse;

  /** `count` is told of every refusal. */
  constructor(
    readonly limits: RequestLimits,
    private readonly count: (reason: RequestRefusal) => void,
  ) {
    const { maxInflightRequests, overloadLagMs } = limits;
    const hint = retryAfterMs(overloadLagMs || DEFAULT_RETRY_AFTER_MS);
    this.lagRefusal = refusal(
      `the event loop runs OVERLOAD_LAG_MS (${overloadLagMs} ms) or more late`,
      hint,
    );
    this.inflightRefusal = refusal(
      `MAX_INFLIGHT_REQUESTS (${maxInflightRequests}) requests already in progress`,
      hint,
    );
  }

  /** Requests admitted and not yet answered. */
  get inflight(): number {
    return this.running;
  }

  /**
   * Counts a request of `service` (a path prefix, "/pkg.Service/") other
   * than `excluded` and returns false; or answers it with the refusal and
   * returns true. The count drops when its response closes.
   */
  refuse(req: Request, res: Response, service: string, excluded: string): boolean {
    const url = req.url;
    if (url === undefined || !url.startsWith(service) || url === excluded) return false;
    const { maxInflightRequests, overloadLagMs } = this.limits;
    if (overloadLagMs > 0 && this.lag.lagMs() >= overloadLagMs) {
      return this.answer(req, res, "OVERLOAD_LAG_MS", this.lagRefusal);
    }
    if (maxInflightRequests > 0 && this.running >= maxInflightRequests) {
      return this.answer(req, res, "MAX_INFLIGHT_REQUESTS", this.inflightRefusal);
    }
    this.admit(res);
    return false;
  }

  /**
   * Counts `res` until its answer is written ('finish': the client may send
   * its next request before the stream's 'close') or the stream ends without one.
   */
  private admit(res: Response): void {
    this.running++;
    this.lag.wake();
    let open = true;
    const release = () => {
      if (!open) return;
      open = false;
      this.running--;
    };
    res.once("finish", release);
    res.once("close", release);
  }

  /** Writes `response` in the request's form (false when it has none: served after all). */
  private answer(
    req: Request,
    res: Response,
    reason: RequestRefusal,
    response: RefusalResponse,
  ): boolean {
    const contentType = req.headers["content-type"];
    const form: Form | null = formOf(req.method, contentType);
    if (form === null || (form === "grpc" && req.httpVersionMajor !== 2)) {
      this.admit(res);
      return false;
    }
    this.count(reason);
    response.write(form, contentType, res);
    // The body is not wanted: read and drop it.
    req.resume();
    return true;
  }
}

function refusal(cause: string, retryAfterMs: number): RefusalResponse {
  return new RefusalResponse(
    refusedBeforeRunning(
      `server overloaded: ${cause}; retry after ${retryAfterMs} ms`,
      retryAfterMs,
    ),
  );
}
