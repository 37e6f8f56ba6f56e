import { compareCodePoints } from "./text.js";

// The order MEMORY_MAX_RUNS evicts in (docs/operations.md, "Limits"):
// terminal rows by updated_at, then run_id, oldest first. A binary min-heap
// of [updated_at, run_id] entries, one pushed whenever a row is written
// terminal. An entry a later write or a removal made stale stays until it
// reaches the top (where the caller's check drops it) or the heap is rebuilt,
// so a write costs O(log n) and finding the row to evict is amortised O(log n).

/** One heap entry: the sort key of a row when it was written terminal. */
export type EvictionEntry = readonly [updatedAt: string, runId: string];

/** Whether `a` is evicted before `b`. */
function before(a: EvictionEntry, b: EvictionEntry): boolean {
  return a[0] < b[0] || (a[0] === b[0] && compareCodePoints(a[1], b[1]) < 0);
}

/** Terminal rows, oldest updated_at first (ties by run_id). */
export class EvictionOrder {
  private heap: EvictionEntry[] = [];

  /** Entries held, stale ones included. */
  get size(): number {
    return this.heap.length;
  }

  push(entry: EvictionEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent] as EvictionEntry)) break;
      heap[i] = heap[parent] as EvictionEntry;
      i = parent;
    }
    heap[i] = entry;
  }

  /**
   * The oldest entry `current` says still describes its row; the stale ones
   * found on the way are dropped. The entry itself stays.
   */
  oldest(current: (entry: EvictionEntry) => boolean): EvictionEntry | undefined {
    for (let top = this.heap[0]; top !== undefined; top = this.heap[0]) {
      if (current(top)) return top;
      this.pop();
    }
    return undefined;
  }

  /** Starts over from exactly `entries`, dropping every stale one. */
  rebuild(entries: EvictionEntry[]): void {
    this.heap = entries;
    for (let i = (entries.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private pop(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.siftDown(0);
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const entry = heap[start] as EvictionEntry;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && before(heap[right] as EvictionEntry, heap[left] as EvictionEntry)
          ? right
          : left;
      if (!before(heap[child] as EvictionEntry, entry)) break;
      heap[i] = heap[child] as EvictionEntry;
      i = child;
    }
    heap[i] = entry;
  }
}
