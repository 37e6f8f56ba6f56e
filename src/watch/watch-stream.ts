import { Code, ConnectError } from "@connectrpc/connect";
import { invalidArgument } from "@runstore/client/internal";
import { ChangeLogGap, type ChangeRecord } from "../stores/change-feed.js";
import type { WatchCursor } from "./watch-cursor.js";
import { verdict, type WatchFilter } from "./watch-filter.js";
import { shuttingDown, type WatchHub } from "./watch-hub.js";

// One WatchRuns call (docs/contract.md, "Live changes"): a heartbeat with
// the position it starts after; then, for a cursor older than the hub's
// window, the change log read by the call itself, a batch at a time at the
// reader's pace; then the hub's window, shared with every other stream.
// Nothing is queued per stream: a generator suspended at a yield (the
// client reads slowly) holds one batch, and when it wakes to find the
// window gone past its position it ends with ABORTED.

/** Changes a catching-up stream reads from the log at once. */
const CATCH_UP_BATCH = 500;
/** Changes a live stream takes from the window at once. */
const LIVE_BATCH = 100;

/** One message of a stream: a change (with its left_filter) or a heartbeat (null), and the position after it. */
export interface WatchMessage {
  change: (ChangeRecord & { leftFilter: boolean }) | null;
  position: bigint;
}

/** What one call watches, from where, and what ends it. */
export interface WatchCall {
  filter: WatchFilter;
  /** Where to resume; null: from now. Its identity is checked against the log's. */
  cursor: WatchCursor | null;
  /** The connection it came on (the per-connection limit); null when not known. */
  connection: object | null;
  heartbeatMs: number;
  signal: AbortSignal;
}

/** The messages of one call, until the client goes away or an error ends it. */
export async function* watchStream(hub: WatchHub, call: WatchCall): AsyncGenerator<WatchMessage> {
  const leave = await hub.join(call.connection);
  try {
    const start = await startOf(hub, call.cursor);
    yield* new Follower(hub, call, start.position).run(start.pending);
  } finally {
    leave();
  }
}

/** Where a call starts, and the first batch of the log when it starts below the window. */
async function startOf(hub: WatchHub, cursor: WatchCursor | null) {
  if (cursor === null) return { position: hub.head, pending: null };
  if (cursor.id !== (await hub.identity())) {
    throw new ConnectError(
      "cursor is from another change log (the server restarted on the memory store, or another database): " +
        "list again and watch from now",
      Code.OutOfRange,
    );
  }
  const inWindow = cursor.sequence >= hub.floor && cursor.sequence <= hub.head;
  // Read before the first message, so a cursor the log cannot serve fails the call at once.
  const pending = inWindow ? null : await readLog(hub, cursor.sequence);
  return { position: cursor.sequence, pending };
}

/** A batch of the log after `position`, its gaps as the caller's errors naming `cursor`. */
async function readLog(hub: WatchHub, position: bigint): Promise<ChangeRecord[]> {
  hub.observer.feedRead("catch-up");
  try {
    return await hub.feed.read(position, CATCH_UP_BATCH);
  } catch (error) {
    if (!(error instanceof ChangeLogGap)) throw error;
    if (error.reason === "ahead") throw invalidArgument("cursor", "is past the newest change");
    throw new ConnectError(
      "cursor is older than the change log kept; list again and watch from now",
      Code.OutOfRange,
    );
  }
}

/** The state of one stream as it goes: its position and when it last sent. */
class Follower {
  private lastSent = 0;

  constructor(
    private readonly hub: WatchHub,
    private readonly call: WatchCall,
    private position: bigint,
  ) {}

  async *run(pending: ChangeRecord[] | null): AsyncGenerator<WatchMessage> {
    yield this.heartbeat();
    yield* this.catchUp(pending);
    yield* this.live();
  }

  /** The log read by this call, batch after batch, until the window covers its position. */
  private async *catchUp(first: ChangeRecord[] | null): AsyncGenerator<WatchMessage> {
    let batch = first;
    while (batch !== null && batch.length > 0) {
      yield* this.send(batch);
      if (this.position >= this.hub.floor) return;
      batch = await readLog(this.hub, this.position);
    }
  }

  /** The hub's window, until the client goes away, the stream falls behind or the hub closes. */
  private async *live(): AsyncGenerator<WatchMessage> {
    for (;;) {
      if (this.call.signal.aborted) return;
      if (this.hub.closed) {
        this.hub.observer.aborted("shutdown");
        throw shuttingDown();
      }
      if (this.position < this.hub.floor) {
        this.hub.observer.aborted("behind");
        throw new ConnectError(
          `this stream fell more than ${this.hub.window} changes behind; resume from the last cursor received`,
          Code.Aborted,
        );
      }
      const batch = this.hub.after(this.position, LIVE_BATCH);
      if (batch.length > 0) {
        yield* this.send(batch);
        continue;
      }
      const wait = this.call.heartbeatMs - (Date.now() - this.lastSent);
      if (wait <= 0) yield this.heartbeat();
      else await this.hub.waitBeyond(this.position, wait, this.call.signal);
    }
  }

  /** The batch's changes this stream carries, and a heartbeat when one is due. */
  private async *send(batch: readonly ChangeRecord[]): AsyncGenerator<WatchMessage> {
    for (const record of batch) {
      this.position = record.sequence;
      const sent = verdict(record, this.call.filter);
      if (sent === null) continue;
      this.lastSent = Date.now();
      this.hub.observer.message("change");
      yield { change: { ...record, leftFilter: sent.leftFilter }, position: this.position };
    }
    if (Date.now() - this.lastSent >= this.call.heartbeatMs) yield this.heartbeat();
  }

  private heartbeat(): WatchMessage {
    this.lastSent = Date.now();
    this.hub.observer.message("heartbeat");
    return { change: null, position: this.position };
  }
}
