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

describe("CallGate's order: first come first served, newest first once the line stands", () => {
  /** A gate with one place, held; `calls` waiting behind it, each with its outcome. */
  function held(gate: CallGate, calls: number): Array<() => unknown> {
    expect(gate.enter(undefined)).toBeUndefined();
    return Array.from({ length: calls }, () => outcome(gate.enter(undefined)));
  }

  /** Hands `times` places over, one at a time, and lets each handed call see it. */
  async function leave(gate: CallGate, times = 1): Promise<void> {
    for (let i = 0; i < times; i++) gate.leave();
    await vi.advanceTimersByTimeAsync(0);
  }

  it("oldest first until the line has stood lifoAfterMs, newest first from then", async () => {
    const gate = new CallGate(1, 0, Number.POSITIVE_INFINITY, 100);
    const [a, b, c, d] = held(gate, 4);
    await vi.advanceTimersByTimeAsync(99);
    expect(gate.standing()).toBe(false);
    await leave(gate);
    expect([a(), b(), c(), d()]).toEqual(["resolved", "pending", "pending", "pending"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(gate.standing()).toBe(true);
    await leave(gate);
    expect([b(), c(), d()]).toEqual(["pending", "pending", "resolved"]);
    await leave(gate);
    expect([b(), c()]).toEqual(["pending", "resolved"]);
    await leave(gate);
    expect([b(), gate.queued, gate.refused]).toEqual(["resolved", 0, 0]);
  });

  it("a line that emptied starts over: oldest first until it has stood again", async () => {
    const gate = new CallGate(1, 0, Number.POSITIVE_INFINITY, 100);
    const [a] = held(gate, 1);
    await vi.advanceTimersByTimeAsync(100);
    await leave(gate);
    expect([a(), gate.standing()]).toEqual(["resolved", false]);
    const b = outcome(gate.enter(undefined));
    const c = outcome(gate.enter(undefined));
    await leave(gate);
    expect([b(), c()]).toEqual(["resolved", "pending"]);
  });

  it("a full line that stands pushes out its oldest call, refused as the backlog; the newcomer waits", async () => {
    const gate = new CallGate(1, 0, 2, 0);
    const [a, b, c] = held(gate, 3);
    await vi.advanceTimersByTimeAsync(0);
    const error = a() as ConnectError;
    expect([error.code, isBacklogRefusal(error), error.rawMessage]).toEqual([
      Code.Unavailable,
      true,
      "no place on the wire: pushed out by a newer call, 1 calls open (maxConcurrentCalls) and 2 waiting (maxQueuedCalls) for over 0 ms, newest first; the server or the connection is saturated",
    ]);
    expect([b(), c(), gate.queued, gate.refused]).toEqual(["pending", "pending", 2, 1]);
    await leave(gate);
    expect([b(), c()]).toEqual(["pending", "resolved"]);
  });

  it("a full line that does not stand yet refuses the newcomer and keeps its own", async () => {
    const gate = new CallGate(1, 0, 2, 100);
    const [a, b, c] = held(gate, 3);
    await vi.advanceTimersByTimeAsync(0);
    expect(isBacklogRefusal(c())).toBe(true);
    expect([a(), b(), gate.queued, gate.refused]).toEqual(["pending", "pending", 2, 1]);
  });

  it("a burst with nothing sent after it loses no call, whatever the order", async () => {
    const gate = new CallGate(1, 0, 1000, 0);
    const burst = held(gate, 500);
    await leave(gate, 500);
    expect(burst.filter((seen) => seen() === "resolved")).toHaveLength(500);
    expect([gate.queued, gate.refused]).toEqual([0, 0]);
  });

  it("lifoAfterMs Infinity: first come first served however long the line stands", async () => {
    const gate = new CallGate(1, 0, 1, Number.POSITIVE_INFINITY);
    const [a, b] = held(gate, 2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gate.standing()).toBe(false);
    await leave(gate);
    expect([a(), isBacklogRefusal(b())]).toEqual(["resolved", true]);
  });
});
