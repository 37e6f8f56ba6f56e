import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { type RunStore, RunStoreService } from "@runstore/client";
import { type pb, runFromProto } from "@runstore/client/internal";
import type { Registry } from "prom-client";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import { decodeCursor } from "../../src/watch/watch-cursor.js";

// WatchRuns tests: a real server on port 0, the generated Connect client over
// gRPC or the Connect protocol (HTTP/2), and a reader that takes one message
// at a time so a test can stop reading and go on later.

/** The wire protocols the watch tests run over. */
export const PROTOCOLS = ["grpc", "connect"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The generated client over `protocol`, on its own HTTP/2 session (closed by the returned close). */
export function watchClient(
  url: string,
  protocol: Protocol,
  token?: string,
): { client: Client<typeof RunStoreService>; transport: Transport; close(): void } {
  const sessionManager = new Http2SessionManager(url);
  const interceptors =
    token === undefined
      ? []
      : [
          (next: Parameters<import("@connectrpc/connect").Interceptor>[0]) =>
            async (req: Parameters<typeof next>[0]) => {
              req.header.set("authorization", `Bearer ${token}`);
              return next(req);
            },
        ];
  const options = { baseUrl: url, sessionManager, interceptors };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport(options)
      : createConnectTransport({ ...options, httpVersion: "2" });
  return {
    client: createClient(RunStoreService, transport),
    transport,
    close: () => sessionManager.abort(),
  };
}

/** A server over `store` and what the test closes after it. */
export async function watchServer(
  store: RunStore,
  options: Partial<ServerOptions> = {},
): Promise<RunningServer> {
  return startServer({ ...options, store, port: 0 });
}

/** A server over `store` on port 0, a client over `protocol`, and readers of it; `cleanup` closes them. */
export async function served(
  store: RunStore,
  protocol: Protocol,
  cleanup: (() => unknown)[],
  options: Partial<ServerOptions> = {},
) {
  const server = await watchServer(store, options);
  cleanup.push(() => server.close(0));
  const { client, close } = watchClient(server.url, protocol);
  cleanup.push(close);
  const open = (request: MessageInitShape<typeof pb.WatchRunsRequestSchema> = {}) => {
    const reader = new WatchReader(client, request);
    cleanup.push(() => reader.cancel());
    return reader;
  };
  return { server, client, open };
}

/** A value of a runstore_watch_* metric, 0 when it has none yet. */
export async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (found?.values ?? []) as { value: number; labels: Record<string, unknown> }[];
  const value = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

/** from, from + 1, …, to. */
export function sequences(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A change as the tests compare it: kind, sequence, run id, status, left_filter. */
export interface Seen {
  kind: "created" | "updated" | "deleted";
  sequence: number;
  runId: string;
  status: string;
  leftFilter: boolean;
}

/** A change in the tests' short form. */
export const c = (
  kind: Seen["kind"],
  sequence: number,
  runId: string,
  status: string,
  leftFilter = false,
): Seen => ({ kind, sequence, runId, status, leftFilter });

const KINDS = { 1: "created", 2: "updated", 3: "deleted" } as const;

/** A change message in the tests' short form. */
export function seen(message: pb.WatchRunsResponse): Seen {
  const change = message.change;
  if (change === undefined) throw new Error("a heartbeat, not a change");
  const run = runFromProto(change.run as pb.Run);
  return {
    kind: KINDS[change.kind as 1 | 2 | 3],
    sequence: Number(change.sequence),
    runId: run.runId,
    status: run.status,
    leftFilter: change.leftFilter,
  };
}

/** The sequence a cursor resumes after. */
export function positionOf(cursor: string): number {
  return Number(decodeCursor(cursor).sequence);
}

/**
 * One WatchRuns stream read a message at a time: next() pulls exactly one,
 * so a test that stops calling it leaves the stream unread (the server's
 * writes wait on HTTP/2 flow control).
 */
export class WatchReader {
  private readonly iterator: AsyncIterator<pb.WatchRunsResponse>;
  readonly controller = new AbortController();
  /** The cursor of the last message read. */
  lastCursor = "";

  constructor(
    client: Client<typeof RunStoreService>,
    request: MessageInitShape<typeof pb.WatchRunsRequestSchema> = {},
  ) {
    this.iterator = client
      .watchRuns(request, { signal: this.controller.signal })
      [Symbol.asyncIterator]();
  }

  /** The next message; throws the stream's error (a ConnectError). */
  async next(): Promise<pb.WatchRunsResponse> {
    const result = await this.iterator.next();
    if (result.done) throw new Error("the stream ended");
    this.lastCursor = result.value.cursor;
    return result.value;
  }

  /** The next `count` changes, heartbeats skipped. */
  async changes(count: number): Promise<Seen[]> {
    const out: Seen[] = [];
    while (out.length < count) {
      const message = await this.next();
      if (message.change !== undefined) out.push(seen(message));
    }
    return out;
  }

  /**
   * The changes up to the message whose cursor reaches `position` (a change
   * at it, or a heartbeat past it: give the server a short WATCH_HEARTBEAT_MS).
   */
  async changesThrough(position: number): Promise<Seen[]> {
    const out: Seen[] = [];
    for (;;) {
      const message = await this.next();
      if (message.change !== undefined) out.push(seen(message));
      if (positionOf(message.cursor) >= position) return out;
    }
  }

  /** The error that ends the stream, reading (and dropping) messages until it comes. */
  async failure(): Promise<ConnectError> {
    try {
      for (;;) await this.next();
    } catch (error) {
      return ConnectError.from(error);
    }
  }

  /** Every change until the stream fails, and the error it fails with. */
  async untilFailure(): Promise<{ changes: Seen[]; error: ConnectError }> {
    const changes: Seen[] = [];
    try {
      for (;;) {
        const message = await this.next();
        if (message.change !== undefined) changes.push(seen(message));
      }
    } catch (error) {
      return { changes, error: ConnectError.from(error) };
    }
  }

  /** Cancels the call. */
  cancel(): void {
    this.controller.abort();
  }
}
