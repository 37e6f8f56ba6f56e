import {
  Kysely,
  type Migration,
  type MigrationResultSet,
  Migrator,
  MysqlDialect,
  sql,
} from "kysely";
import { CREATE_LEASES, withMigrationLease } from "./mysql-migration-lease.js";
import { createMysqlPool, type MysqlOptions } from "./mysql-pool.js";

// Kysely's Migrator runs these: it records applied migrations in a table.
// Its own lock (GET_LOCK) is local to one node of a Galera cluster, so the
// whole run holds the migration lease (mysql-migration-lease.ts): replicas
// starting at once, on one server or on several nodes of a cluster, apply
// each migration exactly once and the others wait. DDL reaches every node
// of a cluster through Galera's total order isolation. Only the migrator is
// used; the store itself speaks mysql2 directly.

/**
 * Ids, thread ids, user ids and model names are VARBINARY: compared byte for
 * byte (so "a" and "a " or "A" are different runs, which no PAD SPACE or
 * case-insensitive collation guarantees on both MySQL 8 and MariaDB), and
 * ordered by UTF-8 bytes, which is code point order. Free text is utf8mb4;
 * error is LONGTEXT so long tracebacks fit. Counters are BIGINT; instants
 * DATETIME(6) in UTC.
 */
const createRuns: Migration = {
  async up(db) {
    await sql`
      CREATE TABLE runs (
        run_id VARBINARY(256) NOT NULL,
        thread_id VARBINARY(256) NOT NULL,
        assistant_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        user_id VARBINARY(256) NULL,
        model_name VARBINARY(512) NULL,
        status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        multitask_strategy VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        metadata JSON NOT NULL,
        kwargs JSON NOT NULL,
        error LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        created_at DATETIME(6) NOT NULL,
        updated_at DATETIME(6) NOT NULL,
        total_input_tokens BIGINT NOT NULL DEFAULT 0,
        total_output_tokens BIGINT NOT NULL DEFAULT 0,
        total_tokens BIGINT NOT NULL DEFAULT 0,
        llm_call_count BIGINT NOT NULL DEFAULT 0,
        lead_agent_tokens BIGINT NOT NULL DEFAULT 0,
        subagent_tokens BIGINT NOT NULL DEFAULT 0,
        middleware_tokens BIGINT NOT NULL DEFAULT 0,
        message_count BIGINT NOT NULL DEFAULT 0,
        last_ai_message TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        first_human_message TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        PRIMARY KEY (run_id),
        KEY runs_thread_created (thread_id, created_at),
        KEY runs_status_created (status, created_at),
        KEY runs_user (user_id)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
    `.execute(db);
  },
};

/**
 * Part 2 (coordination between workers). Existing rows read back as part 1
 * wrote them: kind run, no owner, lease or cancel, an empty usage map, not
 * queued, holding no slot. Worker ids and idempotency keys are VARBINARY
 * like the other ids (compared exactly: "k" and "k " are two keys; 255 and
 * 128 code points fit in 4 bytes each), the idempotency key is unique with
 * NULLs allowed, and the thread's active slot is enforced here, not in any
 * server process: active_thread_id holds the thread only while the row is
 * an admitted (or claimed) operation that is pending or running, and its
 * UNIQUE index lets one such row exist per thread across every replica.
 * runs_thread_status finds a thread's active rows without walking its
 * history (the admission's locking read then locks only those);
 * runs_queued_created serves claimNextRun's oldest-queued-first scan.
 */
const coordination: Migration = {
  async up(db) {
    await sql`
      ALTER TABLE runs
        ADD COLUMN operation_kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'run',
        ADD COLUMN stop_reason VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        ADD COLUMN owner_worker_id VARBINARY(512) NULL,
        ADD COLUMN lease_expires_at DATETIME(6) NULL,
        ADD COLUMN cancel_action VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
        ADD COLUMN cancel_requested_at DATETIME(6) NULL,
        ADD COLUMN idempotency_key VARBINARY(1020) NULL,
        ADD COLUMN follow_up_to_run_id VARBINARY(256) NULL,
        ADD COLUMN token_usage_by_model JSON NOT NULL DEFAULT (JSON_OBJECT()),
        ADD COLUMN queued BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN holds_slot BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN active_thread_id VARBINARY(256) GENERATED ALWAYS AS (
          CASE WHEN holds_slot = 1 AND status IN ('pending', 'running') THEN thread_id END
        ) STORED,
        ADD UNIQUE KEY runs_idempotency_key (idempotency_key),
        ADD UNIQUE KEY runs_active_thread (active_thread_id),
        ADD KEY runs_thread_status (thread_id, status, created_at),
        ADD KEY runs_queued_created (queued, created_at)
    `.execute(db);
  },
};

/**
 * Part 3 (history): indexes for the cross-thread reads, each ending in
 * (created_at, run_id) so a keyset page (newest or oldest first) is one
 * index range read in order, with no filesort. operation_kind leads: every
 * history read names its kinds (runs only by default), and a search over
 * several kinds or statuses reads one range per (kind, status) and merges
 * them. runs_kind_created: every user, any status (and GetRunStats' scan);
 * runs_kind_status_created: status + time (and ListPending);
 * runs_kind_user_created: user + time; runs_kind_user_status_created:
 * user + status + time. None holds a column a run's progress rewrites
 * except status. Additive: existing rows need nothing.
 */
const history: Migration = {
  async up(db) {
    await sql`
      ALTER TABLE runs
        ADD KEY runs_kind_created (operation_kind, created_at, run_id),
        ADD KEY runs_kind_status_created (operation_kind, status, created_at, run_id),
        ADD KEY runs_kind_user_created (operation_kind, user_id, created_at, run_id),
        ADD KEY runs_kind_user_status_created (operation_kind, user_id, status, created_at, run_id)
    `.execute(db);
  },
};

/**
 * Retention (RETENTION_DAYS, mysql-retention.ts): runs_status_updated lets
 * a sweep batch read the oldest terminal runs of each status in index
 * order, stopping after the batch's rows, without touching active ones;
 * it is rewritten by every write that moves updated_at, the cost of
 * sweeping by updated_at. runstore_leases holds the sweep's lease (one row
 * per lease name): every replica of the database races for it with one
 * upsert on the database clock, so one sweeps at a time; a row lock, not
 * GET_LOCK, so it holds across a Galera cluster too. Additive.
 */
const retention: Migration = {
  async up(db) {
    // The table first, IF NOT EXISTS: DDL commits itself, so a run cut off
    // between the two statements is finished by the next one. (migrate()
    // creates it too, before this runs: the migration lease lives in it.)
    await sql.raw(CREATE_LEASES).execute(db);
    await sql`ALTER TABLE runs ADD KEY runs_status_updated (status, updated_at)`.execute(db);
  },
};

/**
 * The change log behind WatchRuns (docs/mysql.md "Change log";
 * mysql-change-feed.ts numbers and reads it). runstore_changes holds one row
 * per committed change of a run: the change columns, then a copy of every
 * column of `runs` with the same name and type (so mysql-rows.ts reads it as
 * it reads a run), the row after the change or, for a delete, as it was.
 * Three triggers write it in the writer's own transaction: no extra round
 * trip, every write path covered (a rolled-back write leaves none), and
 * Galera replicates the change rows as rows (the appliers fire no
 * triggers). change_id is the insert order on one node; change_seq, the
 * position watchers see, is given later by the sequencer in commit order
 * (NULL until then): changes_unnumbered serves its `change_seq IS NULL ORDER
 * BY change_id` scan (a UNIQUE index cannot: MariaDB sorts then), the
 * unique changes_seq the reads by position and catches a number given
 * twice. runstore_change_counter's one row holds the last number given and
 * the log's identity, a random id drawn once per database.
 *
 * Schema evolution: a migration that adds a column to `runs` must add it
 * to runstore_changes too (same name and type) and re-create the triggers
 * with createChangeTriggers(), in the same migration. Each statement may
 * run twice (DDL commits itself, so a run cut off midway is finished by the
 * next one).
 */
const changes: Migration = {
  async up(db) {
    await sql`
      CREATE TABLE IF NOT EXISTS runstore_changes (
        change_id BIGINT NOT NULL AUTO_INCREMENT,
        change_seq BIGINT NULL,
        change_kind VARCHAR(7) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        changed_at DATETIME(6) NOT NULL,
        previous_status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
        run_id VARBINARY(256) NOT NULL,
        thread_id VARBINARY(256) NOT NULL,
        assistant_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        user_id VARBINARY(256) NULL,
        model_name VARBINARY(512) NULL,
        status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        multitask_strategy VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        metadata JSON NOT NULL,
        kwargs JSON NOT NULL,
        error LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        created_at DATETIME(6) NOT NULL,
        updated_at DATETIME(6) NOT NULL,
        total_input_tokens BIGINT NOT NULL,
        total_output_tokens BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL,
        llm_call_count BIGINT NOT NULL,
        lead_agent_tokens BIGINT NOT NULL,
        subagent_tokens BIGINT NOT NULL,
        middleware_tokens BIGINT NOT NULL,
        message_count BIGINT NOT NULL,
        last_ai_message TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        first_human_message TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        operation_kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        stop_reason VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        owner_worker_id VARBINARY(512) NULL,
        lease_expires_at DATETIME(6) NULL,
        cancel_action VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
        cancel_requested_at DATETIME(6) NULL,
        idempotency_key VARBINARY(1020) NULL,
        follow_up_to_run_id VARBINARY(256) NULL,
        token_usage_by_model JSON NOT NULL,
        queued BOOLEAN NOT NULL,
        holds_slot BOOLEAN NOT NULL,
        active_thread_id VARBINARY(256) NULL,
        PRIMARY KEY (change_id),
        UNIQUE KEY changes_seq (change_seq),
        KEY changes_unnumbered (change_seq, change_id)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin
    `.execute(db);
    await sql`
      CREATE TABLE IF NOT EXISTS runstore_change_counter (
        id TINYINT NOT NULL,
        last_seq BIGINT NOT NULL,
        feed_id VARCHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE = InnoDB
    `.execute(db);
    await sql`INSERT IGNORE INTO runstore_change_counter (id, last_seq, feed_id) VALUES (1, 0, UUID())`.execute(
      db,
    );
    await createChangeTriggers(db);
  },
};

/** The change triggers: the event, the change kind, the row copied (NEW or OLD), the previous status. */
const CHANGE_TRIGGERS = [
  ["INSERT", "created", "NEW", "NULL"],
  ["UPDATE", "updated", "NEW", "OLD.status"],
  ["DELETE", "deleted", "OLD", "OLD.status"],
] as const;

/**
 * (Re)creates the three change triggers, copying every column `runs` has
 * now; refuses when runstore_changes lacks one (a trigger naming a missing
 * column would fail every write, not its creation). 0005 runs it; a later
 * migration that adds a column to `runs` adds it to runstore_changes too
 * (same name and type) and runs it again.
 */
export async function createChangeTriggers(db: Kysely<unknown>): Promise<void> {
  const columns = await columnNames(db, "runs");
  const copies = new Set(await columnNames(db, "runstore_changes"));
  const missing = columns.filter((column) => !copies.has(column));
  if (missing.length > 0) {
    throw new Error(
      `runstore_changes lacks the runs column(s) ${missing.join(", ")}: ` +
        "add them (same name and type) in the migration that adds them to runs",
    );
  }
  const list = columns.map((column) => `\`${column}\``);
  for (const [event, kind, row, previous] of CHANGE_TRIGGERS) {
    const name = `runs_change_${event.toLowerCase()}`;
    await sql.raw(`DROP TRIGGER IF EXISTS ${name}`).execute(db);
    await sql
      .raw(
        `CREATE TRIGGER ${name} AFTER ${event} ON runs FOR EACH ROW ` +
          `INSERT INTO runstore_changes (change_kind, changed_at, previous_status, ${list.join(", ")}) ` +
          `VALUES ('${kind}', UTC_TIMESTAMP(6), ${previous}, ${list.map((c) => `${row}.${c}`).join(", ")})`,
      )
      .execute(db);
  }
}

/** A table's column names in table order. */
async function columnNames(db: Kysely<unknown>, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table} ORDER BY ORDINAL_POSITION
  `.execute(db);
  return rows.map((row) => row.name);
}

/** Every migration, by name; names sort in the order they apply. Never edit an applied one. */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_create_runs": createRuns,
  "0002_coordination": coordination,
  "0003_history": history,
  "0004_retention": retention,
  "0005_changes": changes,
};

/** The table that records applied migrations. */
export const MIGRATION_TABLE = "runstore_migration";

/**
 * Brings the database named in the URL up to the latest schema, creating
 * the database first when it does not exist. Safe to run from several
 * processes at once; a no-op when everything is applied. Returns the names
 * of the migrations this call applied.
 */
export async function migrate(options: MysqlOptions): Promise<string[]> {
  await createDatabaseIfMissing(options);
  const leasePool = createMysqlPool(options, { connectionLimit: 1 }).promise();
  try {
    return await withMigrationLease(leasePool, () => migrateToLatest(options));
  } finally {
    await leasePool.end();
  }
}

/** Kysely's migrateToLatest over a connection of its own; the names it applied. */
async function migrateToLatest(options: MysqlOptions): Promise<string[]> {
  const db = new Kysely<unknown>({
    dialect: new MysqlDialect({ pool: createMysqlPool(options, { connectionLimit: 1 }) }),
  });
  try {
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => MIGRATIONS },
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: `${MIGRATION_TABLE}_lock`,
    });
    const outcome: MigrationResultSet = await migrator.migrateToLatest();
    if (outcome.error !== undefined) throw outcome.error;
    return (outcome.results ?? [])
      .filter((r) => r.status === "Success")
      .map((r) => r.migrationName);
  } finally {
    await db.destroy();
  }
}

/** CREATE DATABASE only when connecting to it fails with ER_BAD_DB_ERROR (1049). */
async function createDatabaseIfMissing(options: MysqlOptions): Promise<void> {
  const url = new URL(options.url);
  const database = decodeURIComponent(url.pathname.slice(1));
  const probe = createMysqlPool(options, { connectionLimit: 1 }).promise();
  try {
    await probe.query("SELECT 1");
    return;
  } catch (error) {
    if ((error as { errno?: number }).errno !== 1049) throw error;
  } finally {
    await probe.end();
  }
  url.pathname = "/";
  const server = createMysqlPool(
    { ...options, url: url.toString() },
    { connectionLimit: 1 },
  ).promise();
  try {
    await server.query(
      `CREATE DATABASE IF NOT EXISTS \`${database.replaceAll("`", "``")}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    );
  } finally {
    await server.end();
  }
}
