import { Code, type ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CallGate, isBacklogRefusal } from "./call-gate.js";

// The gate's timers on every path (fake timers: no real time passes): one
// per waiting call at most, cleared whichever way the wait ends.

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** What a promise has settled with so far: "pending", "resolved" or the error. */
function outcome(promise: Promise<void> | undefined): () => unknown {
  let seen: unknown = promise === undefined ? "resolved" : "pending";
  promise?.then(
    () => {
      seen = "resolved";
    },
    (error: unknown) => {
      seen = error;
    },
  );
  return () => seen;
}

describe("CallGate", () => {
  it("a place handed over before the bound: the timer is cleared and the call keeps the place", async () => {
    const gate = new CallGate(1, 50);
    expect(gate.enter(undefined)).toBeUndefined();
    const second = outcome(gate.enter(undefined));
    expect(vi.getTimerCount()).toBe(1);
    gate.leave();
    await vi.advanceTimersByTimeAsync(100);
    expect(second()).toBe("resolved");
    expect([vi.getTimerCount(), gate.refused, gate.queued]).toEqual([0, 0, 0]);
  });

  it("an abort while waiting: cleared, CANCELED, nothing refused or left waiting", async () => {
    const gate = new CallGate(1, 50);
    gate.enter(undefined);
    const abort = new AbortController();
    const second = outcome(gate.enter(abort.signal));
    abort.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect((second() as ConnectError).code).toBe(Code.Canceled);
    expect([vi.getTimerCount(), gate.refused, gate.queued]).toEqual([0, 0, 0]);
  });

  it("the call's deadline before the bound: DEADLINE_EXCEEDED at it, not a refusal", async () => {
    const gate = new CallGate(1, 500);
    gate.enter(undefined);
    const second = outcome(gate.enter(undefined, 100));
    await vi.advanceTimersByTimeAsync(99);
    expect(second()).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    const error = second() as ConnectError;
    expect([error.code, error.rawMessage]).toEqual([
      Code.DeadlineExceeded,
      "the operation timed out",
    ]);
    expect(isBacklogRefusal(error)).toBe(false);
    expect([vi.getTimerCount(), gate.refused, gate.queued]).toEqual([0, 0, 0]);
  });

  it("the bound before the deadline: refused at it, a backlog refusal", async () => {
    const gate = new CallGate(1, 50);
    gate.enter(undefined);
    const second = outcome(gate.enter(undefined, 1000));
    await vi.advanceTimersByTimeAsync(50);
    const error = second() as ConnectError;
    expect(error.code).toBe(Code.Unavailable);
    expect(isBacklogRefusal(error)).toBe(true);
    expect([vi.getTimerCount(), gate.refused, gate.queued]).toEqual([0, 1, 0]);
  });

  it("no bound and no deadline: no timer; an aborted call facing a full queue is CANCELED, not refused", async () => {
    const gate = new CallGate(1, 0, 1);
    gate.enter(undefined);
    const second = outcome(gate.enter(undefined));
    expect(vi.getTimerCount()).toBe(0);
    const abort = new AbortController();
    abort.abort();
    const third = outcome(gate.enter(abort.signal));
    await vi.advanceTimersByTimeAsync(0);
    expect((third() as ConnectError).code).toBe(Code.Canceled);
    expect([second(), gate.refused, gate.queued]).toEqual(["pending", 0, 1]);
    gate.leave();
    await vi.advanceTimersByTimeAsync(0);
    expect(second()).toBe("resolved");
  });
});
