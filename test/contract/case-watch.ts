import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import type { OperationKind, RunStatus } from "@runstore/client";
import {
  kindToProto,
  type pb,
  runFromProto,
  statusToProto,
  timestampFromProto,
} from "@runstore/client/internal";
import { assert } from "vitest";
import type { WireForm } from "./case-calls.js";
import type { CaseServers } from "./case-servers.js";
import { type CaseMemory, mismatches, resolve } from "./case-values.js";
import { expectedCount, type WatchAction } from "./case-watch-format.js";
import { openRawWatch, type RawWatchStream } from "./raw-watch-stream.js";

// How the watch steps of a case run (cases/README.md, "Watch steps"): each
// watch is a WatchRuns call on an HTTP/2 connection of its own with the
// generated messages (raw-watch-stream.ts; not the SDK's watchRuns), read
// message by message, only when a step reads.
// python/tests/contract/case_watch.py does the same with the grpc stub.

/** A step as written in a case file. */
type Step = Record<string, unknown>;

/**
 * How long one read may wait for a message, and an expectChanges for its
 * changes (heartbeats keep coming): a bound, so a hung stream fails naming the step.
 */
const READ_BOUND_MS = 20_000;

/** A change's kind as the cases write it, by RunChangeKind value. */
const KINDS = ["unspecified", "created", "updated", "deleted"];

/** A fixed-width UTC timestamp, as changed_at must be. */
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** One open WatchRuns call. */
interface Stream {
  replica: string;
  messages: RawWatchStream;
}

/** A change in the form the cases match: kind, the run in wire form, left_filter. */
interface WireChange {
  kind: string;
  run: unknown;
  left_filter: boolean;
}

/** A watch of a case, across its resumes. */
interface Watch {
  /** The filter it was opened with, resolved, without a cursor. */
  filter: Record<string, unknown>;
  token: string | undefined;
  /** The cursor of the last message received ("" before the first). */
  cursor: string;
  /** The highest sequence received (-1 before the first change). */
  sequence: bigint;
  stream: Stream | null;
  /** Changes received that no expectChanges has matched yet (read before an error). */
  unmatched: WireChange[];
}

/** Checks a failed (or not failed) call against a step's "error", "message" and "details". */
export type ExpectFailure = (error: ConnectError | undefined, step: Step, at: string) => void;

/** What the watch steps of a case need from the runner. */
export interface WatchContext {
  servers: CaseServers;
  memory: CaseMemory;
  wire: WireForm;
  /** The bearer token of a step: its "as" token, or the case's default. */
  tokenOf(name: string | undefined): string | undefined;
  expectFailure: ExpectFailure;
}

/** The WatchRunsRequest of a case's filter (wire names) and a cursor. */
function requestOf(filter: Record<string, unknown>, cursor: string) {
  const statuses = (filter.statuses as RunStatus[] | undefined) ?? [];
  const kinds = (filter.operation_kinds as OperationKind[] | undefined) ?? [];
  return {
    userId: filter.user_id as string | undefined,
    threadId: filter.thread_id as string | undefined,
    statuses: statuses.map((status) => statusToProto("statuses", status)),
    activeOnly: (filter.active_only as boolean | undefined) ?? false,
    operationKinds: kinds.map((kind) => kindToProto(kind)),
    cursor,
  };
}

/** The next message of a stream, or what ended it; fails after READ_BOUND_MS. */
async function nextMessage(stream: Stream, at: string): Promise<pb.WatchRunsResponse> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${at}: no message within ${READ_BOUND_MS} ms`)),
      READ_BOUND_MS,
    );
  });
  try {
    const next = await Promise.race([stream.messages.next(), bound]);
    if (next === null) return assert.fail(`${at}: the stream ended without an error`);
    return next;
  } finally {
    clearTimeout(timer);
  }
}

/** The watch steps of one case: the watches it opened and the replica its steps go through. */
export class WatchSteps {
  private readonly watches = new Map<string, Watch>();
  /** The replica the case's calls and new watches go through. */
  replica = "a";

  constructor(private readonly context: WatchContext) {}

  /** Runs one watch step. */
  async run(step: Step, action: WatchAction, where: string): Promise<void> {
    const at = `${where} (${action})`;
    const name = step[action] as string;
    switch (action) {
      case "watch":
        return this.open(step, name, at);
      case "resumeWatch":
        return this.resume(step, name, at);
      case "expectChanges":
        return this.expectChanges(step, name, at);
      case "closeWatch":
        return this.close(this.watchNamed(name));
      case "restartServer":
        await this.stopServer(this.replica);
        return this.context.servers.start(this.replica);
      case "stopServer":
        return this.stopServer(this.replica);
      case "startServer":
        return this.context.servers.start(this.replica);
      case "replica":
        await this.context.servers.start(name);
        this.replica = name;
        return;
    }
  }

  /** Ends every stream (the case is over). */
  closeAll(): void {
    for (const watch of this.watches.values()) this.close(watch);
  }

  private watchNamed(name: string): Watch {
    const watch = this.watches.get(name);
    if (watch === undefined) throw new Error(`no watch named ${name}`);
    return watch;
  }

  private async open(step: Step, name: string, at: string) {
    const previous = this.watches.get(name);
    if (previous !== undefined) this.close(previous);
    const filter = resolve(step.filter ?? {}, this.context.memory) as Record<string, unknown>;
    const { cursor = "", ...rest } = filter;
    const watch: Watch = {
      filter: rest,
      token: this.context.tokenOf(step.as as string | undefined),
      cursor: cursor as string,
      sequence: -1n,
      stream: null,
      unmatched: [],
    };
    this.watches.set(name, watch);
    await this.start(watch, watch.token, step, at);
    if (typeof step.save === "string" && watch.stream !== null) {
      this.context.memory.saved.set(step.save, { cursor: watch.cursor });
    }
  }

  private async resume(step: Step, name: string, at: string) {
    const watch = this.watchNamed(name);
    this.close(watch);
    const token = "as" in step ? this.context.tokenOf(step.as as string) : watch.token;
    await this.start(watch, token, step, at);
  }

  /**
   * Opens a call from the watch's cursor on the current replica and reads
   * its first message: a heartbeat with a cursor, or the step's error.
   */
  private async start(watch: Watch, token: string | undefined, step: Step, at: string) {
    const { servers } = this.context;
    const request = requestOf(watch.filter, watch.cursor);
    const messages = openRawWatch(servers.urlOf(this.replica), servers.protocol, token, request);
    const stream: Stream = { replica: this.replica, messages };
    watch.stream = stream;
    const first = await nextMessage(stream, at).then(
      (message) => ({ message, error: undefined }),
      (error: unknown) => ({ message: undefined, error }),
    );
    if (first.error !== undefined && !(first.error instanceof ConnectError)) throw first.error;
    if ("error" in step) {
      this.close(watch);
      return this.context.expectFailure(first.error as ConnectError | undefined, step, at);
    }
    if (first.error !== undefined) throw first.error;
    const message = first.message as pb.WatchRunsResponse;
    if (message.change !== undefined) {
      assert.fail(`${at}: the first message must be a heartbeat, got a change`);
    }
    assert.notStrictEqual(message.cursor, "", `${at}: the first heartbeat's cursor`);
    watch.cursor = message.cursor;
  }

  /**
   * Reads the changes the step expects (heartbeats skipped), then one more
   * message, which must be a heartbeat: nothing else was pending. With an
   * "error", reads until the stream fails with it; the changes read on the
   * way wait for the next expectChanges.
   */
  private async expectChanges(step: Step, name: string, at: string) {
    const watch = this.watchNamed(name);
    if ("error" in step) return this.readUntilError(watch, step, at);
    const count = expectedCount(step.changes) as number;
    const deadline = Date.now() + READ_BOUND_MS;
    while (watch.unmatched.length < count) {
      if (Date.now() > deadline) {
        assert.fail(
          `${at}: ${watch.unmatched.length} of ${count} changes within ${READ_BOUND_MS} ms`,
        );
      }
      await this.receive(watch, at);
    }
    if (watch.unmatched.length > count) {
      assert.fail(`${at}: ${watch.unmatched.length} changes came, ${count} expected`);
    }
    await this.expectHeartbeat(watch, at);
    const changes = watch.unmatched.splice(0);
    const expected = Array.isArray(step.changes)
      ? step.changes.map((change: Step) => ({ left_filter: false, ...change }))
      : step.changes;
    const problems = mismatches(changes, expected, this.context.memory);
    if (problems.length > 0) assert.fail(`${at}:\n  ${problems.join("\n  ")}`);
  }

  private async readUntilError(watch: Watch, step: Step, at: string) {
    const deadline = Date.now() + READ_BOUND_MS;
    let error: unknown;
    try {
      for (;;) {
        if (Date.now() > deadline) {
          const got = `${watch.unmatched.length} changes read`;
          assert.fail(`${at}: no ${step.error} within ${READ_BOUND_MS} ms (${got})`);
        }
        await this.receive(watch, at);
      }
    } catch (thrown) {
      error = thrown;
    }
    if (!(error instanceof ConnectError)) throw error;
    this.close(watch);
    this.context.expectFailure(error, step, at);
  }

  /** Reads one message: a change joins the unmatched ones, a heartbeat moves the cursor. */
  private async receive(watch: Watch, at: string) {
    const message = await nextMessage(this.openStream(watch, at), at);
    watch.cursor = message.cursor;
    if (message.change === undefined) return;
    watch.unmatched.push(this.changeOf(watch, message.change, at));
  }

  private async expectHeartbeat(watch: Watch, at: string) {
    const message = await nextMessage(this.openStream(watch, at), at);
    watch.cursor = message.cursor;
    if (message.change !== undefined) {
      const extra = JSON.stringify(this.changeOf(watch, message.change, at));
      assert.fail(`${at}: a change came after the expected ones, before a heartbeat: ${extra}`);
    }
  }

  private openStream(watch: Watch, at: string): Stream {
    if (watch.stream === null) assert.fail(`${at}: the watch has no open stream`);
    return watch.stream as Stream;
  }

  /**
   * A change in wire form, after checking what every change must be: a
   * sequence above every one the watch received (no repeat, in order, across
   * resumes) and a fixed-width changed_at.
   */
  private changeOf(watch: Watch, change: pb.RunChange, at: string): WireChange {
    if (change.sequence <= watch.sequence) {
      assert.fail(
        `${at}: sequence ${change.sequence} after ${watch.sequence}: repeated or out of order`,
      );
    }
    watch.sequence = change.sequence;
    if (change.changedAt === undefined) assert.fail(`${at}: a change without changed_at`);
    const changedAt = timestampFromProto(change.changedAt as Timestamp, "changed_at");
    assert.match(changedAt, TIMESTAMP, `${at}: changed_at`);
    if (change.run === undefined) assert.fail(`${at}: a change without a run`);
    return {
      kind: KINDS[change.kind] ?? `unknown ${change.kind}`,
      run: this.context.wire.record(runFromProto(change.run as pb.Run)),
      left_filter: change.leftFilter,
    };
  }

  private close(watch: Watch) {
    const stream = watch.stream;
    if (stream === null) return;
    watch.stream = null;
    stream.messages.close();
  }

  /** Stops the replica's server after ending the streams open on it (as its clients see a restart). */
  private async stopServer(replica: string) {
    for (const watch of this.watches.values()) {
      if (watch.stream?.replica === replica) this.close(watch);
    }
    await this.context.servers.stop(replica);
  }
}
