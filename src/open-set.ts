/** Anything that says once when it has closed: a response, a session, a socket. */
export interface Closes {
  once(event: "close", listener: () => void): unknown;
}

/**
 * The things of one kind still open, each from add() until its own 'close'
 * event. Shutdown waits on empty() rather than polling a count.
 */
export class OpenSet<T extends Closes> implements Iterable<T> {
  private readonly open = new Set<T>();
  private readonly waiting: (() => void)[] = [];

  add(item: T): void {
    this.open.add(item);
    item.once("close", () => {
      this.open.delete(item);
      if (this.open.size === 0) for (const wake of this.waiting.splice(0)) wake();
    });
  }

  get size(): number {
    return this.open.size;
  }

  /** Resolves once nothing is open (at once when nothing is). */
  empty(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  [Symbol.iterator](): Iterator<T> {
    return this.open.values();
  }
}
