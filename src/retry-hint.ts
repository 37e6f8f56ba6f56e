// The retry hint a refusal carries (RetryInfo, grpc-retry-pushback-ms), in
// one place for every bound that refuses: the store calls' (overload.ts),
// the requests' (request-admission.ts) and the progress batch's
// (stores/mysql-progress-batch.ts).

/** Never a busy loop: the shortest hint, ms. */
export const MIN_RETRY_AFTER_MS = 10;
/** Never longer than a client's longest backoff: the longest hint, ms. */
export const MAX_RETRY_AFTER_MS = 2000;

/** `ms` as a hint: rounded and held within the bounds above. */
export function retryAfterMs(ms: number): number {
  return Math.round(Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, ms)));
}
