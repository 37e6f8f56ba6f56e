import { createHash } from "node:crypto";
import { createContextKey } from "@connectrpc/connect";
import type { Overload, Wake } from "./overload.js";
import { type ReportsPoolStats, reportsPoolStats } from "./pool-stats.js";

// A fair share of the database per caller: each caller may have at most
// `share` store calls open at once; more wait here, before the store is
// called, so a waiting call never holds a pool connection, and one caller's
// slow or blocked queries leave the rest of the pool to everyone else.
// bounded-store.ts takes a call's place here first, then the server's.

/** One caller's open calls and the calls waiting for one of them to end. */
interface Caller {
  open: number;
  readonly waiting: Wake[];
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

/**
 * The per-caller limit of concurrent store calls (docs/operations.md,
 * "Limits"). Its waiting calls count toward the server's MAX_QUEUED_CALLS
 * (overload.ts): past it one more is refused at once. They wait within
 * their deadline, not QUEUE_TIMEOUT_MS: a caller past its share is not an
 * overloaded server, and its line is bounded in length.
 */
export class CallerShare {
  private readonly callers = new Map<string, Caller>();

  constructor(
    readonly share: number,
    private readonly overload: Overload,
  ) {}

  /** Calls of `caller` open now (for tests and diagnostics). */
  openCalls(caller: string): number {
    return this.callers.get(caller)?.open ?? 0;
  }

  /**
   * A place in `key`'s share: at once (undefined) when the caller has one
   * free, else after waiting in the caller's line until the call's `signal`
   * ends it. Give it back with leave().
   */
  enter(key: string, signal: () => AbortSignal): Promise<void> | undefined {
    let caller = this.callers.get(key);
    if (caller === undefined) {
      caller = { open: 0, waiting: [] };
      this.callers.set(key, caller);
    }
    if (caller.open < this.share) {
      caller.open++;
      return undefined;
    }
    // leave() hands its place over: `open` stays as it is.
    return this.overload.wait(caller.waiting, this.share, signal, null);
  }

  /** Gives `key`'s place back, to the first of its waiting calls if any. */
  leave(key: string): void {
    const caller = this.callers.get(key);
    if (caller === undefined) return;
    const next = caller.waiting.shift();
    if (next !== undefined) {
      next();
      return;
    }
    caller.open--;
    if (caller.open === 0 && caller.waiting.length === 0) this.callers.delete(key);
  }
}
