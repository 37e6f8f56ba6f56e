import { Code, ConnectError } from "@connectrpc/connect";

/**
 * At most `limit` calls of a store on the wire at once; the others wait
 * here, first come first served, no longer than their signal lasts. Why:
 * a server accepts at most SETTINGS_MAX_CONCURRENT_STREAMS streams on one
 * HTTP/2 connection (100 by default on ours), and until its SETTINGS frame
 * arrives a new connection's client assumes no limit. A burst of thousands
 * of calls at a fresh connection (the first one, or the one after a
 * reconnect) then had streams refused, then reset ENHANCE_YOUR_CALM once
 * the server had refused more than it tolerates, and a caller past a few
 * thousand calls a second spent itself retrying them (issue 18). grpc-js and
 * grpcio queue calls in the client the same way.
 *
 * At most `maxQueued` calls wait (Infinity: any number), and each at most
 * `queueTimeoutMs` (0: as long as its signal lasts). Why: a backlog in the
 * client is a queue the server never sees, so it cannot refuse it; past
 * the server's capacity it grew until deadlines expired (the capacity
 * bench: answers 2.3 s late at the median, nothing refused). One call past
 * `maxQueued` fails at once, one that waited `queueTimeoutMs` then, with
 * UNAVAILABLE, never sent; the store's retry policy does not repeat it
 * (isBacklogRefusal): a repeat would join the same queue, and repeating
 * them cut the rate answered and raised its p99 (bench/README.md, "The
 * client's backlog"). The store's default bounds the count, not the time:
 * a burst of calls at once (500 puts from a test, a worker recovering its
 * runs) then waits its turn however slow the server is that day, while a
 * caller past the server's capacity is refused at once past 1,000 waiting.
 */
export class CallGate {
  private open = 0;
  /** Waiting calls in arrival order (a Set: removal on abort costs the same at any length). */
  private readonly waiting = new Set<() => void>();

  constructor(
    readonly limit: number,
    /** How long a call may wait for a place, ms; 0: within its signal only. */
    readonly queueTimeoutMs = 0,
    /** How many calls may wait at once; Infinity: any number. */
    readonly maxQueued = Number.POSITIVE_INFINITY,
  ) {}

  /** Runs `work` once a place is free, and frees it when `work` settles. */
  async run<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    await this.enter(signal);
    try {
      return await work();
    } finally {
      this.leave();
    }
  }

  /**
   * Takes a place: undefined at once when one is free (no promise to wait
   * on), else a promise settled once one is handed over. Call `leave` once
   * the work is over, whatever its outcome.
   */
  enter(signal: AbortSignal | undefined, timeoutMs?: number): Promise<void> | undefined {
    if (this.open < this.limit) {
      this.open++;
      return undefined;
    }
    if (signal?.aborted) return Promise.reject(cutOff(signal));
    if (this.waiting.size >= this.maxQueued) return Promise.reject(this.queueFull());
    return this.place(signal, timeoutMs);
  }

  /** Calls refused (queue full, or no place within queueTimeoutMs) so far (for tests and diagnostics). */
  refused = 0;

  /** Calls waiting for a place (for tests and diagnostics). */
  get queued(): number {
    return this.waiting.size;
  }

  /**
   * Waits for a place, handed over by `leave`; ends sooner with the
   * signal's abort, with DEADLINE_EXCEEDED at the call's `timeoutMs`
   * (undefined or <= 0: none, as in Connect), or refused at queueTimeoutMs,
   * whichever comes first: one timer for the two bounds.
   */
  private place(signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<void> {
    const deadline = timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : 0;
    const bound = this.queueTimeoutMs;
    const refuse = bound > 0 && (deadline === 0 || bound < deadline);
    const ms = refuse ? bound : deadline;
    return new Promise<void>((resolve, reject) => {
      const give = (error: ConnectError) => {
        this.waiting.delete(admit);
        signal?.removeEventListener("abort", onAbort);
        clearTimeout(timer);
        reject(error);
      };
      const onAbort = () => give(cutOff(signal));
      // leave() hands its place over: `open` stays as it is.
      const admit = () => {
        signal?.removeEventListener("abort", onAbort);
        clearTimeout(timer);
        resolve();
      };
      const expire = () => give(refuse ? this.noPlace() : timedOut());
      const timer = ms > 0 ? setTimeout(expire, ms) : undefined;
      this.waiting.add(admit);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The refusal of a call that waited queueTimeoutMs without a place (it is among the waiting). */
  private noPlace(): ConnectError {
    return this.refusal(
      `no place on the wire within ${this.queueTimeoutMs} ms: ${this.open} calls open (maxConcurrentCalls) and ${this.waiting.size} waiting`,
    );
  }

  /** The refusal of a call that found maxQueued calls waiting already. */
  private queueFull(): ConnectError {
    return this.refusal(
      `no place on the wire: ${this.open} calls open (maxConcurrentCalls) and ${this.waiting.size} waiting (maxQueuedCalls)`,
    );
  }

  private refusal(what: string): ConnectError {
    this.refused++;
    const error = new ConnectError(
      `${what}; the server or the connection is saturated`,
      Code.Unavailable,
    );
    backlogRefusals.add(error);
    return error;
  }

  /** Frees the place `enter` took, handing it to the first call waiting. */
  leave(): void {
    const next = this.waiting.values().next();
    if (next.done) {
      this.open--;
      return;
    }
    this.waiting.delete(next.value);
    next.value();
  }
}

const backlogRefusals = new WeakSet<ConnectError>();

/** Whether `error` is a CallGate's refusal of a call that got no place in time (not to be repeated). */
export function isBacklogRefusal(error: unknown): boolean {
  return error instanceof ConnectError && backlogRefusals.has(error);
}

/** A call whose deadline came while it waited, as Connect words its own. */
function timedOut(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}

/** The error of a call whose signal aborted while it waited: its reason when a ConnectError. */
function cutOff(signal: AbortSignal | undefined): ConnectError {
  const reason: unknown = signal?.reason;
  return reason instanceof ConnectError
    ? reason
    : new ConnectError("call cancelled", Code.Canceled);
}
