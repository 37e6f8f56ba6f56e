import { createPool, type Pool, type PoolOptions } from "mysql2";

/** How to reach MySQL / MariaDB, as read from the environment. */
export interface MysqlOptions {
  /** `mysql://user:pass@host:port/database` */
  url: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** Milliseconds to wait for a new connection. Default 10000. */
  connectTimeoutMs?: number;
  /** Milliseconds a single statement may take before it fails as UNAVAILABLE. Default 10000. */
  queryTimeoutMs?: number;
  /**
   * Requests that may wait for a connection; one more fails at once
   * (isPoolQueueFull, mysql-errors.ts). Default 0: no bound, as mysql2's
   * own default, for a store used in-process; the server sets
   * DB_POOL_QUEUE_LIMIT (default 4 × DB_POOL_SIZE, config.ts).
   */
  poolQueueLimit?: number;
  /**
   * UpdateRunProgress writes that may wait for a group-commit batch
   * (MYSQL_PROGRESS_BATCH, mysql-progress-batch.ts); 0: no group commit.
   * Default: the environment's MYSQL_PROGRESS_BATCH, else 400.
   */
  progressBatch?: number;
}

// Every new connection speaks UTC, refuses to truncate silently, and reads
// committed data without gap locks (each statement of ours is its own
// transaction, so REPEATABLE READ would only add deadlocks between
// concurrent updates of one run), whatever the server's defaults are. Its
// lock waits (row locks: innodb_lock_wait_timeout; metadata locks:
// lock_wait_timeout, on MySQL and MariaDB alike) end with the query timeout,
// in whole seconds rounded up: a statement the store gave up on, and whose
// KILL QUERY could not be delivered, stops waiting by itself at about the
// same time instead of applying up to 50 s (the default) later.
function sessionSetup(queryTimeoutMs: number): string[] {
  const lockWaitSeconds = Math.max(1, Math.ceil(queryTimeoutMs / 1000));
  return [
    "SET time_zone = '+00:00', " +
      "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    `SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}, lock_wait_timeout = ${lockWaitSeconds}`,
  ];
}

/**
 * Causality checks on a Galera node (MariaDB Galera, Percona XtraDB
 * Cluster): every read (SELECT, and BEGIN, so a whole transaction) and
 * every UPDATE / DELETE first waits until this node has applied every
 * write committed anywhere in the cluster before it began, so a call sees
 * what an earlier call committed through another node (without it a Get
 * right after a Put through another node missed the run 65 times in 300,
 * an UPDATE 4 in 300 with reads alone checked). INSERTs do not wait: one
 * that collides with a row committed elsewhere fails certification and is
 * retried whole. Elsewhere the variable is inert (MariaDB without wsrep)
 * or unknown (MySQL: ER_UNKNOWN_SYSTEM_VARIABLE, ignored). docs/mysql.md
 * "Galera cluster" has its measured cost.
 */
const CAUSAL_READS = "SET SESSION wsrep_sync_wait = 3";
const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;

/**
 * A mysql2 pool set up the way every query of ours expects: DATETIME and
 * JSON read back as strings (so microseconds survive and MySQL 8 and MariaDB
 * answer alike), DECIMAL sums as numbers, FOUND_ROWS on so an UPDATE's
 * affectedRows counts rows matched, not rows changed, lock waits bounded
 * by the query timeout (sessionSetup), and on a Galera node causality
 * checks (CAUSAL_READS).
 */
export function createMysqlPool(options: MysqlOptions, overrides: PoolOptions = {}): Pool {
  const pool = createPool({
    uri: options.url,
    connectionLimit: options.poolSize ?? 10,
    // In the server nothing waits unbounded for a connection, whoever asks
    // (calls, retention, the change feed): past the limit the wait fails at once.
    queueLimit: options.poolQueueLimit ?? 0,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    charset: "UTF8MB4_UNICODE_CI",
    timezone: "Z",
    dateStrings: true,
    jsonStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    flags: ["+FOUND_ROWS"],
    enableKeepAlive: true,
    multipleStatements: false,
    // mysql2's statement cache preallocates four arrays of this many slots
    // per connection: its default of 16,000 is 512 KB a connection, 32 MB
    // for a pool of 64 (the bench's heap snapshot). We prepare about a dozen
    // statements; 64 leaves room without the waste.
    maxPreparedStatements: 64,
    // mysql2's promise API captures a stack trace for every statement when
    // `trace` is on (its default), to name the caller in a driver error:
    // 2.7 % of the server's CPU in issue 18's profile. Our errors are mapped
    // (mysql-errors.ts) and logged with the call, not the driver's stack.
    trace: false,
    ...overrides,
  });
  const setup = sessionSetup(options.queryTimeoutMs ?? 10_000);
  pool.on("connection", (connection) => {
    for (const statement of setup) {
      connection.query(statement, (error) => {
        // A connection that cannot be set up must not serve queries.
        if (error) connection.destroy();
      });
    }
    connection.query(CAUSAL_READS, (error) => {
      if (error && error.errno !== ER_UNKNOWN_SYSTEM_VARIABLE) connection.destroy();
    });
  });
  return pool;
}
