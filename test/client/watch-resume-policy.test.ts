import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { RemoteRunStore, RunStoreService, type RunWatchEvent } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { describe, expect, it } from "vitest";
import { failureOf } from "../support/failure.js";

// How watchRuns counts its attempts and marks repeats, against a scripted
// WatchRuns handler on an in-process router transport (the protocols and a
// real server are watch.test.ts'): each call of the script answers the
// cursor it was given with the messages the test wants, then fails.

/** When every scripted change happened: 2026-01-01T00:00:00Z. */
const AT = { seconds: 1_767_225_600n, nanos: 0 };

/** A change message at `sequence` (a new pending run), its cursor the sequence in decimal. */
function changeAt(sequence: number): pb.WatchRunsResponse {
  return create(pb.WatchRunsResponseSchema, {
    cursor: String(sequence),
    change: {
      kind: pb.RunChangeKind.CREATED,
      run: {
        runId: `run-${sequence}`,
        threadId: "thread-1",
        status: pb.RunStatus.PENDING,
        multitaskStrategy: pb.MultitaskStrategy.REJECT,
        operationKind: pb.OperationKind.RUN,
        createdAt: AT,
        updatedAt: AT,
      },
      sequence: BigInt(sequence),
      changedAt: AT,
    },
  });
}

/** A heartbeat whose cursor is `sequence`. */
function heartbeat(sequence: number): pb.WatchRunsResponse {
  return create(pb.WatchRunsResponseSchema, { cursor: String(sequence) });
}

/**
 * A store whose WatchRuns runs `script(cursor, call)` for each call (call 1
 * first); the cursors each call was given are in `cursors`.
 */
function scripted(
  script: (after: number, call: number) => AsyncGenerator<pb.WatchRunsResponse>,
  maxAttempts = 4,
): { store: RemoteRunStore; cursors: string[] } {
  const cursors: string[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(RunStoreService, {
      watchRuns(req: pb.WatchRunsRequest) {
        cursors.push(req.cursor);
        return script(req.cursor === "" ? 0 : Number(req.cursor), cursors.length);
      },
    } as never);
  });
  const store = new RemoteRunStore({
    transport,
    retry: { maxAttempts, initialBackoffMs: 1, maxBackoffMs: 1 },
  });
  return { store, cursors };
}

/** The first `n` events of a watch. */
async function take(events: AsyncGenerator<RunWatchEvent>, n: number): Promise<RunWatchEvent[]> {
  const out: RunWatchEvent[] = [];
  for await (const event of events) {
    out.push(event);
    if (out.length === n) break;
  }
  return out;
}

const unavailable = () => new ConnectError("database down", Code.Unavailable);

describe("watchRuns' attempts", () => {
  it("are counted since the last message: streams that each deliver go on past maxAttempts", async () => {
    // Every call: a heartbeat, one change, then ABORTED (a slow reader, ten times over).
    const { store, cursors } = scripted(async function* (after) {
      yield heartbeat(after);
      yield changeAt(after + 1);
      throw new ConnectError("fell behind", Code.Aborted);
    });
    const events = await take(store.watchRuns(), 20);
    const changes = events.flatMap((e) => (e.type === "change" ? [e.change] : []));
    expect(changes.map((c) => c.sequence)).toEqual(
      Array.from({ length: 10 }, (_, i) => BigInt(i + 1)),
    );
    expect(changes.every((c) => !c.repeated)).toBe(true);
    expect(cursors).toEqual(["", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  });

  it("run out after maxAttempts calls in a row without a message: the last error is thrown", async () => {
    const { store, cursors } = scripted(async function* (after, call) {
      if (call === 1) {
        yield heartbeat(after);
        yield changeAt(after + 1);
      }
      throw unavailable();
    });
    const events = store.watchRuns();
    expect((await take(events, 2)).map((e) => e.cursor)).toEqual(["0", "1"]);
    const error = await failureOf(store.watchRuns({ cursor: "1" }).next());
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("database down");
    // The first watch made 1 call; the second made maxAttempts (4), all from cursor 1.
    expect(cursors).toEqual(["", "1", "1", "1", "1"]);
  });

  it("a stream the server ends without an error is resumed like UNAVAILABLE", async () => {
    const { store, cursors } = scripted(async function* (after) {
      yield heartbeat(after);
      yield changeAt(after + 1);
    });
    const events = await take(store.watchRuns(), 6);
    expect(events.map((e) => e.cursor)).toEqual(["0", "1", "1", "2", "2", "3"]);
    expect(cursors).toEqual(["", "1", "2"]);
  });

  it("codes that a new call cannot mend are thrown at once", async () => {
    for (const code of [Code.OutOfRange, Code.InvalidArgument, Code.PermissionDenied]) {
      const { store, cursors } = scripted(async function* () {
        yield* [];
        throw new ConnectError("no", code);
      });
      expect((await failureOf(store.watchRuns().next())).code).toBe(code);
      expect(cursors).toEqual([""]);
    }
  });
});

describe("watchRuns' repeated", () => {
  it("marks a change at or below the highest sequence it yielded (a server that replays)", async () => {
    // Each call replays the change at its cursor before the next one.
    const { store } = scripted(async function* (after, call) {
      yield heartbeat(after);
      if (call > 1) yield changeAt(after);
      yield changeAt(after + 1);
      throw unavailable();
    });
    const events = await take(store.watchRuns(), 6);
    const changes = events.flatMap((e) => (e.type === "change" ? [e.change] : []));
    expect(changes.map((c) => [c.sequence, c.repeated])).toEqual([
      [1n, false],
      [1n, true],
      [2n, false],
    ]);
  });
});
