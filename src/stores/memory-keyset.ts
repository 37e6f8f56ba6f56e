import type { Page } from "@runstore/client";
import { type PageInput, pageOf } from "./check-history.js";
import { compareCodePoints } from "./text.js";

// Keyset pages over rows held in memory (docs/contract.md, "History"): the
// rows strictly after the token's sort key in the list's order, of which only
// the first page.size + 1 are kept while the candidates stream by, so a page
// of 100 out of 100,000 rows costs one pass and no sort of them all.

/** A sort-key order: negative when `a` comes first. */
export type KeyOrder = (a: readonly string[], b: readonly string[]) => number;

/** Ascending on every part, the first part first, each by Unicode code point. */
export function ascending(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const order = compareCodePoints(a[i] ?? "", b[i] ?? "");
    if (order !== 0) return order;
  }
  return 0;
}

/** Descending on every part: newest first. */
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

/** The first `limit` rows offered, by key in `order`, kept sorted as they come. */
class FirstRows<T> {
  private readonly keys: (readonly string[])[] = [];
  private readonly kept: T[] = [];

  constructor(
    private readonly limit: number,
    private readonly order: KeyOrder,
  ) {}

  offer(key: readonly string[], row: T): void {
    const full = this.keys.length === this.limit;
    if (full && this.order(key, this.keys[this.limit - 1] as string[]) >= 0) return;
    const at = this.position(key);
    this.keys.splice(at, 0, key);
    this.kept.splice(at, 0, row);
    if (full) {
      this.keys.pop();
      this.kept.pop();
    }
  }

  rows(): T[] {
    return this.kept;
  }

  /** Where `key` goes: after every kept key that does not come after it. */
  private position(key: readonly string[]): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.order(this.keys[mid] as string[], key) <= 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
