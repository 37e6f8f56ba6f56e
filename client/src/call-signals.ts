/**
 * The signals of a store's calls in flight, so that closing the store ends
 * them all. Each call gets its own AbortController, kept in a Set: adding
 * and removing one costs the same however many calls are in flight. (One
 * listener per call on a store-wide AbortSignal did not: Node's EventTarget
 * walks its listener list on every addEventListener and removeEventListener,
 * so each call cost time in proportion to the calls in flight.)
 */
export class CallSignals {
  private readonly live = new Set<AbortController>();
  private closedReason: unknown = undefined;
  private closed = false;

  /**
   * A signal for one call: it aborts when `call` does (with its reason) or
   * when abortAll runs. Call `end` once the call is over.
   */
  open(call: AbortSignal | undefined): { signal: AbortSignal; end: () => void } {
    const controller = new AbortController();
    if (this.closed) controller.abort(this.closedReason);
    else if (call?.aborted) controller.abort(call.reason);
    const onCall = () => controller.abort(call?.reason);
    call?.addEventListener("abort", onCall, { once: true });
    this.live.add(controller);
    return {
      signal: controller.signal,
      end: () => {
        this.live.delete(controller);
        call?.removeEventListener("abort", onCall);
      },
    };
  }

  /** Aborts every call in flight, and every call opened later, with `reason`. */
  abortAll(reason: unknown): void {
    this.closed = true;
    this.closedReason = reason;
    for (const controller of this.live) controller.abort(reason);
    this.live.clear();
  }

  /** How many calls are in flight. */
  get size(): number {
    return this.live.size;
  }
}
