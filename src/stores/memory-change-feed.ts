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
// Nobody watching, nothing kept: the log keeps records only while a reader
// (the server's watch hub) has read it within KEEP_AFTER_READ_MS, so a
// server without watchers pays one counter increment a write; a cursor from
// before such an idle spell is older than the oldest record kept (a pruned
// gap: OUT_OF_RANGE), as it would be after WATCH_LOG_MAX more changes.

/** WATCH_LOG_MAX's default: changes the memory store keeps for watchers to resume from. */
export const DEFAULT_WATCH_LOG_MAX = 100_000;

/** How long after its last read the log goes on keeping records (a disconnected watcher's time to resume). */
export const KEEP_AFTER_READ_MS = 600_000;

/** The change log of one MemoryRunStore, kept in a ring of the newest `max` records. */
export class MemoryChangeFeed implements ChangeFeed {
  private ring: (ChangeRecord | undefined)[] = [];
  /** Sequence of the newest change, kept or not; a number: 2^53 writes are out of reach. */
  private newest = 0;
  /** The first sequence kept since the log last kept nothing. */
  private firstKept = 1;
  /** performance.now() of the last read; -Infinity: never read. */
  private lastRead = Number.NEGATIVE_INFINITY;
  private readonly id = randomUUID();
  private readonly waiters = new Wakers();

  /** `keepAfterReadMs`: how long after a read changes are still kept (tests shorten it). */
  constructor(
    private readonly max: number = DEFAULT_WATCH_LOG_MAX,
    private readonly keepAfterReadMs: number = KEEP_AFTER_READ_MS,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError("max must be an integer >= 1");
  }

  /**
   * True while the log keeps records: a reader read it within
   * keepAfterReadMs, or one is waiting. The store copies a row for
   * append() only then, and calls skip() otherwise.
   */
  keeping(): boolean {
    return this.waiters.size > 0 || performance.now() - this.lastRead < this.keepAfterReadMs;
  }

  /** Counts a change nobody will read: its sequence is used, the records kept so far are dropped. */
  skip(): void {
    this.newest++;
    this.firstKept = this.newest + 1;
    if (this.ring.length > 0) this.ring = [];
  }

  private touch(): void {
    this.lastRead = performance.now();
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
    this.touch();
    return this.id;
  }

  async head(): Promise<bigint> {
    this.touch();
    return BigInt(this.newest);
  }

  /** The oldest sequence still held (newest + 1 when none is). */
  private oldest(): number {
    return Math.max(1, this.firstKept, this.newest - this.max + 1);
  }

  async read(after: bigint, limit: number): Promise<ChangeRecord[]> {
    this.touch();
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
    this.touch();
    if (BigInt(this.newest) > after) return Promise.resolve();
    return this.waiters.wait(timeoutMs, signal);
  }
}
