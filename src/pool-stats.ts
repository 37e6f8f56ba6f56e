// A store backed by a connection pool says how busy the pool is, so the
// metrics endpoint can show pool exhaustion (the first thing to look at when
// database calls slow down) without knowing which driver the store uses.

/** A connection pool at one moment. NaN: the driver could not say. */
export interface PoolStats {
  /** The connection limit (0: no limit). */
  size: number;
  /** Connections open now, busy or idle. */
  open: number;
  /** Idle connections among the open ones. */
  free: number;
  /** Requests waiting for a connection. */
  queued: number;
}

/** A store with a connection pool (MysqlRunStore). */
export interface ReportsPoolStats {
  /** Read at scrape time: cheap, and never waits for the pool. */
  poolStats(): PoolStats;
}

/** Whether `store` reports on a connection pool. */
export function reportsPoolStats(store: object): store is ReportsPoolStats {
  return typeof (store as Partial<ReportsPoolStats>).poolStats === "function";
}
