import { ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** Awaits a call that must fail and returns its error as a ConnectError (code, rawMessage). */
export async function failureOf(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "the call should fail").toBeDefined();
  return ConnectError.from(error);
}

/** Runs `fn`, which must throw, and returns its error as a ConnectError. */
export function thrownBy(fn: () => unknown): ConnectError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, "the call should throw").toBeDefined();
  return ConnectError.from(error);
}
