import type { Page } from "@runstore/client";
import { type PageInput, pageOf } from "./check-history.js";
import { compareCodePoints } from "./text.js";

// Keyset pages over rows held in memory (docs/contract.md, "History"): the
// rows strictly after the token's sort key in the list's order, of which only
// the first page.size + 1 are kept while the candidates stream by, so a page
// of 100 out of 100,000 rows costs one pass and no sort of them all.

/**
 * A sort-key order over keys [instant, id] (every list's: created_at or
 * last_activity_at, then run_id or thread_id): negative when `a` comes first.
 */
export type KeyOrder = (a: readonly string[], b: readonly string[]) => number;

/**
 * Ascending: the instant, then the id by Unicode code point. Instants are
 * fixed-width ASCII, so the built-in comparison orders them exactly, and
 * only equal instants pay for the code-point comparison of the ids.
 */
export function ascending(a: readonly string[], b: readonly string[]): number {
  const [x, y] = [a[0] ?? "", b[0] ?? ""];
  if (x !== y) return x < y ? -1 : 1;
  return compareCodePoints(a[1] ?? "", b[1] ?? "");
}

/** Descending on both parts: newest first. */
export function descending(a: readonly string[], b: readonly string[]): number {
  return ascending(b, a);
}

/** The page of `rows` (in any order) that follows `page.after` in `order`. */
export function keysetPage<T>(
  rows: Iterable<T>,
  page: PageInput,
  keyOf: (row: T) => string[],
  order: KeyOrder,
): Page<T> {
  const first = new FirstRows<T>(page.size + 1, order);
  for (const row of rows) {
    const key = keyOf(row);
    if (page.after === null || order(key, page.after) > 0) first.offer(key, row);
  }
  return pageOf(first.rows(), page, keyOf);
}

/** A row kept with its sort key. */
interface Kept<T> {
  key: readonly string[];
  row: T;
}

/**
 * The first `limit` rows offered, by key in `order`: a heap whose top is the
 * last row kept, so a row that does not make the cut costs one comparison and
 * one that does O(log limit), whatever order the rows come in.
 */
class FirstRows<T> {
  private readonly heap: Kept<T>[] = [];

  constructor(
    private readonly limit: number,
    private readonly order: KeyOrder,
  ) {}

  offer(key: readonly string[], row: T): void {
    const heap = this.heap;
    if (heap.length < this.limit) {
      heap.push({ key, row });
      this.siftUp(heap.length - 1);
    } else if (heap[0] !== undefined && this.order(key, heap[0].key) < 0) {
      heap[0] = { key, row };
      this.siftDown(0);
    }
  }

  /** The rows kept, in `order`. */
  rows(): T[] {
    return this.heap.sort((a, b) => this.order(a.key, b.key)).map((kept) => kept.row);
  }

  /** Whether entry `i` belongs above entry `j`: it comes later in `order`. */
  private above(i: number, j: number): boolean {
    const [a, b] = [this.heap[i], this.heap[j]];
    return a !== undefined && b !== undefined && this.order(a.key, b.key) > 0;
  }

  private swap(i: number, j: number): void {
    const heap = this.heap;
    [heap[i], heap[j]] = [heap[j] as Kept<T>, heap[i] as Kept<T>];
  }

  private siftUp(start: number): void {
    for (let i = start; i > 0 && this.above(i, (i - 1) >> 1); i = (i - 1) >> 1) {
      this.swap(i, (i - 1) >> 1);
    }
  }

  private siftDown(start: number): void {
    for (let i = start; ; ) {
      const left = 2 * i + 1;
      let top = i;
      if (this.above(left, top)) top = left;
      if (this.above(left + 1, top)) top = left + 1;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }
}
