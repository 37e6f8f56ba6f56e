import { afterEach, describe, expect, it, vi } from "vitest";
import { TimeoutError, withTimeout } from "./with-timeout.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("withTimeout", () => {
  it("settles as the promise does when it settles first, and clears its timer", async () => {
    vi.useFakeTimers();
    expect(await withTimeout(Promise.resolve(7), 1000)).toBe(7);
    const failure = new Error("boom");
    await expect(withTimeout(Promise.reject(failure), 1000)).rejects.toBe(failure);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects with a TimeoutError once the time runs out", async () => {
    vi.useFakeTimers();
    const never = new Promise<never>(() => {});
    let settled = false;
    const outcome = withTimeout(never, 1000).then(
      () => "resolved",
      (error: unknown) => error,
    );
    outcome.finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe("timed out after 1000 ms");
  });

  it("rejects with the signal's reason when it aborts first, and removes its listener", async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const bounded = withTimeout(new Promise<never>(() => {}), 1000, controller.signal);
    controller.abort(reason);
    await expect(bounded).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects at once for a signal aborted already, and leaves the late rejection handled", async () => {
    const reason = new Error("gone");
    const late = Promise.reject(new Error("late"));
    await expect(withTimeout(late, 1000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
