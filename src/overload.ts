import { Code, ConnectError } from "@connectrpc/connect";
import { refusedBeforeRunning } from "@runstore/client/internal";
import { RequestAdmission, type RequestRefusal } from "./request-admission.js";
import { retryAfterMs } from "./retry-hint.js";

// Graceful overload: at most MAX_INFLIGHT_CALLS store calls run at once, at
// most MAX_QUEUED_CALLS wait for a place (here and in the callers' shares,
// caller-share.ts), and none waits here longer than QUEUE_TIMEOUT_MS. Past any of
// these the call is refused at once, before it touches the store, with
// UNAVAILABLE and a retry hint (RetryInfo, grpc-retry-pushback-ms): past
// capacity the server keeps serving its peak rate to the calls it admits and
// tells the rest when to come back, instead of queueing until deadlines expire.

/** The bounds of the server's store calls (docs/operations.md, "Overload"). */
export interface OverloadLimits {
  /** Store calls running at once. */
  maxInflightCalls: number;
  /** Store calls waiting for a place, here and in the callers' shares; 0: none waits. */
  maxQueuedCalls: number;
  /** Longest wait of one call for a place here (not for its caller's share), in ms. */
  queueTimeoutMs: number;
  /** RunStoreService requests between arrival and answer (request-admission.ts); 0 or unset: unbounded. */
  maxInflightRequests?: number;
  /** Event loop delay, ms, from which new requests are refused; 0 or unset: off. */
  overloadLagMs?: number;
}

/** Which bound refused a call: the setting's name, as runstore_calls_refused_total labels it. */
export type RefusalReason =
  | "MAX_INFLIGHT_CALLS"
  | "MAX_QUEUED_CALLS"
  | "QUEUE_TIMEOUT_MS"
  | "MYSQL_PROGRESS_BATCH"
  | RequestRefusal;

/** What a waiting call is woken with: the place it waited for, handed over. */
export type Wake = () => void;

/** Weight of the newest call in the mean service time. */
const SERVICE_TIME_WEIGHT = 0.05;

/** The server-wide bounds of store calls, with the counts the metrics read. */
export class Overload {
  private running = 0;
  private waitingCalls = 0;
  private readonly waiting: Wake[] = [];
  private readonly refusals = new Map<RefusalReason, number>();
  /** Mean time a store call holds its place, ms, for the retry hint. */
  private meanServiceMs = 1;

  /** The request-level bounds, before a request is read (request-admission.ts). */
  readonly requests: RequestAdmission;

  constructor(readonly limits: OverloadLimits) {
    this.requests = new RequestAdmission(
      {
        maxInflightRequests: limits.maxInflightRequests ?? 0,
        overloadLagMs: limits.overloadLagMs ?? 0,
      },
      (reason) => this.count(reason),
    );
  }

  /** Store calls running now. */
  get inflight(): number {
    return this.running;
  }

  /** Store calls waiting now, here and in the callers' shares. */
  get queued(): number {
    return this.waitingCalls;
  }

  /** Calls refused since start, by reason. */
  refused(): ReadonlyMap<RefusalReason, number> {
    return this.refusals;
  }

  /**
   * A place to run one store call: at once when one is free and nobody
   * waits (undefined), else after waiting in line, at most QUEUE_TIMEOUT_MS.
   * Rejects with the refusal, or with the call's signal's reason when the
   * call ends first. Give the place back with leave().
   */
  enter(signal: () => AbortSignal): Promise<void> | undefined {
    const { maxInflightCalls, queueTimeoutMs } = this.limits;
    if (this.running < maxInflightCalls && this.waiting.length === 0) {
      this.running++;
      return undefined;
    }
    return this.wait(this.waiting, maxInflightCalls, signal, queueTimeoutMs, "MAX_INFLIGHT_CALLS");
  }

  /** Gives back the place of a call that entered at `enteredAt` (performance.now()). */
  leave(enteredAt: number): void {
    const held = performance.now() - enteredAt;
    this.meanServiceMs += (held - this.meanServiceMs) * SERVICE_TIME_WEIGHT;
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.running--;
  }

  /**
   * Waits in `queue`, served by `places` places, until someone hands a
   * place over by calling the Wake pushed there; counted among the waiting
   * calls. Refused at once when MAX_QUEUED_CALLS calls wait already (named
   * `full` when no call may wait at all), and after `timeoutMs` (null: the
   * call's own deadline only).
   */
  wait(
    queue: Wake[],
    places: number,
    signal: () => AbortSignal,
    timeoutMs: number | null,
    full: RefusalReason = "MAX_QUEUED_CALLS",
  ): Promise<void> {
    const { maxQueuedCalls } = this.limits;
    if (this.waitingCalls >= maxQueuedCalls) {
      const reason = maxQueuedCalls === 0 ? full : "MAX_QUEUED_CALLS";
      return Promise.reject(this.refuse(reason, queue.length, places));
    }
    const callSignal = signal();
    if (callSignal.aborted) return Promise.reject(cutOff(callSignal));
    this.waitingCalls++;
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        this.waitingCalls--;
        if (timer !== undefined) clearTimeout(timer);
        callSignal.removeEventListener("abort", onAbort);
        const index = queue.indexOf(wake);
        if (index !== -1) queue.splice(index, 1);
      };
      const wake: Wake = () => {
        settle();
        resolve();
      };
      const onAbort = () => {
        settle();
        reject(cutOff(callSignal));
      };
      const timer =
        timeoutMs === null
          ? undefined
          : setTimeout(() => {
              settle();
              reject(this.refuse("QUEUE_TIMEOUT_MS", queue.length, places));
            }, timeoutMs);
      queue.push(wake);
      callSignal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The refusal by `reason`, counted, with a hint that grows with the line it found. */
  private refuse(reason: RefusalReason, ahead: number, places: number): ConnectError {
    this.count(reason);
    const hint = this.hintMs(ahead, places);
    return refusedBeforeRunning(
      `server overloaded: ${refusalCause(reason, this.limits)}; retry after ${hint} ms`,
      hint,
    );
  }

  /** Counts a refusal by `reason` (also one made elsewhere: the progress batch's). */
  count(reason: RefusalReason): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  /**
   * When the line should have drained: the calls `ahead` in it (and this
   * one) times the mean service time, over the `places` that serve it; bounded.
   */
  private hintMs(ahead: number, places: number): number {
    const drain = ((ahead + 1) * this.meanServiceMs) / Math.max(1, places);
    return retryAfterMs(drain);
  }
}

/** What the setting `reason` names refused, with its value. */
function refusalCause(reason: RefusalReason, limits: OverloadLimits): string {
  switch (reason) {
    case "MAX_INFLIGHT_CALLS":
      return `MAX_INFLIGHT_CALLS (${limits.maxInflightCalls}) calls already running`;
    case "MAX_QUEUED_CALLS":
      return `MAX_QUEUED_CALLS (${limits.maxQueuedCalls}) calls already waiting`;
    case "QUEUE_TIMEOUT_MS":
      return `waited QUEUE_TIMEOUT_MS (${limits.queueTimeoutMs} ms) for a place`;
    default:
      return reason; // request-admission.ts and the progress batch word their own
  }
}

/** Why a waiting call gave up: the signal's ConnectError (deadline, cancel, shutdown) as it is. */
export function cutOff(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError
    ? signal.reason
    : new ConnectError("call ended while waiting for a place to run", Code.Canceled);
}
