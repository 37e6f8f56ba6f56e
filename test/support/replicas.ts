import { createServer as createNetServer } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { type RunningServer, startServer } from "../../src/server.js";
import { type Deferred, deferred } from "./deferred.js";

/** A call held at a replica's door until the test releases it. */
export interface Gate {
  /** The RPC held, by its proto name ("Get", "StartRun"). */
  method: string;
  /** Resolved when the call has reached the replica. */
  entered: Deferred<void>;
  /** Resolve to let the call go on. */
  release: Deferred<void>;
}

/**
 * One RunStore server on port 0 over a store of its own (several replicas
 * share one database), with an interceptor that counts the calls reaching
 * it by RPC name and can refuse some with UNAVAILABLE or hold one (a Gate).
 * It can be stopped and started again on the same port.
 */
export class Replica {
  /** Calls that reached this replica, by RPC name, since the last reset(). */
  readonly calls = new Map<string, number>();
  /** RPCs this replica answers UNAVAILABLE before its store sees them. */
  readonly refuse = new Set<string>();
  gate: Gate | undefined;
  private server: RunningServer | undefined;
  port = 0;

  constructor(private readonly store: RunStore) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts serving, on the port it had before if it had one. */
  async start(): Promise<void> {
    this.server = await startServer({
      store: this.store,
      port: this.port,
      interceptors: [this.interceptor()],
      onInternalError: () => {},
    });
    this.port = this.server.port;
  }

  /** A graceful stop (GOAWAY, calls in flight finish); start() serves again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close(1000);
  }

  /** Calls of `method` that reached this replica; every call without a method. */
  count(method?: string): number {
    if (method !== undefined) return this.calls.get(method) ?? 0;
    return [...this.calls.values()].reduce((sum, n) => sum + n, 0);
  }

  /** Forgets the counts, refusals and gate. */
  reset(): void {
    this.calls.clear();
    this.refuse.clear();
    this.gate = undefined;
  }

  /** Holds the next call of `method` until the gate's release is resolved. */
  hold(method: string): Gate {
    this.gate = { method, entered: deferred(), release: deferred() };
    return this.gate;
  }

  private interceptor(): Interceptor {
    return (next) => async (req) => {
      const name = req.method.name;
      this.calls.set(name, this.count(name) + 1);
      if (this.refuse.has(name)) throw new ConnectError("replica draining", Code.Unavailable);
      const gate = this.gate;
      if (gate?.method === name) {
        this.gate = undefined;
        gate.entered.resolve();
        await gate.release.promise;
      }
      return next(req);
    };
  }
}

/** A URL on which nothing listens: a port that was free a moment ago. */
export async function refusingUrl(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
