import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { type ChangeFeed, ChangeLogGap, type ChangeRecord } from "../stores/change-feed.js";
import { Wakers } from "../stores/wakers.js";
import { WatchAdmission } from "./watch-admission.js";
import { NO_WATCH_OBSERVER, type WatchObserver } from "./watch-observer.js";

// One hub per server (src/server.ts): it tails the store's change log into a
// window of the newest changes that every WatchRuns stream of the server
// reads (watch-stream.ts), so N watchers cost one reader of the log. It
// tails only while at least one stream is open: a server nobody watches
// never reads the log.

/** Changes the tail takes from the log in one read. */
const TAIL_BATCH = 1000;
/** How long one waitForChange of the tail lasts before it simply looks again. */
const TAIL_WAIT_MS = 30_000;

/** What a hub is built with. */
export interface WatchHubOptions {
  /** WATCH_WINDOW: changes kept for the live streams. */
  window: number;
  /** MAX_RUN_WATCHERS. */
  maxWatchers: number;
  /** MAX_WATCH_STREAMS_PER_CONNECTION. */
  maxWatchersPerConnection: number;
  /** ms to wait after a failed read of the log before the next (WATCH_POLL_MS). */
  retryMs: number;
  observer?: WatchObserver;
  logger?: Logger;
}

/** The shared tail of one change log and the window of its newest changes. */
export class WatchHub {
  private readonly ring: (ChangeRecord | undefined)[];
  private newest = 0n;
  private oldest = 0n;
  private readonly admission: WatchAdmission;
  private readonly wakers = new Wakers();
  /** The running tail: aborted when the last stream ends or the hub closes. */
  private tail: { stop: AbortController; started: Promise<void> } | null = null;
  private closedFlag = false;
  private identityOf: Promise<string> | null = null;
  /** Set while the tail's reads fail, so an outage is logged once. */
  private failing = false;
  readonly observer: WatchObserver;

  constructor(
    /** The store's change log. */
    readonly feed: ChangeFeed,
    private readonly options: WatchHubOptions,
  ) {
    this.ring = new Array(options.window);
    this.admission = new WatchAdmission(options.maxWatchers, options.maxWatchersPerConnection);
    this.observer = options.observer ?? NO_WATCH_OBSERVER;
  }

  /** The newest sequence the hub has seen. */
  get head(): bigint {
    return this.newest;
  }

  /** The window holds every change after this sequence up to head. */
  get floor(): bigint {
    return this.oldest;
  }

  /** WATCH_WINDOW: how far behind the head a live stream may fall. */
  get window(): number {
    return this.options.window;
  }

  /** True once close() is called: streams end, new ones are refused. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** The log's identity (asked once). */
  identity(): Promise<string> {
    this.identityOf ??= this.feed.identity().catch((error: unknown) => {
      this.identityOf = null;
      throw error;
    });
    return this.identityOf;
  }

  /**
   * Counts one stream in (RESOURCE_EXHAUSTED past a limit; UNAVAILABLE once
   * closed) and starts the tail if it is the first; resolves once the
   * window's head is known. Call the returned function when the stream ends.
   */
  async join(connection: object | null): Promise<() => void> {
    if (this.closedFlag) throw shuttingDown();
    const release = this.admission.admit(connection);
    this.observer.streams(1);
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      release();
      this.observer.streams(-1);
      if (this.admission.size === 0) this.stopTail();
    };
    try {
      await this.startTail();
      return leave;
    } catch (error) {
      leave();
      throw error;
    }
  }

  /** Up to `max` changes of the window after `after` (which must be at or above floor). */
  after(after: bigint, max: number): ChangeRecord[] {
    const records: ChangeRecord[] = [];
    const window = BigInt(this.options.window);
    for (let s = after + 1n; s <= this.newest && records.length < max; s++) {
      records.push(this.ring[Number(s % window)] as ChangeRecord);
    }
    return records;
  }

  /** Resolves when head passes `position`, after `timeoutMs`, on `signal`, or at close(). */
  waitBeyond(position: bigint, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.newest > position || this.closedFlag) return Promise.resolve();
    return this.wakers.wait(timeoutMs, signal);
  }

  /** Ends every stream (UNAVAILABLE: resume elsewhere) and stops the tail; for shutdown. */
  close(): void {
    this.closedFlag = true;
    this.stopTail();
    this.wakers.wakeAll();
  }

  private startTail(): Promise<void> {
    if (this.tail !== null) return this.tail.started;
    const stop = new AbortController();
    const started = this.feed.head().then((head) => {
      if (!stop.signal.aborted) this.reset(head);
    });
    const tail = { stop, started };
    this.tail = tail;
    started.then(
      () => void this.run(stop.signal),
      () => {
        if (this.tail === tail) this.tail = null;
      },
    );
    return started;
  }

  private stopTail(): void {
    this.tail?.stop.abort();
    this.tail = null;
  }

  /** Empties the window at `head`: a tail (re)started, or one that fell out of the log. */
  private reset(head: bigint): void {
    this.ring.fill(undefined);
    this.newest = head;
    this.oldest = head;
    this.wakers.wakeAll();
  }

  /** The tail: wait for a change, read a batch into the window, wake the streams; until stopped. */
  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.feed.waitForChange(this.newest, TAIL_WAIT_MS, signal);
        if (signal.aborted) return;
        this.observer.feedRead("tail");
        const batch = await this.feed.read(this.newest, TAIL_BATCH);
        if (signal.aborted) return;
        this.take(batch);
        this.recovered();
      } catch (error) {
        if (signal.aborted) return;
        await this.recover(error, signal);
      }
    }
  }

  /** After a failed read: a log that moved past the window restarts it; anything else waits and retries. */
  private async recover(error: unknown, signal: AbortSignal): Promise<void> {
    if (error instanceof ChangeLogGap) {
      const head = await this.feed.head().catch(() => null);
      if (head !== null && !signal.aborted) this.reset(head);
      return;
    }
    // One line when reads start failing (a database outage), one when they work again.
    if (!this.failing) {
      this.failing = true;
      this.options.logger?.warn(
        { err: error instanceof Error ? error.message : String(error) },
        "watch: reading the change log failed; retrying every WATCH_POLL_MS, streams wait",
      );
    }
    await sleep(this.options.retryMs, undefined, { signal }).catch(() => {});
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.logger?.info("watch: reading the change log works again");
  }

  private take(batch: readonly ChangeRecord[]): void {
    if (batch.length === 0) return;
    const window = BigInt(this.options.window);
    for (const record of batch) this.ring[Number(record.sequence % window)] = record;
    this.newest = batch[batch.length - 1]?.sequence ?? this.newest;
    if (this.newest - this.oldest > window) this.oldest = this.newest - window;
    this.wakers.wakeAll();
  }
}

/** UNAVAILABLE for a stream the server ends at shutdown: the caller resumes elsewhere. */
export function shuttingDown(): ConnectError {
  return new ConnectError(
    "server is shutting down; resume from the last cursor received",
    Code.Unavailable,
  );
}
