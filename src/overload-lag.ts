// The event loop's delay, as the server sheds by it (OVERLOAD_LAG_MS,
// docs/operations.md "Overload"): a timer due every SAMPLE_MS, and how late
// it ran. Why a timer of our own and not perf_hooks' monitorEventLoopDelay:
// a request arriving right after a long synchronous stretch (or in the
// middle of a slow loop turn) must see that delay before any timer has
// recorded it, and the timer's age tells exactly that (how long it is
// overdue now) with one subtraction; the histogram only knows past turns
// and is read through percentile calls.
//
// The timer runs only while requests are in progress: shedding is for a
// server busy with requests, and 100 wake-ups a second cost an idle server
// 12 ms of CPU a second (1.2 % of a core; 0.2 ms per call at 50 calls/s,
// issue 18). The first request after a quiet spell wakes it and is admitted
// (the loop had nothing to do); requests read in the same loop turn after it
// see the turn's length as the timer's overdue time.

/** How often the timer is due while sampling, ms. */
export const LAG_SAMPLE_MS = 10;

/** How late the server's event loop runs, ms, sampled while `busy()`. */
export class LagMonitor {
  private enabled = false;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private lastLagMs = 0;

  /** `busy`: whether requests are in progress (sampling stops at a tick that finds none). */
  constructor(private readonly busy: () => boolean) {}

  /** Lets wake() start sampling (again); idempotent. */
  start(): void {
    this.enabled = true;
  }

  /** Stops sampling for good; the delay reads 0 until started again. */
  stop(): void {
    this.enabled = false;
    this.sleep();
  }

  /** A request began: sample from now if not sampling already (and started). */
  wake(): void {
    if (!this.enabled || this.timer !== undefined) return;
    this.lastTick = performance.now();
    this.lastLagMs = 0;
    this.timer = setInterval(() => this.tick(), LAG_SAMPLE_MS);
    this.timer.unref();
  }

  /** Whether the timer runs now. */
  get sampling(): boolean {
    return this.timer !== undefined;
  }

  /**
   * The loop's delay now, ms: how late the timer last ran, or how long it
   * is overdue now if more (the loop has not come round to it). 0 when not sampling.
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
    if (!this.busy()) this.sleep();
  }

  private sleep(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.lastLagMs = 0;
  }
}
