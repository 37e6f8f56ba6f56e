import type { RunStore } from "@runstore/client";

// The RunStore interface carries no per-call options, yet a call's deadline
// must reach the database so a query is cut off rather than left running.
// A store that can follow it hands out a view of itself bound to one call's
// AbortSignal (aborted when the deadline passes, the client cancels or the
// server shuts down); the service asks for that view on every call.
//
// Not AsyncLocalStorage: on Node 20 it turns on async_hooks promise hooks,
// and with mysql2's many promises and socket callbacks per statement the
// bench measured that at several hundred microseconds of server CPU per call.

/** A store whose statements can be cut off by a call's signal (MysqlRunStore). */
export interface FollowsCallSignal {
  /** This store, with every statement cut off when `signal` aborts. Cheap: one per call. */
  withCallSignal(signal: AbortSignal): RunStore;
}

/** Whether `store` can follow a call's signal. */
export function followsCallSignal(store: object): store is RunStore & FollowsCallSignal {
  return typeof (store as Partial<FollowsCallSignal>).withCallSignal === "function";
}
