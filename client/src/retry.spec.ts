import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type AttemptOptions,
  backoffMs,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  retryPolicy,
  withRetry,
} from "./retry.js";

// Pure parts of the retry policy. withRetry runs under fake timers (which
// also drive performance.now), so its sleeps take no real time and their
// lengths are read off the fake clock.

const unavailable = () => new ConnectError("database unavailable", Code.Unavailable);

describe("retryPolicy", () => {
  it("fills in the defaults: 4 attempts, 50 ms doubling up to 2000 ms", () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({
      maxAttempts: 4,
      initialBackoffMs: 50,
      maxBackoffMs: 2000,
    });
    expect(retryPolicy(undefined)).toEqual(DEFAULT_RETRY_POLICY);
    expect(retryPolicy({})).toEqual(DEFAULT_RETRY_POLICY);
    expect(retryPolicy({ maxAttempts: 7 })).toEqual({ ...DEFAULT_RETRY_POLICY, maxAttempts: 7 });
  });

  it("false is a single attempt", () => {
    expect(retryPolicy(false)).toEqual({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 });
  });

  it("accepts zero backoffs and one attempt", () => {
    expect(retryPolicy({ maxAttempts: 1, initialBackoffMs: 0, maxBackoffMs: 0 })).toEqual({
      maxAttempts: 1,
      initialBackoffMs: 0,
      maxBackoffMs: 0,
    });
  });

  it.each([
    [{ maxAttempts: 0 }, "retry.maxAttempts must be a finite number >= 1, got 0"],
    [{ maxAttempts: 1.5 }, "retry.maxAttempts must be an integer, got 1.5"],
    [{ maxAttempts: Number.NaN }, "retry.maxAttempts must be a finite number >= 1, got NaN"],
    [
      { maxAttempts: Number.POSITIVE_INFINITY },
      "retry.maxAttempts must be a finite number >= 1, got Infinity",
    ],
    [{ initialBackoffMs: -1 }, "retry.initialBackoffMs must be a finite number >= 0, got -1"],
    [
      { maxBackoffMs: "9" as unknown as number },
      "retry.maxBackoffMs must be a finite number >= 0, got 9",
    ],
  ])("refuses %o", (options, message) => {
    expect(() => retryPolicy(options)).toThrow(new TypeError(message));
  });
});

describe("backoffMs", () => {
  const policy: RetryPolicy = { maxAttempts: 10, initialBackoffMs: 50, maxBackoffMs: 2000 };

  it("is uniform below a bound that doubles per retry up to maxBackoffMs", () => {
    // random() = 0.5 gives half the bound, exactly.
    const half = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((retry) => backoffMs(retry, policy, half))).toEqual([
      25, 50, 100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it("spans [0, bound): 0 at the bottom, just under the bound at the top", () => {
    expect(backoffMs(3, policy, () => 0)).toBe(0);
    const top = 1 - Number.EPSILON;
    expect(backoffMs(3, policy, () => top)).toBeLessThan(200);
    expect(backoffMs(3, policy, () => top)).toBeCloseTo(200, 10);
    expect(backoffMs(30, policy, () => top)).toBeLessThan(2000);
  });

  it("uses Math.random when none is given", () => {
    const random = vi.spyOn(Math, "random").mockReturnValue(0.25);
    try {
      expect(backoffMs(2, policy)).toBe(25);
    } finally {
      random.mockRestore();
    }
  });
});

describe("withRetry", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  /** An attempt that fails with the given errors in turn, then answers "ok"; it logs each start. */
  function scripted(...errors: unknown[]) {
    const starts: { at: number; options: AttemptOptions }[] = [];
    const began = performance.now();
    const attempt = async (options: AttemptOptions) => {
      starts.push({ at: performance.now() - began, options });
      const error = errors.shift();
      if (error !== undefined) throw error;
      return "ok";
    };
    return { attempt, starts };
  }

  /** Runs withRetry to the end with the fake clock, answering its result or error. */
  async function settle<T>(call: Promise<T>): Promise<{ value?: T; error?: unknown }> {
    const outcome = call.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await vi.runAllTimersAsync();
    return outcome;
  }

  it("answers the first attempt's result without a sleep", async () => {
    const { attempt, starts } = scripted();
    expect(await settle(withRetry(attempt))).toEqual({ value: "ok" });
    expect(starts.map((s) => s.at)).toEqual([0]);
  });

  it("retries UNAVAILABLE after jittered backoffs (50 ms bound, doubling)", async () => {
    const { attempt, starts } = scripted(unavailable(), unavailable());
    expect(await settle(withRetry(attempt))).toEqual({ value: "ok" });
    // random() = 0.5: sleeps of 25 ms, then 50 ms.
    expect(starts.map((s) => s.at)).toEqual([0, 25, 75]);
  });

  it("stops at maxAttempts and throws the last UNAVAILABLE", async () => {
    const errors = [unavailable(), unavailable(), unavailable(), unavailable(), unavailable()];
    const last = errors[3];
    const { attempt, starts } = scripted(...errors);
    const { error } = await settle(withRetry(attempt));
    expect(starts).toHaveLength(DEFAULT_RETRY_POLICY.maxAttempts);
    expect(error).toBe(last);
  });

  it.each([
    [
      "INVALID_ARGUMENT",
      new ConnectError("run_id must be 1 to 64 characters", Code.InvalidArgument),
    ],
    [
      "ABORTED (a caller's decision, see isTransientError)",
      new ConnectError("conflict", Code.Aborted),
    ],
    ["DEADLINE_EXCEEDED", new ConnectError("deadline", Code.DeadlineExceeded)],
    ["a plain Error", new Error("boom")],
  ])("does not retry %s", async (_, failure) => {
    const { attempt, starts } = scripted(failure);
    expect(await settle(withRetry(attempt))).toEqual({ error: failure });
    expect(starts).toHaveLength(1);
  });

  it("gives each later attempt what is left of the deadline", async () => {
    const { attempt, starts } = scripted(unavailable(), unavailable());
    expect(await settle(withRetry(attempt, { timeoutMs: 1000 }))).toEqual({ value: "ok" });
    expect(starts.map((s) => s.options.timeoutMs)).toEqual([1000, 975, 925]);
  });

  it("throws the UNAVAILABLE at once when the next sleep would reach the deadline", async () => {
    const policy = { maxAttempts: 10, initialBackoffMs: 400, maxBackoffMs: 400 };
    const second = unavailable();
    const { attempt, starts } = scripted(unavailable(), second, unavailable());
    // Sleeps of 200 ms: the second ends at 200, a third sleep would end at 400 >= 300.
    const call = withRetry(attempt, { timeoutMs: 300 }, policy);
    const { error } = await settle(call);
    expect(starts.map((s) => s.at)).toEqual([0, 200]);
    expect(error).toBe(second);
  });

  it("an abort during the sleep ends the call with CANCELED, no further attempt", async () => {
    const controller = new AbortController();
    const { attempt, starts } = scripted(unavailable());
    const call = withRetry(attempt, { signal: controller.signal }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10); // inside the 25 ms sleep
    expect(starts).toHaveLength(1);
    controller.abort();
    const error = await call;
    expect(ConnectError.from(error).code).toBe(Code.Canceled);
    expect(starts).toHaveLength(1);
  });

  it("a signal aborted before the sleep ends the call with CANCELED", async () => {
    const controller = new AbortController();
    const attempt = async () => {
      controller.abort();
      throw unavailable();
    };
    const { error } = await settle(withRetry(attempt, { signal: controller.signal }));
    expect(ConnectError.from(error).code).toBe(Code.Canceled);
  });
});
