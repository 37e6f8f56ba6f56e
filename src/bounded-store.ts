import type { RunStore } from "@runstore/client";
import type { CallerShare } from "./caller-share.js";
import type { Overload } from "./overload.js";
import { isProgressBatchRefusal } from "./stores/mysql-progress-batch.js";

// Where a store call waits before it runs: first for a place in its caller's
// share (caller-share.ts), then for one of the server's (overload.ts), both
// lines bounded in length, the server's in time too. A call refused there
// never reached the store, so it changed nothing.
//
// Except progress writes a MySQL store groups (mysql-progress-batch.ts): such
// a call holds no pool connection while it waits for its batch (at most two
// statements of progress run at once, whoever the callers), so it takes
// neither a caller's place nor the server's. Counted as store calls, a
// thousand runs' snapshots a second filled the caller share and
// MAX_QUEUED_CALLS while the pool had room: 25,570 refusals in one 20 s
// capacity step at 800 runs (issue 18). The batch bounds its own line
// (MYSQL_PROGRESS_BATCH) and its refusals are counted here.

/** The call a store is bounded for: its signal, read only when the call must wait. */
export interface BoundedCall {
  readonly signal: AbortSignal;
}

/** The caller whose share a call takes (its token or address, call-context.ts). */
export interface SharedBy {
  readonly share: CallerShare;
  readonly caller: string;
}

/**
 * `store` as one call sees it: every method takes its places (the caller's,
 * when `shared`, then the server's), calls the store, and gives them back
 * when the store answers.
 */
export function boundedStore(
  store: RunStore,
  overload: Overload,
  call: BoundedCall,
  shared: SharedBy | null,
): RunStore {
  const signal = () => call.signal;
  // The proxy's own target is an empty object: a store's methods may be
  // non-configurable own properties, which a proxy of the store itself
  // would have to answer unwrapped.
  return new Proxy({} as RunStore, {
    get: (_, name) => {
      const value: unknown = Reflect.get(store, name);
      if (typeof value !== "function") return value;
      if (name === "updateRunProgress" && Reflect.get(store, "batchesProgress") === true) {
        return (...args: unknown[]) => countBatchRefusal(overload, value.apply(store, args));
      }
      return async (...args: unknown[]) => {
        if (shared !== null) await shared.share.enter(shared.caller, signal);
        try {
          return await runWithin(overload, signal, () => value.apply(store, args));
        } finally {
          shared?.share.leave(shared.caller);
        }
      };
    },
    has: (_, name) => Reflect.has(store, name),
    getPrototypeOf: () => Reflect.getPrototypeOf(store),
  });
}

/** `work` once `overload` gives it a place, the place given back when it settles. */
async function runWithin<T>(
  overload: Overload,
  signal: () => AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  await overload.enter(signal);
  const enteredAt = performance.now();
  try {
    return await work();
  } finally {
    overload.leave(enteredAt);
  }
}

/** `write`, with a refusal of the progress batch counted as the server's (runstore_calls_refused_total). */
async function countBatchRefusal<T>(overload: Overload, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (isProgressBatchRefusal(error)) overload.count("MYSQL_PROGRESS_BATCH");
    throw error;
  }
}
