/**
 * What the watch hub and its streams report (src/metrics.ts turns it into
 * runstore_watch_* metrics); every method is cheap and never throws.
 */
export interface WatchObserver {
  /** A stream opened (+1) or ended (-1). */
  streams(delta: 1 | -1): void;
  /** A message sent on a stream. */
  message(type: "change" | "heartbeat"): void;
  /** A stream ended by the server: it fell behind the window, or the server shut down. */
  aborted(reason: "behind" | "shutdown"): void;
  /** One read of the store's change log (the hub's tail, or a stream catching up). */
  feedRead(by: "tail" | "catch-up"): void;
}

/** An observer that records nothing (no metrics port). */
export const NO_WATCH_OBSERVER: WatchObserver = {
  streams() {},
  message() {},
  aborted() {},
  feedRead() {},
};
