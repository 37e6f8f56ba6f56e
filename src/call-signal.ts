import { AsyncLocalStorage } from "node:async_hooks";
import type { Interceptor } from "@connectrpc/connect";

// The RunStore interface carries no per-call options, yet a call's deadline
// must reach the database so a query is cut off rather than left running.
// The call's AbortSignal (aborted by Connect when the deadline passes or the
// client cancels) travels to the store through async context instead.

const storage = new AsyncLocalStorage<AbortSignal>();

/** The signal of the RPC being served, if any; stores watch it to cut work off. */
export function currentCallSignal(): AbortSignal | undefined {
  return storage.getStore();
}

/** Runs `fn` with `signal` as the current call's signal (for in-process callers). */
export function withCallSignal<T>(signal: AbortSignal, fn: () => T): T {
  return storage.run(signal, fn);
}

/** Makes each RPC's signal the current call signal for everything its handler awaits. */
export const propagateCallSignal: Interceptor = (next) => (req) =>
  storage.run(req.signal, () => next(req));

/**
 * Marks a store that reads currentCallSignal(). The server installs
 * propagateCallSignal only for such stores: AsyncLocalStorage turns on
 * promise hooks, a cost on every call that a store ignoring the signal
 * (MemoryRunStore) should not pay.
 */
export interface FollowsCallSignal {
  readonly followsCallSignal: true;
}

/** Whether `store` reads the call signal. */
export function followsCallSignal(store: object): store is FollowsCallSignal {
  return (store as Partial<FollowsCallSignal>).followsCallSignal === true;
}
