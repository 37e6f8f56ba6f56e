import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import {
  checkOptionalId,
  invalidArgument,
  kindFromProto,
  pb,
  runToProto,
  statusFromProto,
  timestampToProto,
} from "@runstore/client/internal";
import { principalKey } from "./auth/principal-key.js";
import { denied } from "./auth/scoped-run-store.js";
import { connectionKey } from "./health.js";
import type { ChangeKind } from "./stores/change-feed.js";
import { decodeCursor, encodeCursor } from "./watch/watch-cursor.js";
import type { WatchFilter } from "./watch/watch-filter.js";
import type { WatchHub } from "./watch/watch-hub.js";
import { type WatchMessage, watchStream } from "./watch/watch-stream.js";

// WatchRuns (docs/contract.md, "Live changes"): the request checked into a
// filter (a user-bound token sees only its users' rows, as SearchRuns does),
// then the call's stream (src/watch/watch-stream.ts) as response messages.

type Response = MessageInitShape<typeof pb.WatchRunsResponseSchema>;

/** What WatchRuns needs of the call: its signal and (from the interceptors) its context values. */
interface WatchContext {
  readonly signal: AbortSignal;
  readonly values?: ContextValues;
}

const KIND_TO_PROTO: Record<ChangeKind, pb.RunChangeKind> = {
  created: pb.RunChangeKind.CREATED,
  updated: pb.RunChangeKind.UPDATED,
  deleted: pb.RunChangeKind.DELETED,
};

/**
 * The messages of one WatchRuns call: every check (INVALID_ARGUMENT naming
 * the field, PERMISSION_DENIED for another user of a bound token, the
 * cursor) happens before the first message.
 */
export async function* watchRuns(
  hub: WatchHub,
  req: pb.WatchRunsRequest,
  context: WatchContext,
  heartbeatMs: number,
): AsyncGenerator<Response> {
  const users = context.values?.get(principalKey)?.users ?? null;
  const filter = filterOf(req, users);
  const cursor = req.cursor === "" ? null : decodeCursor(req.cursor);
  const identity = await hub.identity();
  const messages = watchStream(hub, {
    filter,
    cursor,
    connection: context.values?.get(connectionKey) ?? null,
    heartbeatMs,
    signal: context.signal,
  });
  for await (const message of messages) yield toProto(message, identity);
}

/** The request's filter, checked; a bound token's users limit it. */
export function filterOf(req: pb.WatchRunsRequest, users: ReadonlySet<string> | null): WatchFilter {
  const userId = checkOptionalId("user_id", req.userId);
  const threadId = checkOptionalId("thread_id", req.threadId);
  const statuses = elements("statuses", req.statuses, statusFromProto);
  const kinds = elements("operation_kinds", req.operationKinds, kindFromProto);
  if (userId !== null && users !== null && !users.has(userId)) {
    throw denied("user_id is not one of this token's users");
  }
  return {
    userId,
    users,
    threadId,
    statuses: new Set(statuses),
    activeOnly: req.activeOnly,
    operationKinds: new Set(kinds.length === 0 ? ["run"] : kinds),
  };
}

/** A repeated enum's values, each named by its index; UNSPECIFIED is no value in a list (as SearchRuns). */
function elements<T>(field: string, values: number[], convert: (f: string, v: number) => T): T[] {
  return values.map((value, i) => {
    if (value === 0) throw invalidArgument(`${field}[${i}]`, "must not be UNSPECIFIED");
    return convert(`${field}[${i}]`, value);
  });
}

function toProto(message: WatchMessage, identity: string): Response {
  const cursor = encodeCursor(identity, message.position);
  const change = message.change;
  if (change === null) return { cursor };
  return {
    cursor,
    change: {
      kind: KIND_TO_PROTO[change.kind],
      run: runToProto(change.run),
      sequence: change.sequence,
      changedAt: timestampToProto(change.changedAt),
      leftFilter: change.leftFilter,
    },
  };
}

/** WatchRuns on a store that keeps no change log. */
export function noChangeLog(): ConnectError {
  return new ConnectError(
    "WatchRuns needs a store that keeps a change log (the memory or MySQL store)",
    Code.Unimplemented,
  );
}
