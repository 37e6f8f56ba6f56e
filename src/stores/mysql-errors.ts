import { Code, ConnectError } from "@connectrpc/connect";

// MySQL / MariaDB server error numbers that mean "the database cannot serve
// this now, try again": the caller sees UNAVAILABLE, which clients retry.
const UNAVAILABLE_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR: too many connections
  1053, // ER_SERVER_SHUTDOWN
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK (every statement of ours is safe to retry)
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

/**
 * Classifies a mysql2 error on errno / sqlState / fatal (never on message
 * text): connection loss, timeouts and overload become UNAVAILABLE with a
 * message free of SQL and credentials. Anything else is returned unchanged,
 * and the server answers it as a scrubbed INTERNAL.
 */
export function mapMysqlError(error: unknown): unknown {
  if (error === null || typeof error !== "object" || error instanceof ConnectError) return error;
  const e = error as DriverError;
  const unavailable =
    e.fatal === true ||
    e.syscall !== undefined ||
    (e.errno !== undefined && UNAVAILABLE_ERRNOS.has(e.errno)) ||
    (e.sqlState?.startsWith("08") ?? false);
  return unavailable
    ? new ConnectError("database unavailable", Code.Unavailable, undefined, undefined, error)
    : error;
}
