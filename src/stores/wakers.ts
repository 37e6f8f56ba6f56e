/**
 * Waiters woken together: the memory change log wakes its readers on each
 * append (memory-change-feed.ts), the watch hub its streams on each batch
 * (src/watch/watch-hub.ts). A wait also ends at its timeout or when its
 * signal aborts; it never rejects.
 */
export class Wakers {
  private readonly waiting = new Set<() => void>();

  /** Resolves at the next wakeAll(), after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal.addEventListener("abort", done, { once: true });
      this.waiting.add(done);
    });
  }

  /** Waits not ended yet. */
  get size(): number {
    return this.waiting.size;
  }

  /** Ends every wait begun so far. */
  wakeAll(): void {
    if (this.waiting.size === 0) return;
    for (const wake of [...this.waiting]) wake();
  }
}
