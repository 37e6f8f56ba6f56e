import { Code, type Interceptor } from "@connectrpc/connect";
import {
  type RemoteProtocol,
  RemoteRunStore,
  type RunChangeEvent,
  type RunRecord,
  type RunWatchEvent,
  type WatchRunsFilter,
} from "@runstore/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import type { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import type { WatchObserver } from "../../src/watch/watch-observer.js";
import { failureOf } from "../support/failure.js";
import { createTestDatabase, type TestDatabase } from "../support/mysql.js";
import { OWNER_TOKENS } from "../support/scoped-writes.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { until } from "../support/until.js";

// RemoteRunStore.watchRuns against real servers on port 0: the events and
// their fields over gRPC, Connect and gRPC-Web; resuming by itself after a
// lost connection, a slow-reader ABORTED, a replica gone (several base
// URLs) and a restart (memory: another log, OUT_OF_RANGE; MySQL: no change
// lost); `break` closing the stream on the server; the errors it throws.

const PROTOCOLS: readonly RemoteProtocol[] = ["grpc", "connect", "grpc-web"];

/** A fixed-width UTC timestamp, as every timestamp of the SDK. */
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** The WatchRuns calls a server received, and how many of them are still open. */
class StreamCount {
  calls = 0;
  open = 0;

  /** Counts each WatchRuns call from its start until its response stream ends. */
  readonly interceptor: Interceptor = (next) => async (req) => {
    if (req.method.name !== "WatchRuns") return next(req);
    this.calls++;
    this.open++;
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      this.open--;
      throw error;
    }
    if (!res.stream) {
      this.open--;
      return res;
    }
    const messages = res.message;
    const close = () => this.open--;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } finally {
          close();
        }
      })(),
    };
  };
}

/** What the server's watch hub reports (its observer): open streams, streams it aborted. */
class Observed implements WatchObserver {
  open = 0;
  abortedBy = { behind: 0, shutdown: 0 };
  streams(delta: 1 | -1): void {
    this.open += delta;
  }
  message(): void {}
  feedRead(): void {}
  aborted(reason: "behind" | "shutdown"): void {
    this.abortedBy[reason]++;
  }
}

interface Served {
  server: RunningServer;
  count: StreamCount;
  observed: Observed;
  url: string;
}

const servers: RunningServer[] = [];
const clients: RemoteRunStore[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const proxy of proxies.splice(0)) await proxy.close();
  await Promise.all(servers.splice(0).map((server) => server.close(0)));
});

/** A server on `store` (port 0 unless given) counting its WatchRuns streams. */
async function serve(
  store: MemoryRunStore | MysqlRunStore,
  options: Partial<ServerOptions> = {},
): Promise<Served> {
  const count = new StreamCount();
  const observed = new Observed();
  const server = await startServer({
    store,
    watchObserver: observed,
    ...options,
    interceptors: [count.interceptor, ...(options.interceptors ?? [])],
  });
  servers.push(server);
  return { server, count, observed, url: server.url };
}

/** A client that keeps resuming for a while (many attempts, short backoff). */
function clientOf(
  baseUrl: string | string[],
  protocol: RemoteProtocol = "grpc",
  token?: string,
): RemoteRunStore {
  const client = new RemoteRunStore({
    baseUrl,
    protocol,
    ...(token === undefined ? {} : { token }),
    retry: { maxAttempts: 200, initialBackoffMs: 5, maxBackoffMs: 50 },
  });
  clients.push(client);
  return client;
}

/** A watch read one event at a time. */
class Watch {
  private readonly events: AsyncIterator<RunWatchEvent, void>;

  constructor(readonly iterable: AsyncGenerator<RunWatchEvent, void, undefined>) {
    this.events = iterable;
  }

  async next(): Promise<RunWatchEvent> {
    const result = await this.events.next();
    if (result.done === true) throw new Error("the watch ended");
    return result.value;
  }

  /** The next change, past any heartbeats. */
  async change(): Promise<RunChangeEvent> {
    for (;;) {
      const event = await this.next();
      if (event.type === "change") return event.change;
    }
  }

  /** The next `n` changes. */
  async changes(n: number): Promise<RunChangeEvent[]> {
    const out: RunChangeEvent[] = [];
    while (out.length < n) out.push(await this.change());
    return out;
  }

  /** Opens the stream: its first message, a heartbeat with the cursor it starts after. */
  async started(): Promise<string> {
    const first = await this.next();
    expect(first).toEqual({ type: "heartbeat", cursor: expect.any(String) });
    return first.cursor;
  }

  async stop(): Promise<void> {
    await this.iterable.return(undefined);
  }
}

function watch(client: RemoteRunStore, filter?: WatchRunsFilter, signal?: AbortSignal): Watch {
  return new Watch(client.watchRuns(filter, signal === undefined ? undefined : { signal }));
}

/** The row as it is now (it must exist). */
async function row(store: MemoryRunStore | MysqlRunStore, runId: string): Promise<RunRecord> {
  const found = await store.get(runId);
  if (found === null) throw new Error(`${runId} is missing`);
  return found;
}

/** A change as the SDK yields it, `changedAt` any fixed-width timestamp. */
function change(
  kind: RunChangeEvent["kind"],
  run: RunRecord,
  sequence: bigint,
  leftFilter = false,
): RunChangeEvent {
  return {
    kind,
    run,
    sequence,
    changedAt: expect.stringMatching(TIMESTAMP),
    leftFilter,
    repeated: false,
  };
}

describe.each(PROTOCOLS)("watchRuns over %s", (protocol) => {
  it("yields a heartbeat, then each matching change with its fields", async () => {
    const memory = new MemoryRunStore();
    const { url } = await serve(memory);
    const events = watch(clientOf(url, protocol), { threadId: "thread-1" });
    await events.started();
    await memory.put("run-1", { threadId: "thread-1", userId: "alice", metadata: { a: 1 } });
    const created = await row(memory, "run-1");
    await memory.put("run-other", { threadId: "thread-2" });
    await memory.updateStatus("run-1", "running");
    const running = await row(memory, "run-1");
    await memory.delete("run-1");
    expect(await events.next()).toEqual({
      type: "change",
      change: change("created", created, 1n),
      cursor: expect.any(String),
    });
    expect(await events.changes(2)).toEqual([
      change("updated", running, 3n),
      change("deleted", running, 4n),
    ]);
    await events.stop();
  });

  it("resumes by itself when the connection is cut, from the last cursor: nothing lost or repeated", async () => {
    const memory = new MemoryRunStore();
    const { server, count } = await serve(memory);
    const proxy = new TcpProxy("127.0.0.1", server.port);
    proxies.push(proxy);
    await proxy.start();
    const events = watch(clientOf(`http://127.0.0.1:${proxy.port}`, protocol));
    await events.started();
    await memory.put("run-a", { threadId: "thread-1" });
    expect((await events.change()).run.runId).toBe("run-a");
    proxy.cut();
    await until(() => count.open === 0, "the server to see the stream end");
    await memory.put("run-b", { threadId: "thread-1" });
    proxy.forward();
    expect(await events.change()).toEqual(change("created", await row(memory, "run-b"), 2n));
    expect(count.calls).toBe(2);
    await events.stop();
  });

  it("break closes the stream on the server", async () => {
    const { url, count, observed } = await serve(new MemoryRunStore());
    const client = clientOf(url, protocol);
    for await (const event of client.watchRuns()) {
      expect(event.type).toBe("heartbeat");
      expect([count.open, observed.open]).toEqual([1, 1]);
      break;
    }
    await until(() => count.open === 0 && observed.open === 0, "the server to close the stream");
    expect(count.calls).toBe(1);
  });
});

describe("watchRuns filters", () => {
  it("activeOnly: a run that finishes leaves the watch visibly (leftFilter), then goes quiet", async () => {
    const memory = new MemoryRunStore();
    const { url } = await serve(memory);
    const events = watch(clientOf(url), { activeOnly: true });
    await events.started();
    await memory.put("run-1", { threadId: "thread-1" });
    const pending = await row(memory, "run-1");
    await memory.updateStatus("run-1", "running");
    const running = await row(memory, "run-1");
    await memory.updateStatus("run-1", "success");
    const done = await row(memory, "run-1");
    await memory.updateStatus("run-1", "error");
    await memory.put("run-2", { threadId: "thread-1" });
    expect(await events.changes(4)).toEqual([
      change("created", pending, 1n),
      change("updated", running, 2n),
      change("updated", done, 3n, true),
      change("created", await row(memory, "run-2"), 5n),
    ]);
  });
});

describe("watchRuns resumes", () => {
  it("after a slow consumer's ABORTED, from its cursor, without losing a change", async () => {
    const memory = new MemoryRunStore();
    const { url, count, observed } = await serve(memory, { watch: { window: 10 } });
    const events = watch(clientOf(url));
    await events.started();
    // 40 runs of ~100 KB: far more than the HTTP/2 windows hold, so the
    // server's stream waits on the unread client and falls behind the window.
    const big = "x".repeat(100_000);
    for (let i = 0; i < 40; i++) {
      await memory.put(`run-${String(i).padStart(2, "0")}`, {
        threadId: "thread-1",
        kwargs: { big },
      });
    }
    const changes = await events.changes(40);
    expect(changes.map((c) => c.sequence)).toEqual(
      Array.from({ length: 40 }, (_, i) => BigInt(i + 1)),
    );
    expect(changes.map((c) => c.run.runId)).toEqual(
      Array.from({ length: 40 }, (_, i) => `run-${String(i).padStart(2, "0")}`),
    );
    expect(changes.every((c) => !c.repeated && c.kind === "created")).toBe(true);
    expect(observed.abortedBy.behind).toBeGreaterThanOrEqual(1);
    expect(count.calls).toBe(observed.abortedBy.behind + 1);
    await events.stop();
  });

  it("with several base URLs, on the other replica when its replica goes away", async () => {
    const memory = new MemoryRunStore();
    const one = await serve(memory);
    const two = await serve(memory);
    const events = watch(clientOf([one.url, two.url]));
    await events.started();
    const [gone, other] = one.count.open === 1 ? [one, two] : [two, one];
    await memory.put("run-a", { threadId: "thread-1" });
    expect((await events.change()).sequence).toBe(1n);
    await gone.server.close(0);
    await memory.put("run-b", { threadId: "thread-1" });
    expect(await events.change()).toEqual(change("created", await row(memory, "run-b"), 2n));
    expect(other.count.open).toBe(1);
    await events.stop();
  });

  it("across a memory server's restart: the new log is another one, OUT_OF_RANGE thrown", async () => {
    const first = await serve(new MemoryRunStore());
    const events = watch(clientOf(first.url));
    await events.started();
    await first.server.close(0);
    const second = await serve(new MemoryRunStore(), { port: first.server.port });
    const error = await failureOf(events.next());
    expect(error.code).toBe(Code.OutOfRange);
    expect(error.rawMessage).toMatch(/cursor/);
    expect(second.count.calls).toBe(1);
  });
});

describe("watchRuns throws", () => {
  it("OUT_OF_RANGE for another log's cursor, INVALID_ARGUMENT for a damaged one, each once", async () => {
    const one = await serve(new MemoryRunStore());
    const two = await serve(new MemoryRunStore());
    const cursor = await watch(clientOf(one.url)).started();
    const other = await failureOf(watch(clientOf(two.url), { cursor }).next());
    expect(other.code).toBe(Code.OutOfRange);
    expect(other.rawMessage).toMatch(/cursor/);
    const damaged = await failureOf(watch(clientOf(two.url), { cursor: "not a cursor" }).next());
    expect(damaged.code).toBe(Code.InvalidArgument);
    expect(damaged.rawMessage).toMatch(/cursor/);
    expect(two.count.calls).toBe(2);
  });

  it("INVALID_ARGUMENT for a filter the wire cannot carry, before anything is sent", async () => {
    const { url, count } = await serve(new MemoryRunStore());
    const client = clientOf(url);
    const status = await failureOf(watch(client, { statuses: ["bogus" as "pending"] }).next());
    expect(status.code).toBe(Code.InvalidArgument);
    expect(status.rawMessage).toMatch(/statuses\[0\]/);
    const kind = await failureOf(watch(client, { operationKinds: ["run", "nap" as "run"] }).next());
    expect(kind.code).toBe(Code.InvalidArgument);
    expect(kind.rawMessage).toMatch(/operation_kinds\[1\]/);
    const active = await failureOf(watch(client, { activeOnly: "yes" as never }).next());
    expect(active.code).toBe(Code.InvalidArgument);
    expect(active.rawMessage).toMatch(/active_only/);
    expect(count.calls).toBe(0);
  });

  it("PERMISSION_DENIED naming user_id when a user-bound token watches another user", async () => {
    const { url, count } = await serve(new MemoryRunStore(), { tokens: OWNER_TOKENS });
    const alice = OWNER_TOKENS[1]?.token;
    const error = await failureOf(watch(clientOf(url, "grpc", alice), { userId: "bob" }).next());
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toMatch(/user_id/);
    expect(count.calls).toBe(1);
  });

  it("CANCELED when the consumer's signal aborts or the store closes; the streams close", async () => {
    const { url, count } = await serve(new MemoryRunStore());
    const client = clientOf(url);
    const controller = new AbortController();
    const aborted = watch(client, undefined, controller.signal);
    await aborted.started();
    const closed = watch(client);
    await closed.started();
    const pendingAbort = failureOf(aborted.next());
    controller.abort();
    expect((await pendingAbort).code).toBe(Code.Canceled);
    const pendingClose = failureOf(closed.next());
    client.close();
    expect((await pendingClose).code).toBe(Code.Canceled);
    await until(() => count.open === 0, "the server to close both streams");
    expect(count.calls).toBe(2);
  });

  it("DEADLINE_EXCEEDED when the caller's timeout passes, not resumed", async () => {
    const { url, count } = await serve(new MemoryRunStore());
    const events = new Watch(clientOf(url).watchRuns(undefined, { timeoutMs: 300 }));
    await events.started();
    const error = await failureOf(events.next());
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(count.calls).toBe(1);
  });
});

const db = await createTestDatabase("watch_client");

afterAll(async () => {
  await db?.drop();
});

describe.skipIf(db === null)("watchRuns on MySQL", () => {
  it("resumes across a server restart with no change lost, sequences dense", async () => {
    const database = db as TestDatabase;
    const writer = database.openStore();
    const first = await serve(database.openStore());
    const events = watch(clientOf(first.url));
    await events.started();
    await writer.put("run-a", { threadId: "thread-1" });
    const a = await events.change();
    expect(a).toEqual(change("created", await row(writer, "run-a"), a.sequence));
    await first.server.close(0);
    await writer.put("run-b", { threadId: "thread-1" });
    const created = await row(writer, "run-b");
    await writer.updateStatus("run-b", "running");
    const second = await serve(database.openStore(), { port: first.server.port });
    expect(await events.changes(2)).toEqual([
      change("created", created, a.sequence + 1n),
      change("updated", await row(writer, "run-b"), a.sequence + 2n),
    ]);
    expect(second.count.calls).toBe(1);
    await events.stop();
  });
});
