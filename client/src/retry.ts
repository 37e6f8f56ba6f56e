import { Code, ConnectError } from "@connectrpc/connect";
import { isBacklogRefusal } from "./call-gate.js";
import { retryDelayOf } from "./retry-info.js";

// Why retries live in the SDK: a gRPC client's own service-config retry
// policy commits a call once response headers arrive, and a connect-node
// server sends its headers before the error status (in trailers), so those
// retries never fire for the UNAVAILABLE our server answers; Connect-ES has
// no retries of its own.

/** How RemoteRunStore retries UNAVAILABLE; `false` in its options turns retries off. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 4; 1 means no retry. */
  maxAttempts?: number;
  /** Upper bound of the first backoff; each later bound doubles. Default 50. */
  initialBackoffMs?: number;
  /** Cap on the backoff bound. Default 2000. */
  maxBackoffMs?: number;
}

/** A RetryOptions with every default filled in and checked. */
export type RetryPolicy = Readonly<Required<RetryOptions>>;

/** The defaults, exported so callers can derive their own policy from them. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
};

/**
 * The RPCs RemoteRunStore makes once, never retried on a plain UNAVAILABLE
 * (the only code it retries; one with a RetryInfo detail, the server's
 * overload refusal before running, is retried for every RPC, these four
 * included); every other RPC is retried. UNAVAILABLE does not prove
 * the first attempt did nothing, and these four answer a repeat differently
 * from the first attempt: a startRun that applied answers false (the worker
 * would abandon its own run), claimNextRun claims a second run (the first is
 * orphaned until its lease expires), finalizeIfNotCancelled answers
 * finalized false with no cancel action, claimForTakeover answers false (no
 * worker knows it won). The caller reads the row (get) instead. They are the
 * RPCs without an idempotency_level in the proto.
 */
export const SINGLE_ATTEMPT_RPCS: ReadonlySet<string> = new Set([
  "startRun",
  "claimNextRun",
  "finalizeIfNotCancelled",
  "claimForTakeover",
]);

/** Whether RemoteRunStore repeats the RPC `rpc` (camelCase) after a plain UNAVAILABLE. */
export function isIdempotent(rpc: string): boolean {
  return !SINGLE_ATTEMPT_RPCS.has(rpc);
}

/**
 * Fills in defaults and refuses nonsense once, at construction, so a typo
 * does not surface as an endless or instant retry loop in production.
 */
export function retryPolicy(options: RetryOptions | false | undefined): RetryPolicy {
  if (options === false) return { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 };
  const policy = { ...DEFAULT_RETRY_POLICY };
  for (const key of ["maxAttempts", "initialBackoffMs", "maxBackoffMs"] as const) {
    const value = options?.[key];
    if (value === undefined) continue;
    const integer = key === "maxAttempts";
    const min = integer ? 1 : 0;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
      throw new TypeError(`retry.${key} must be a finite number >= ${min}, got ${String(value)}`);
    }
    if (integer && !Number.isInteger(value)) {
      throw new TypeError(`retry.${key} must be an integer, got ${value}`);
    }
    policy[key] = value;
  }
  return policy;
}

/**
 * The sleep before retry number `retry` (1 for the first retry): "full
 * jitter", uniform in [0, min(maxBackoffMs, initialBackoffMs · 2^(retry-1))),
 * so clients that failed together do not come back together.
 */
export function backoffMs(retry: number, policy: RetryPolicy, random = Math.random): number {
  const bound = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (retry - 1));
  return random() * bound;
}

/** The signal and timeout one attempt runs with, as Connect's CallOptions take them. */
export interface AttemptOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * A timeout the wire can carry: gRPC's grpc-timeout takes at most 8 digits
 * of whole milliseconds, so a fractional or huge value would be refused by
 * the server as INVALID_ARGUMENT.
 */
export function wireTimeout(ms: number | undefined): number | undefined {
  if (ms === undefined || ms <= 0) return ms;
  return Math.min(99_999_999, Math.max(1, Math.ceil(ms)));
}

/**
 * Runs `attempt` and repeats it while it fails with UNAVAILABLE, up to
 * `policy.maxAttempts`, sleeping a jittered backoff in between. A call that
 * is not `idempotent` (the RPCs in SINGLE_ATTEMPT_RPCS: their repeat does
 * not answer as the first attempt would) is repeated only after an
 * UNAVAILABLE that carries a google.rpc.RetryInfo detail: the server's
 * overload refusal, sent before the call touched the store. With that
 * detail, every call sleeps max(the jittered backoff, its retry_delay).
 *
 * `call.timeoutMs` is the deadline of the whole call, sleeps included: each
 * attempt gets what is left of it as its own timeout, and when the next
 * sleep would reach the deadline the last UNAVAILABLE is thrown at once
 * (an attempt cut off by the deadline fails with DEADLINE_EXCEEDED). A
 * timeoutMs that is undefined or <= 0 means no deadline, as in Connect.
 * Aborting `call.signal` ends the call at once with CANCELED, mid-sleep too.
 * Any other error is thrown after its one attempt.
 */
export async function withRetry<T>(
  attempt: (options: AttemptOptions) => Promise<T>,
  call: AttemptOptions = {},
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  idempotent = true,
): Promise<T> {
  const { signal, timeoutMs } = call;
  const deadline =
    timeoutMs === undefined || timeoutMs <= 0 ? undefined : performance.now() + timeoutMs;
  let lastError: unknown;
  for (let n = 1; ; n++) {
    // The first attempt gets timeoutMs as given, so a single-attempt call
    // behaves exactly as it would without this wrapper.
    let remaining = timeoutMs;
    if (n > 1 && deadline !== undefined) {
      remaining = Math.floor(deadline - performance.now());
      // Connect reads a timeout <= 0 as "none": never start an attempt without time left.
      if (remaining <= 0) throw lastError;
    }
    try {
      return await attempt({ signal, timeoutMs: wireTimeout(remaining) });
    } catch (error) {
      const hint = retryDelayOf(error);
      if (!isRetryable(error, idempotent, hint) || n >= policy.maxAttempts) throw error;
      lastError = error;
      const delay = Math.max(backoffMs(n, policy), hint ?? 0);
      if (deadline !== undefined && performance.now() + delay + 1 >= deadline) throw error;
      await sleep(delay, signal);
    }
  }
}

/**
 * Only UNAVAILABLE, the one code gRPC documents as "retry with a backoff".
 * A plain one does not prove the server did nothing, so it is retried only
 * for idempotent calls (see SINGLE_ATTEMPT_RPCS for the ones that are not);
 * one with a retry hint (`hint` not null) was refused before running. The
 * client's own refusal of a call that got no place on the wire (too many
 * waiting, or waited too long: call-gate.ts) is not repeated: the repeat
 * would join the same queue.
 */
function isRetryable(error: unknown, idempotent: boolean, hint: number | null): boolean {
  if (!(error instanceof ConnectError) || error.code !== Code.Unavailable) return false;
  if (isBacklogRefusal(error)) return false;
  return idempotent || hint !== null;
}

/** Resolves after `ms`, or rejects with CANCELED as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(canceled(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(canceled(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The error Connect itself throws for an aborted call, so callers see one shape. */
function canceled(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason ?? "the operation was aborted", Code.Canceled);
}
