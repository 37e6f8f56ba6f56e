/** What withTimeout rejects with when the time runs out first. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/**
 * Waits for `promise`, but at most `ms`, and no longer than `signal` stays
 * unaborted: it then rejects with a TimeoutError or the signal's reason.
 * Whatever `promise` is doing goes on; the caller decides what to do with it
 * (a late connection is released, a stuck one destroyed). The timer never
 * holds the process open and is cleared as soon as the race is decided.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      promise.catch(() => {});
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      reject(new TimeoutError(`timed out after ${ms} ms`));
    }, ms).unref();
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
