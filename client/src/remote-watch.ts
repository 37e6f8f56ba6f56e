import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { brokenConnection, connectionLost, refusedStream } from "./connection-errors.js";
import { checkOperationKind, kindToProto } from "./coordination.js";
import {
  type RunChange,
  RunStoreService,
  type WatchRunsRequest,
  type WatchRunsResponse,
} from "./gen/runstore/v1/run_store_pb.js";
import { runFromProto, statusToProto } from "./proto-convert.js";
import { listField } from "./remote-history.js";
import { text } from "./remote-request.js";
import type { RemoteCallOptions } from "./remote-run-store.js";
import { backoffMs, type RetryPolicy, sleep, wireTimeout } from "./retry.js";
import { timestampFromProto } from "./timestamp.js";
import { refusedCertificateAsUnauthenticated } from "./tls-errors.js";
import { startCallSpan } from "./tracing.js";
import { checkBoolean, invalidArgument } from "./validation.js";
import {
  RUN_CHANGE_KINDS,
  type RunChangeEvent,
  type RunWatchEvent,
  type WatchRunsFilter,
} from "./watch.js";

// RemoteRunStore.watchRuns: one WatchRuns call after another, each resumed
// from the last cursor yielded, so a consumer sees one iterator across lost
// connections, restarted replicas and slow-reader aborts. Each attempt is a
// stream call of its own, cancelled when the attempt ends, so a consumer's
// `break` closes the stream on the server.

/** What a watch needs of its RemoteRunStore. */
export interface WatchContext {
  client: Client<typeof RunStoreService>;
  /** The store's headers (its token). */
  headers: Readonly<Record<string, string>>;
  retry: RetryPolicy;
  /** Aborted by the store's close(). */
  closed: AbortSignal;
  /** What notices a refused client certificate (RemoteConnections.watch). */
  refusals: Parameters<typeof refusedCertificateAsUnauthenticated>[0];
}

/** The WatchRuns request fields, the cursor aside. */
type WatchRequest = Omit<WatchRunsRequest, "$typeName" | "$unknown">;

/**
 * The changes matching `filter`, as RemoteRunStore.watchRuns documents
 * them. The filter is checked when the iteration starts (the first next()).
 * One client span covers the whole watch, every resume included.
 */
export async function* watchRuns(
  context: WatchContext,
  filter: WatchRunsFilter | undefined,
  call: RemoteCallOptions | undefined,
): AsyncGenerator<RunWatchEvent, void, undefined> {
  const request = watchRequest(filter);
  const { signal, end } = linkedSignal([call?.signal, context.closed]);
  const span = startCallSpan(RunStoreService.typeName, RunStoreService.method.watchRuns.name);
  const headers = { ...context.headers, ...span.headers };
  try {
    yield* resumingWatch(context, request, signal, deadlineOf(call?.timeoutMs), headers);
  } catch (error) {
    span.fail(Code[ConnectError.from(error).code] ?? "unknown");
    throw error;
  } finally {
    end();
    span.end();
  }
}

/**
 * Streams after streams, each from the last cursor yielded, while they fail
 * in a way a new call may mend (`resumable`); the retry policy's attempts
 * are counted since the last message received, with its backoff between.
 */
async function* resumingWatch(
  context: WatchContext,
  request: WatchRequest,
  signal: AbortSignal,
  deadline: number | undefined,
  headers: Record<string, string>,
): AsyncGenerator<RunWatchEvent, void, undefined> {
  let cursor = request.cursor;
  let highest: bigint | undefined;
  let failures = 0;
  for (;;) {
    let failure: ConnectError;
    try {
      const options = { signal, timeoutMs: remaining(deadline), headers };
      for await (const message of oneStream(context, { ...request, cursor }, options)) {
        failures = 0;
        const event = eventOf(message, highest);
        if (event.type === "change" && !event.change.repeated) highest = event.change.sequence;
        cursor = event.cursor;
        yield event;
      }
      failure = new ConnectError("the server ended the watch stream", Code.Unavailable);
    } catch (error) {
      if (!resumable(error, signal)) throw error;
      failure = asResumable(error);
    }
    failures++;
    if (failures >= context.retry.maxAttempts) throw failure;
    const delay = backoffMs(failures, context.retry);
    if (deadline !== undefined && performance.now() + delay + 1 >= deadline) throw failure;
    await sleep(delay, signal);
  }
}

/**
 * One WatchRuns call's messages. The call is cancelled when the iteration
 * ends for any reason (the consumer's break included). A refused client
 * certificate shows on the first message and is thrown as UNAUTHENTICATED.
 */
async function* oneStream(
  context: WatchContext,
  request: WatchRequest,
  options: { signal: AbortSignal; timeoutMs: number | undefined; headers: Record<string, string> },
): AsyncGenerator<WatchRunsResponse, void, undefined> {
  const { signal, end } = linkedSignal([options.signal]);
  try {
    const stream = context.client.watchRuns(request, { ...options, signal });
    const messages = stream[Symbol.asyncIterator]();
    const first = await refusedCertificateAsUnauthenticated(context.refusals, signal, () =>
      messages.next(),
    );
    if (first.done === true) return;
    yield first.value;
    for (let next = await messages.next(); next.done !== true; next = await messages.next()) {
      yield next.value;
    }
  } finally {
    end();
  }
}

/**
 * Whether a new call from the last cursor may mend `error`: UNAVAILABLE
 * (the server or its database cannot serve now, or is shutting down),
 * ABORTED (the stream fell behind, or connect-node's report of a reset
 * connection), or a connection lost or closed under the call, which
 * connect-node reports as CANCELED when the caller did not cancel. Nothing
 * is resumable once the consumer's signal or the store's close() aborted.
 */
function resumable(error: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return false;
  const code = ConnectError.from(error).code;
  return (
    code === Code.Unavailable ||
    code === Code.Aborted ||
    code === Code.Canceled ||
    brokenConnection(error) ||
    refusedStream(error)
  );
}

/** A resumable failure as thrown when the attempts run out: a lost connection as UNAVAILABLE. */
function asResumable(error: unknown): ConnectError {
  const e = ConnectError.from(error);
  if (e.code === Code.Unavailable || e.code === Code.Aborted) return e;
  return connectionLost(error);
}

/** The filter as request fields; what the wire cannot carry is refused naming the field. */
function watchRequest(filter: WatchRunsFilter | undefined): WatchRequest {
  if (filter !== undefined && (filter === null || typeof filter !== "object")) {
    throw invalidArgument("filter", "must be an object of filters");
  }
  const f = filter ?? {};
  return {
    userId: text("user_id", f.userId),
    threadId: text("thread_id", f.threadId),
    statuses: listField("statuses", f.statuses).map((status, i) =>
      statusToProto(`statuses[${i}]`, status),
    ),
    activeOnly: checkBoolean("active_only", f.activeOnly ?? false),
    operationKinds: listField("operation_kinds", f.operationKinds).map((kind, i) =>
      kindToProto(checkOperationKind(`operation_kinds[${i}]`, kind)),
    ),
    cursor: text("cursor", f.cursor) ?? "",
  };
}

/** A message as the event yielded; `highest` is the highest sequence yielded so far. */
function eventOf(message: WatchRunsResponse, highest: bigint | undefined): RunWatchEvent {
  if (message.cursor === "") throw serverSent("a message without a cursor");
  if (message.change === undefined) return { type: "heartbeat", cursor: message.cursor };
  return { type: "change", change: changeOf(message.change, highest), cursor: message.cursor };
}

function changeOf(change: RunChange, highest: bigint | undefined): RunChangeEvent {
  const kind = RUN_CHANGE_KINDS[change.kind - 1];
  if (kind === undefined) throw serverSent(`a change of unknown kind ${change.kind}`);
  if (change.run === undefined) throw serverSent("a change without its run");
  if (change.changedAt === undefined) throw serverSent("a change without changed_at");
  return {
    kind,
    run: runFromProto(change.run),
    sequence: change.sequence,
    changedAt: timestampFromProto(change.changedAt, "changed_at"),
    leftFilter: change.leftFilter,
    repeated: highest !== undefined && change.sequence <= highest,
  };
}

function serverSent(what: string): ConnectError {
  return new ConnectError(`the server sent ${what} in a WatchRuns stream`, Code.Internal);
}

/** The watch's deadline on performance.now()'s clock; none unless the caller gave a timeout. */
function deadlineOf(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs <= 0 ? undefined : performance.now() + timeoutMs;
}

/** What is left of the deadline as one call's timeout (at least 1 ms); undefined: none. */
function remaining(deadline: number | undefined): number | undefined {
  return deadline === undefined
    ? undefined
    : wireTimeout(Math.max(1, deadline - performance.now()));
}

/**
 * A signal that aborts when any of `signals` does, with its reason, or
 * when `end()` is called (which also removes the listeners).
 */
function linkedSignal(signals: readonly (AbortSignal | undefined)[]): {
  signal: AbortSignal;
  end: () => void;
} {
  const controller = new AbortController();
  const unlinks: (() => void)[] = [];
  for (const source of signals) {
    if (source === undefined) continue;
    if (source.aborted) controller.abort(source.reason);
    const onAbort = () => controller.abort(source.reason);
    source.addEventListener("abort", onAbort, { once: true });
    unlinks.push(() => source.removeEventListener("abort", onAbort));
  }
  return {
    signal: controller.signal,
    end() {
      for (const unlink of unlinks) unlink();
      controller.abort(new ConnectError("the watch ended", Code.Canceled));
    },
  };
}
