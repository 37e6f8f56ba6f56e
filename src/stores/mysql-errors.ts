import { Code, ConnectError } from "@connectrpc/connect";
import type { RunRecord } from "@runstore/client";
import { idempotencyConflictError, threadConflictError } from "@runstore/client/internal";

// MySQL / MariaDB server error numbers that mean "the database cannot serve
// this now, try again": the caller sees UNAVAILABLE, which clients retry.
const UNAVAILABLE_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR: too many connections
  1047, // ER_UNKNOWN_COM_ERROR: on a Galera node outside the Primary component, "WSREP has not yet prepared node for application use"
  1053, // ER_SERVER_SHUTDOWN
  1205, // ER_LOCK_WAIT_TIMEOUT (also a Galera causality wait that failed: wsrep_sync_wait on a node outside the Primary component)
  1213, // ER_LOCK_DEADLOCK, also Galera's certification conflict (every statement of ours is safe to retry)
  1317, // ER_QUERY_INTERRUPTED
  1927, // MariaDB ER_CONNECTION_KILLED
  2002, // CR_CONNECTION_ERROR
  2003, // CR_CONN_HOST_ERROR
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
  3024, // MySQL ER_QUERY_TIMEOUT (max_execution_time)
  4031, // MySQL ER_CLIENT_INTERACTION_TIMEOUT
]);

interface DriverError {
  errno?: number;
  sqlState?: string;
  fatal?: boolean;
  syscall?: string;
}

// The server refused a statement bigger than its max_allowed_packet (it then
// closes the connection, so sqlState is 08S01 and the error looks like a
// lost connection): trying again sends the same bytes and fails the same way.
const PACKET_TOO_LARGE_ERRNOS = new Set([
  1153, // ER_NET_PACKET_TOO_LARGE: the statement's packet
  1301, // ER_WARN_ALLOWED_PACKET_OVERFLOWED: a value built by the statement
  2020, // CR_NET_PACKET_TOO_LARGE (C client's number; mysql2 does not check)
]);

/**
 * Classifies a mysql2 error on errno / sqlState / fatal (never on message
 * text): a statement over max_allowed_packet becomes RESOURCE_EXHAUSTED
 * (never retried: it can never fit); connection loss, timeouts and overload
 * become UNAVAILABLE; both with a message free of SQL and credentials.
 * Anything else is returned unchanged, and the server answers it as a
 * scrubbed INTERNAL.
 */
export function mapMysqlError(error: unknown): unknown {
  if (error === null || typeof error !== "object" || error instanceof ConnectError) return error;
  const e = error as DriverError;
  if (isPacketTooLarge(error)) {
    return new ConnectError(
      "request too large for the database (over its max_allowed_packet)",
      Code.ResourceExhausted,
      undefined,
      undefined,
      error,
    );
  }
  const unavailable =
    e.fatal === true ||
    e.syscall !== undefined ||
    (e.errno !== undefined && UNAVAILABLE_ERRNOS.has(e.errno)) ||
    (e.sqlState?.startsWith("08") ?? false);
  return unavailable
    ? new ConnectError("database unavailable", Code.Unavailable, undefined, undefined, error)
    : error;
}

/**
 * mysql2's refusal of a connection request past the pool's queueLimit
 * (DB_POOL_QUEUE_LIMIT): a plain Error of lib/base/pool.js with neither
 * errno nor code, so its message is the one thing that tells it.
 */
export function isPoolQueueFull(error: unknown): boolean {
  return error instanceof Error && error.message === POOL_QUEUE_FULL_MESSAGE;
}

const POOL_QUEUE_FULL_MESSAGE = "Queue limit reached.";

/**
 * The answer to a call refused for a full pool queue: UNAVAILABLE naming
 * the setting. Without a retry hint: the call may have run statements
 * before this one, so it is retried only as any UNAVAILABLE is.
 */
export function poolQueueFull(queueLimit: number): ConnectError {
  return new ConnectError(
    `database overloaded: DB_POOL_QUEUE_LIMIT (${queueLimit}) requests already waiting for a connection`,
    Code.Unavailable,
  );
}

/** True for the server's refusal of a statement over max_allowed_packet (see PACKET_TOO_LARGE_ERRNOS). */
export function isPacketTooLarge(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const { errno } = error as DriverError;
  return errno !== undefined && PACKET_TOO_LARGE_ERRNOS.has(errno);
}

const ER_DUP_ENTRY = 1062;

/** Which unique index a duplicate-key error is about. */
export type DuplicateKey = "run_id" | "idempotency_key" | "thread_slot";

/** The unique indexes by name (mysql-migrations.ts). */
const UNIQUE_INDEXES: ReadonlyMap<string, DuplicateKey> = new Map([
  ["PRIMARY", "run_id"],
  ["runs_idempotency_key", "idempotency_key"],
  ["runs_active_thread", "thread_slot"],
]);

/**
 * The unique index a write collided with, for ER_DUP_ENTRY (errno 1062);
 * null for any other error. The index name is the last quoted word of the
 * server's message (MariaDB says `'runs_active_thread'`, MySQL 8.0.19+
 * `'runs.runs_active_thread'`): the one place the server reports it. An
 * index of no known name is null too, so the error surfaces as INTERNAL.
 */
export function duplicateKeyOf(error: unknown): DuplicateKey | null {
  if (error === null || typeof error !== "object") return null;
  const { errno, sqlMessage } = error as { errno?: unknown; sqlMessage?: unknown };
  if (errno !== ER_DUP_ENTRY || typeof sqlMessage !== "string") return null;
  const quoted = /'([^']*)'\s*$/.exec(sqlMessage)?.[1];
  const index = quoted?.slice(quoted.lastIndexOf(".") + 1);
  return index === undefined ? null : (UNIQUE_INDEXES.get(index) ?? null);
}

/** How to find who holds what a write collided with, read after its transaction rolled back. */
export interface DuplicateHolders {
  /** The row holding the idempotency key. */
  keyHolder(): Promise<RunRecord | null>;
  /** The thread and the run holding its active slot. */
  slotHolder(): Promise<{ threadId: string; runId: string } | null>;
}

/**
 * The conflict a duplicate key stands for: the idempotency index →
 * idempotencyConflictError with the row holding the key; the slot index →
 * threadConflictError naming the holder. null when the holder is gone by
 * the time it is read (the caller tries its write again) or the key is the
 * run id (the caller knows what that means for its write).
 */
export async function conflictOf(
  key: DuplicateKey,
  holders: DuplicateHolders,
): Promise<ConnectError | null> {
  switch (key) {
    case "idempotency_key": {
      const holder = await holders.keyHolder();
      return holder === null ? null : idempotencyConflictError(holder);
    }
    case "thread_slot": {
      const holder = await holders.slotHolder();
      return holder === null ? null : threadConflictError(holder.threadId, holder.runId);
    }
    default:
      return null;
  }
}
