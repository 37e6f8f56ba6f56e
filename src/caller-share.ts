import { createHash } from "node:crypto";
import { createContextKey } from "@connectrpc/connect";
import { Code, ConnectError, type RunStore } from "@runstore/client";
import { type ReportsPoolStats, reportsPoolStats } from "./pool-stats.js";

// A fair share of the database per caller: each caller may have at most
// `share` store calls open at once; more wait here, before the store is
// called, so a waiting call never holds a pool connection, and one caller's
// slow or blocked queries leave the rest of the pool to everyone else.

/** One caller's open calls and the calls waiting for one of them to end. */
interface Caller {
  open: number;
  readonly waiting: (() => void)[];
}

/**
 * The caller of a call, whose share it takes: set for each call by
 * src/call-context.ts (tokenCaller or peerCaller); null (no share) for a
 * service mounted without it.
 */
export const callerKey = createContextKey<string | null>(null, {
  description: "runstore caller share key",
});

/**
 * The caller a bearer token stands for: each distinct token (static or JWT)
 * is a caller of its own, whatever principal it grants. A digest, so the
 * token itself is never kept or logged.
 */
export function tokenCaller(token: string): string {
  return `token:${createHash("sha256").update(token).digest("base64url")}`;
}

/** The caller of an unauthenticated call: its remote address (every connection from it). */
export function peerCaller(address: string | undefined): string {
  return `peer:${address ?? "unknown"}`;
}

/** DB_CALLER_SHARE's default for a store with a pool: half of it, at least 1; null without a pool. */
export function defaultShare(store: object): number | null {
  return reportsPoolStats(store) ? Math.max(1, Math.floor(poolSize(store) / 2)) : null;
}

function poolSize(store: ReportsPoolStats): number {
  const size = store.poolStats().size;
  return Number.isFinite(size) && size > 0 ? size : 2;
}

/** The per-caller limit of concurrent store calls (docs/operations.md, "Limits"). */
export class CallerShare {
  private readonly callers = new Map<string, Caller>();

  constructor(readonly share: number) {}

  /**
   * `store` as seen by one call of `caller`: every method waits for a place
   * in the caller's share (no longer than `signal` lasts), then calls the
   * store, and gives the place back when the store answers.
   */
  storeFor(store: RunStore, caller: string, signal: AbortSignal): RunStore {
    return new Proxy(store, {
      get: (target, name, receiver) => {
        const value: unknown = Reflect.get(target, name, receiver);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          await this.enter(caller, signal);
          try {
            return await value.apply(target, args);
          } finally {
            this.leave(caller);
          }
        };
      },
    });
  }

  /** Calls of `caller` open now (for tests and diagnostics). */
  openCalls(caller: string): number {
    return this.callers.get(caller)?.open ?? 0;
  }

  private enter(key: string, signal: AbortSignal): Promise<void> | undefined {
    let caller = this.callers.get(key);
    if (caller === undefined) {
      caller = { open: 0, waiting: [] };
      this.callers.set(key, caller);
    }
    if (caller.open < this.share) {
      caller.open++;
      return undefined;
    }
    if (signal.aborted) return Promise.reject(cutOff(signal));
    const queue = caller.waiting;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        queue.splice(queue.indexOf(admit), 1);
        reject(cutOff(signal));
      };
      // leave() hands its place over: `open` stays as it is.
      const admit = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      queue.push(admit);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private leave(key: string): void {
    const caller = this.callers.get(key);
    if (caller === undefined) return;
    const next = caller.waiting.shift();
    if (next !== undefined) {
      next();
      return;
    }
    caller.open--;
    if (caller.open === 0) this.callers.delete(key);
  }
}

/** Why a waiting call gave up: the signal's ConnectError (deadline, cancel, shutdown) as it is. */
function cutOff(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError
    ? signal.reason
    : new ConnectError(
        "call ended while waiting for its caller's share of the store",
        Code.Canceled,
      );
}
