import { Code, ConnectError, type ConnectRouter, createContextKey } from "@connectrpc/connect";
import { RunStoreService } from "@runstore/client";
import * as pbHealth from "./gen/grpc/health/v1/health_pb.js";
import type { Logger } from "./logger.js";

const ServingStatus = pbHealth.HealthCheckResponse_ServingStatus;
type ServingStatus = pbHealth.HealthCheckResponse_ServingStatus;

/**
 * Health Watch streams open at once in the whole server; one more is
 * RESOURCE_EXHAUSTED. Watch needs no token and never ends, so neither the
 * body nor the send nor the idle limit ever closes one: without a cap,
 * anyone who can reach the port could hold memory with them.
 */
export const MAX_WATCH_STREAMS = 1000;

/**
 * The connection a call came on (an HTTP/2 session or an HTTP/1.1 socket),
 * set by src/call-context.ts; null for routes mounted without it.
 */
export const connectionKey = createContextKey<object | null>(null, {
  description: "runstore connection",
});

/** The names health answers for: "" (the whole server) and RunStoreService. */
export const HEALTH_SERVICES = ["", RunStoreService.typeName] as const;

/**
 * Whether the server can serve: SERVING while the store answers its probe
 * (for MySQL a `SELECT 1`, repeated every interval), NOT_SERVING when it does
 * not, and NOT_SERVING for good once shutdown() is called.
 */
export class HealthMonitor {
  private status: ServingStatus = ServingStatus.NOT_SERVING;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private watchers = 0;
  /** Watch streams open on each connection. */
  private readonly watchersOn = new WeakMap<object, number>();

  /**
   * `maxWatchers`: Watch streams open at once in the server;
   * `maxWatchersPerConnection` (MAX_WATCH_STREAMS_PER_CONNECTION): on one
   * connection, so that no one connection takes every place.
   */
  constructor(
    private readonly probe: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly logger?: Logger,
    private readonly maxWatchers = MAX_WATCH_STREAMS,
    private readonly maxWatchersPerConnection = MAX_WATCH_STREAMS,
  ) {}

  /**
   * Counts one more Watch stream on `connection` (null: not known), or
   * refuses it (RESOURCE_EXHAUSTED) when maxWatchers are open in the
   * server or maxWatchersPerConnection on that connection; call the
   * returned function when it ends.
   */
  admitWatcher(connection: object | null = null): () => void {
    if (this.watchers >= this.maxWatchers) {
      throw new ConnectError(
        `too many health Watch streams open (${this.maxWatchers}); use Check or try later`,
        Code.ResourceExhausted,
      );
    }
    const onConnection = connection === null ? 0 : (this.watchersOn.get(connection) ?? 0);
    if (onConnection >= this.maxWatchersPerConnection) {
      throw new ConnectError(
        `too many health Watch streams open on this connection (${this.maxWatchersPerConnection}); use Check or try later`,
        Code.ResourceExhausted,
      );
    }
    this.watchers++;
    if (connection !== null) this.watchersOn.set(connection, onConnection + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.watchers--;
      if (connection !== null) {
        this.watchersOn.set(connection, (this.watchersOn.get(connection) ?? 1) - 1);
      }
    };
  }

  /** Probes once now, then every interval until shutdown(). */
  async start(): Promise<void> {
    await this.check();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  current(): ServingStatus {
    return this.status;
  }

  /** True from shutdown() on: the server is draining, so readiness fails at once. */
  get draining(): boolean {
    return this.stopped;
  }

  /** NOT_SERVING from now on, whatever the probe says; watchers hear it at once. */
  shutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.status = ServingStatus.NOT_SERVING;
    // Wake every watcher even when the status was NOT_SERVING already: their
    // streams end now.
    this.notify();
  }

  /** Resolves at shutdown(), or when `signal` aborts. */
  stoppedOrAborted(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopped || signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        this.listeners.delete(check);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const check = () => {
        if (this.stopped) done();
      };
      this.listeners.add(check);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * The current status, then each change, until `signal` aborts or the
   * server shuts down (after NOT_SERVING is sent, so Watch streams end and
   * their connections can close gracefully).
   */
  async *changes(signal: AbortSignal): AsyncGenerator<ServingStatus> {
    let last: ServingStatus | undefined;
    while (!signal.aborted) {
      if (this.status !== last) {
        last = this.status;
        yield last;
      }
      // Checked after the yield, so NOT_SERVING is always sent before the end.
      if (this.stopped && last === ServingStatus.NOT_SERVING) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.listeners.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.listeners.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  private probing = false;

  private async check(): Promise<void> {
    // One probe at a time: a hung database must not pile probes up.
    if (this.probing) return;
    this.probing = true;
    let next: ServingStatus;
    try {
      await this.probe();
      next = ServingStatus.SERVING;
    } catch (error) {
      next = ServingStatus.NOT_SERVING;
      if (this.status !== next) {
        this.logger?.error({ err: errorSummary(error) }, "health probe failed: NOT_SERVING");
      }
    }
    this.probing = false;
    if (this.stopped) return;
    if (this.status !== next && next === ServingStatus.SERVING)
      this.logger?.info("health: SERVING");
    this.set(next);
  }

  private set(status: ServingStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function errorSummary(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** grpc.health.v1.Health (Check, Watch, List) over a HealthMonitor. */
export function healthRoutes(monitor: HealthMonitor) {
  const known = new Set<string>(HEALTH_SERVICES);
  return (router: ConnectRouter) =>
    router.service(pbHealth.Health, {
      check(req) {
        if (!known.has(req.service)) {
          throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
        }
        return { status: monitor.current() };
      },
      async *watch(req, context) {
        const release = monitor.admitWatcher(context.values.get(connectionKey));
        try {
          if (!known.has(req.service)) {
            // The protocol: tell the watcher, then keep the stream open.
            yield { status: ServingStatus.SERVICE_UNKNOWN };
            await monitor.stoppedOrAborted(context.signal);
            return;
          }
          for await (const status of monitor.changes(context.signal)) yield { status };
        } finally {
          release();
        }
      },
      list() {
        const status = monitor.current();
        return { statuses: Object.fromEntries(HEALTH_SERVICES.map((name) => [name, { status }])) };
      },
    });
}
