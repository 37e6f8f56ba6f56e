import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

/** UNAVAILABLE as the server answers it while its database is down. */
export const unavailable = () => new ConnectError("database unavailable", Code.Unavailable);

/** How the failing calls of a FlakyStore method fail. */
export interface Failure {
  /** What they throw; default `unavailable()`. */
  error?: () => unknown;
  /** Throw after doing the work (its answer is lost) rather than before (nothing applied). */
  afterWork?: boolean;
}

/**
 * A real MemoryRunStore whose `methods` can be told to fail, counting every
 * call, so a test behind a real server sees exactly how many attempts
 * reached it.
 */
export class FlakyStore<M extends keyof RunStore> extends MemoryRunStore {
  private readonly counts = new Map<M, number>();
  private readonly failures = new Map<M, Failure & { left: number }>();

  constructor(methods: readonly M[]) {
    super();
    for (const name of methods) {
      const original = MemoryRunStore.prototype[name] as (...args: unknown[]) => Promise<unknown>;
      Object.defineProperty(this, name, {
        value: async (...args: unknown[]) => {
          this.counts.set(name, this.calls(name) + 1);
          const failure = this.failures.get(name);
          if (failure === undefined || failure.left <= 0) return original.apply(this, args);
          failure.left--;
          if (failure.afterWork) await original.apply(this, args);
          throw (failure.error ?? unavailable)();
        },
      });
    }
  }

  /** Makes the next `times` calls of `method` fail (Infinity: every call). */
  fail(method: M, times: number, failure: Failure = {}): void {
    this.failures.set(method, { ...failure, left: times });
  }

  /** Calls of `method` so far, failed ones included. */
  calls(method: M): number {
    return this.counts.get(method) ?? 0;
  }
}
