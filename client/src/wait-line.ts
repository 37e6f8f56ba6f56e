/**
 * The calls waiting for a place in a CallGate, oldest to newest, as a doubly
 * linked list: taking the oldest or the newest, and leaving from anywhere
 * (an abort, a deadline), each cost the same at any length. Hand-written: a
 * Set (what the gate used before) has no newest end, and an array deque
 * (denque) removes from the middle by shifting the rest.
 */
export class WaitLine<T> {
  private oldest: Place<T> | undefined;
  private newest: Place<T> | undefined;
  /** Places in the line. */
  size = 0;

  /** Puts `value` at the newest end; the place is what `remove` takes. */
  push(value: T): Place<T> {
    const place: Place<T> = { value, older: this.newest, newer: undefined, inLine: true };
    if (this.newest === undefined) this.oldest = place;
    else this.newest.newer = place;
    this.newest = place;
    this.size++;
    return place;
  }

  /** Takes the oldest place out; undefined when the line is empty. */
  shift(): T | undefined {
    const place = this.oldest;
    if (place === undefined) return undefined;
    this.remove(place);
    return place.value;
  }

  /** Takes the newest place out; undefined when the line is empty. */
  pop(): T | undefined {
    const place = this.newest;
    if (place === undefined) return undefined;
    this.remove(place);
    return place.value;
  }

  /** Takes `place` out of the line; nothing when it left already. */
  remove(place: Place<T>): void {
    if (!place.inLine) return;
    place.inLine = false;
    if (place.older === undefined) this.oldest = place.newer;
    else place.older.newer = place.newer;
    if (place.newer === undefined) this.newest = place.older;
    else place.newer.older = place.older;
    place.older = undefined;
    place.newer = undefined;
    this.size--;
  }
}

/** One place in a WaitLine. */
export interface Place<T> {
  readonly value: T;
  older: Place<T> | undefined;
  newer: Place<T> | undefined;
  inLine: boolean;
}
