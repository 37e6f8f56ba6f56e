// The event loop's delay, as the server sheds by it (OVERLOAD_LAG_MS,
// docs/operations.md "Overload"): a timer due every SAMPLE_MS, and how late
// it ran. Why a timer of our own and not perf_hooks' monitorEventLoopDelay:
// a request arriving right after a long synchronous stretch (or in the
// middle of a slow loop turn) must see that delay before any timer has
// recorded it, and the timer's age tells exactly that (how long it is
// overdue now) with one subtraction; the histogram only knows past turns
// and is read through percentile calls. The cost is 100 small callbacks a
// second, unreferenced so they never keep the process up.

/** How often the timer is due, ms. */
export const LAG_SAMPLE_MS = 10;

/** How late the server's event loop runs, ms, sampled by a timer of its own. */
export class LagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private lastLagMs = 0;

  /** Starts sampling (again); idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    this.lastTick = performance.now();
    this.lastLagMs = 0;
    this.timer = setInterval(() => this.tick(), LAG_SAMPLE_MS);
    this.timer.unref();
  }

  /** Stops sampling; the delay reads 0 until started again. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.lastLagMs = 0;
  }

  /**
   * The loop's delay now, ms: how late the timer last ran, or how long it
   * is overdue now if more (the loop has not come round to it). 0 when stopped.
   */
  lagMs(): number {
    if (this.timer === undefined) return 0;
    const overdue = performance.now() - this.lastTick - LAG_SAMPLE_MS;
    return overdue > this.lastLagMs ? overdue : this.lastLagMs;
  }

  private tick(): void {
    const now = performance.now();
    const late = now - this.lastTick - LAG_SAMPLE_MS;
    this.lastLagMs = late > 0 ? late : 0;
    this.lastTick = now;
  }
}
