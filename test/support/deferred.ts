/** A promise and the function that resolves it (Promise.withResolvers before Node 22). */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

/**
 * A promise a test resolves from outside, to wait on an event (a call has
 * entered the store) or to hold one back (release it when the test says so)
 * instead of sleeping.
 */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
