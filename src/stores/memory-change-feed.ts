import { randomUUID } from "node:crypto";
import { nowTimestamp, type RunRecord, type RunStatus } from "@runstore/client";
import {
  type ChangeFeed,
  type ChangeKind,
  ChangeLogGap,
  type ChangeRecord,
} from "./change-feed.js";
import { Wakers } from "./wakers.js";

// MemoryRunStore's change log (src/stores/change-feed.ts): the table appends
// one record for every row it inserts, writes or removes, in the same
// synchronous step as the write, so the log's order is the order of the
// writes. A ring of the newest WATCH_LOG_MAX records; nothing survives the
// process, so each store names its log with a random identity and a cursor
// from an earlier process is refused rather than read at a wrong position.

/** WATCH_LOG_MAX's default: changes the memory store keeps for watchers to resume from. */
export const DEFAULT_WATCH_LOG_MAX = 100_000;

/** The change log of one MemoryRunStore, kept in a ring of the newest `max` records. */
export class MemoryChangeFeed implements ChangeFeed {
  private readonly ring: (ChangeRecord | undefined)[] = [];
  /** Sequence of the newest record; a number: 2^53 writes are out of reach. */
  private newest = 0;
  private readonly id = randomUUID();
  private readonly waiters = new Wakers();

  constructor(private readonly max: number = DEFAULT_WATCH_LOG_MAX) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError("max must be an integer >= 1");
  }

  /**
   * Records one change of `run`, which must be a copy the store will not
   * change again, and wakes every waitForChange.
   */
  append(kind: ChangeKind, run: RunRecord, previousStatus: RunStatus | null): void {
    this.newest++;
    this.ring[(this.newest - 1) % this.max] = {
      sequence: BigInt(this.newest),
      kind,
      run,
      previousStatus,
      changedAt: nowTimestamp(),
    };
    this.waiters.wakeAll();
  }

  async identity(): Promise<string> {
    return this.id;
  }

  async head(): Promise<bigint> {
    return BigInt(this.newest);
  }

  /** The oldest sequence still held (newest + 1 when none is). */
  private oldest(): number {
    return Math.max(1, this.newest - this.max + 1);
  }

  async read(after: bigint, limit: number): Promise<ChangeRecord[]> {
    if (after > BigInt(this.newest)) {
      throw new ChangeLogGap(`position ${after} is past the newest change ${this.newest}`, "ahead");
    }
    const from = Number(after) + 1;
    if (from < this.oldest()) {
      throw new ChangeLogGap(
        `position ${after} is older than the oldest change kept (${this.oldest()})`,
        "pruned",
      );
    }
    const to = Math.min(this.newest, from + Math.max(0, limit) - 1);
    const records: ChangeRecord[] = [];
    for (let sequence = from; sequence <= to; sequence++) {
      records.push(this.ring[(sequence - 1) % this.max] as ChangeRecord);
    }
    return records;
  }

  waitForChange(after: bigint, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (BigInt(this.newest) > after) return Promise.resolve();
    return this.waiters.wait(timeoutMs, signal);
  }
}
