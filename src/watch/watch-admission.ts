import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Counts the open WatchRuns streams, in the server and on each connection,
 * and refuses one past either limit (RESOURCE_EXHAUSTED naming the setting).
 * Counted apart from health Watch streams (src/health.ts), with the same
 * per-connection number.
 */
export class WatchAdmission {
  private open = 0;
  private readonly openOn = new WeakMap<object, number>();

  constructor(
    /** MAX_RUN_WATCHERS. */
    private readonly maxWatchers: number,
    /** MAX_WATCH_STREAMS_PER_CONNECTION. */
    private readonly maxPerConnection: number,
  ) {}

  /** Streams open now. */
  get size(): number {
    return this.open;
  }

  /**
   * One more stream on `connection` (null: not known), or RESOURCE_EXHAUSTED;
   * call the returned function (once or more) when it ends.
   */
  admit(connection: object | null): () => void {
    if (this.open >= this.maxWatchers) {
      throw new ConnectError(
        `too many WatchRuns streams open in this server (MAX_RUN_WATCHERS=${this.maxWatchers}); try later`,
        Code.ResourceExhausted,
      );
    }
    const onConnection = connection === null ? 0 : (this.openOn.get(connection) ?? 0);
    if (onConnection >= this.maxPerConnection) {
      throw new ConnectError(
        `too many WatchRuns streams open on this connection (MAX_WATCH_STREAMS_PER_CONNECTION=${this.maxPerConnection}); ` +
          "end one or open another connection",
        Code.ResourceExhausted,
      );
    }
    this.open++;
    if (connection !== null) this.openOn.set(connection, onConnection + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      if (connection !== null) this.openOn.set(connection, (this.openOn.get(connection) ?? 1) - 1);
    };
  }
}
