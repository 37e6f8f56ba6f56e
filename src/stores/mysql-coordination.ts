import { Code, ConnectError } from "@connectrpc/connect";
import {
  type CancelAction,
  type ExpiredLeaseOptions,
  type Lease,
  type LeaseRenewal,
  nowTimestamp,
  type OwnerOptions,
  type RunRecord,
  type RunStatus,
  type StatusFinalization,
  type TakeoverOptions,
} from "@runstore/client";
import { checkId } from "@runstore/client/internal";
import {
  checkCancel,
  checkExpiredLeaseList,
  checkFinalize,
  checkGetMany,
  checkLeaseCall,
  checkTakeover,
  checkThreadOwned,
} from "./check-coordination.js";
import { CANCELLED_BEFORE_START } from "./coordination-rules.js";
import { conflictOf, type DuplicateHolders, duplicateKeyOf } from "./mysql-errors.js";
import {
  ACTIVE,
  COLUMNS,
  EXPIRED_PAST_GRACE,
  fromRow,
  graceValue,
  LEASE_EXPIRY,
  leaseValues,
  type RunRow,
  type SqlValues,
  statusValues,
  text,
  toSql,
  UPDATE_STATUS,
} from "./mysql-rows.js";

// MysqlRunStore's part 2 (docs/contract.md, "Coordination"): ownership,
// cancellation, takeover and the thread reads; admission and the queue are
// in mysql-admission.ts. A conditional write is one statement, or one
// transaction that locks the row (FOR UPDATE), decides, writes and answers
// before COMMIT, so replicas sharing the database race through the same row
// lock. Relative leases and expiry are computed on the database clock.

/** What a function here runs its statements on: MysqlRunStore, bound to its pools and call signal. */
export interface SqlSession extends SqlTransaction {
  /** The rows of a `SELECT ${COLUMNS} FROM runs` list, refused before they load when over the call's response budget. */
  list(sql: string, values: SqlValues): Promise<RunRow[]>;
  /** `work` between BEGIN and COMMIT on one connection; rolled back when it throws, retried whole on deadlock. */
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
}

/** One statement, on its own (autocommit) or inside a transaction. */
export interface SqlTransaction {
  run(sql: string, values: SqlValues): Promise<unknown>;
}

/** Sizes of the IN lists getManyByThread binds: ids are padded up to one of these. */
const ID_LIST_SIZES = [32, 1024] as const;

/** A non-empty string at `path` of metadata. */
function nonEmptyString(path: string): string {
  const value = `JSON_EXTRACT(metadata, '${path}')`;
  return `JSON_TYPE(${value}) = 'STRING' AND CHAR_LENGTH(JSON_UNQUOTE(${value})) > 0`;
}

// Binary comparison: utf8mb4_bin pads spaces, so "edit " would equal "edit".
const EDIT_REGENERATE =
  "CAST(JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.replay_kind')) AS BINARY) = 'edit' " +
  `AND JSON_TYPE(JSON_EXTRACT(metadata, '$.replay_kind')) = 'STRING' AND ${nonEmptyString("$.regenerate_from_run_id")}`;

const REGENERATE_SOURCE =
  "CAST(JSON_UNQUOTE(JSON_EXTRACT(metadata, '$.regenerate_from_run_id')) AS BINARY)";

function getMany(size: number, owned: boolean): string {
  const ids = Array(size).fill("?").join(", ");
  return (
    `SELECT ${COLUMNS} FROM runs WHERE thread_id = ? AND operation_kind = 'run' ` +
    `AND run_id IN (${ids})${owned ? " AND user_id = ?" : ""}`
  );
}

function regenerateSources(owned: boolean): string {
  return (
    `SELECT DISTINCT ${REGENERATE_SOURCE} AS source FROM runs WHERE thread_id = ?` +
    `${owned ? " AND user_id = ?" : ""} AND operation_kind = 'run' AND status = 'success' ` +
    `AND ${nonEmptyString("$.regenerate_from_run_id")} ORDER BY source`
  );
}

function editRegenerateRuns(owned: boolean): string {
  return (
    `SELECT ${COLUMNS} FROM runs WHERE thread_id = ?${owned ? " AND user_id = ?" : ""} ` +
    `AND operation_kind = 'run' AND ${EDIT_REGENERATE} ORDER BY created_at, run_id`
  );
}

/**
 * Every part 2 statement (the admission's and the queue's included), each
 * one SQL statement that MySQL 8 and MariaDB 10.11 both accept. Exported so
 * the EXPLAIN test can check each one uses an index.
 */
export const COORDINATION_STATEMENTS = {
  keyHolder: `SELECT ${COLUMNS} FROM runs WHERE idempotency_key = ?`,
  slotHolder: "SELECT thread_id, run_id FROM runs WHERE active_thread_id = ?",
  firstActiveOfThread: `SELECT run_id FROM runs WHERE thread_id = ? AND status IN ${ACTIVE} ORDER BY created_at, run_id LIMIT 1`,
  lockActiveOfThread:
    // The index on (thread_id, status): the locking read touches the active rows only.
    `SELECT ${COLUMNS}, ${EXPIRED_PAST_GRACE} AS lease_expired FROM runs FORCE INDEX (runs_thread_status) ` +
    `WHERE thread_id = ? AND status IN ${ACTIVE} ORDER BY created_at, run_id FOR UPDATE`,
  takeOver:
    "UPDATE runs SET status = 'interrupted', error = ?, owner_worker_id = ?, holds_slot = 0, " +
    "queued = 0, updated_at = ? WHERE run_id = ?",
  insertOperation:
    "INSERT INTO runs (run_id, thread_id, assistant_id, user_id, model_name, status, " +
    "multitask_strategy, metadata, kwargs, operation_kind, owner_worker_id, lease_expires_at, " +
    "idempotency_key, follow_up_to_run_id, queued, holds_slot, created_at, updated_at) " +
    `VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ${LEASE_EXPIRY}, ?, ?, ?, ?, ?, ?)`,
  // The oldest queued run that heads its own thread's queue, on a thread
  // whose slot is free; rows another claimer has locked are skipped.
  nextQueued: nextQueued(false),
  nextQueuedOfThread: nextQueued(true),
  claim:
    `UPDATE runs SET status = 'running', owner_worker_id = ?, lease_expires_at = ${LEASE_EXPIRY}, ` +
    "holds_slot = 1, queued = 0, updated_at = ? WHERE run_id = ?",
  startRun:
    "UPDATE runs SET status = 'running', updated_at = ? " +
    "WHERE run_id = ? AND status = 'pending' AND queued = 0",
  renewLease:
    `UPDATE runs SET lease_expires_at = ${LEASE_EXPIRY}, updated_at = ? ` +
    `WHERE run_id = ? AND status IN ${ACTIVE} AND owner_worker_id = ?`,
  cancelActionOf: "SELECT cancel_action FROM runs WHERE run_id = ?",
  lockForCancel: "SELECT status, queued, cancel_action FROM runs WHERE run_id = ? FOR UPDATE",
  // cancel_action and cancel_requested_at are only ever set together: the first request wins.
  recordCancel:
    "UPDATE runs SET cancel_action = COALESCE(cancel_action, ?), " +
    "cancel_requested_at = COALESCE(cancel_requested_at, ?), updated_at = ? WHERE run_id = ?",
  cancelQueued:
    "UPDATE runs SET cancel_action = COALESCE(cancel_action, ?), " +
    "cancel_requested_at = COALESCE(cancel_requested_at, ?), status = 'interrupted', error = ?, " +
    "queued = 0, holds_slot = 0, updated_at = ? WHERE run_id = ?",
  claimForTakeover:
    "UPDATE runs SET status = 'error', error = ?, stop_reason = COALESCE(?, stop_reason), holds_slot = 0, updated_at = ? " +
    `WHERE run_id = ? AND status IN ${ACTIVE} AND queued = 0 AND ${EXPIRED_PAST_GRACE}`,
  listExpiredLeases: expiredLeases("?"),
  // Without `before`: every run created by now on the database clock.
  listExpiredLeasesNow: expiredLeases("UTC_TIMESTAMP(6)"),
  getMany32: getMany(ID_LIST_SIZES[0], false),
  getMany32Owned: getMany(ID_LIST_SIZES[0], true),
  getMany1024: getMany(ID_LIST_SIZES[1], false),
  getMany1024Owned: getMany(ID_LIST_SIZES[1], true),
  regenerateSources: regenerateSources(false),
  regenerateSourcesOwned: regenerateSources(true),
  editRegenerateRuns: editRegenerateRuns(false),
  editRegenerateRunsOwned: editRegenerateRuns(true),
} as const;

function expiredLeases(before: string): string {
  return (
    `SELECT ${COLUMNS} FROM runs WHERE status IN ${ACTIVE} AND queued = 0 AND created_at <= ${before} ` +
    `AND ${EXPIRED_PAST_GRACE} ORDER BY created_at, run_id`
  );
}

/** The run a claim takes; "created by now" reads the database clock, as leases do. */
function nextQueued(ofThread: boolean): string {
  return (
    `SELECT ${COLUMNS} FROM runs r WHERE r.queued = 1 AND r.status = 'pending' ` +
    "AND r.created_at <= UTC_TIMESTAMP(6)" +
    `${ofThread ? " AND r.thread_id = ?" : ""} ` +
    "AND NOT EXISTS (SELECT 1 FROM runs h WHERE h.active_thread_id = r.thread_id) " +
    "AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.thread_id = r.thread_id AND o.queued = 1 " +
    "AND (o.created_at < r.created_at OR (o.created_at = r.created_at AND o.run_id < r.run_id))) " +
    "ORDER BY r.created_at, r.run_id LIMIT 1 FOR UPDATE SKIP LOCKED"
  );
}

const S = COORDINATION_STATEMENTS;

/** The rows a SELECT answered. */
export function rowsOf<T = RunRow>(result: unknown): T[] {
  return result as T[];
}

/** With FOUND_ROWS on (mysql-pool.ts), affectedRows counts rows matched: >0 means the write applied. */
export function matched(result: unknown): boolean {
  return (result as { affectedRows: number }).affectedRows > 0;
}

/** How often a write collides with a holder that is gone once looked up, before giving up. */
const COLLISION_ATTEMPTS = 5;

/** What a write that may collide on a unique index is about. */
export interface CollisionScope {
  idempotencyKey: string | null;
  /** The thread whose slot the write may take. */
  threadId: string;
}

/** How to find who holds what a write in `scope` collided with. */
export function holdersOf(db: SqlTransaction, scope: CollisionScope): DuplicateHolders {
  return {
    async keyHolder() {
      if (scope.idempotencyKey === null) return null;
      const rows = rowsOf(await db.run(S.keyHolder, [scope.idempotencyKey]));
      return rows[0] === undefined ? null : fromRow(rows[0]);
    },
    async slotHolder() {
      const rows = rowsOf<{ thread_id: Buffer; run_id: Buffer }>(
        await db.run(S.slotHolder, [scope.threadId]),
      );
      const row = rows[0];
      return row === undefined
        ? null
        : { threadId: text(row.thread_id) as string, runId: text(row.run_id) as string };
    },
  };
}

/**
 * Runs `write` (put's), which may collide with another row on the
 * idempotency key: the collision becomes its conflict (the holder read once
 * the write has rolled back). When the holder is gone by then, or the
 * collision is on the run id (the write's own retry signal), `write` runs
 * again. A put never collides on a thread's slot (it takes none, and drops
 * the one a row held when it moves the row to another thread); such a
 * collision would still be mapped like the key's.
 */
export async function resolvingCollisions<T>(
  db: SqlTransaction,
  scope: CollisionScope,
  write: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const key = duplicateKeyOf(error);
      if (key === null) throw error;
      const conflict = await conflictOf(key, holdersOf(db, scope));
      if (conflict !== null) throw conflict;
      if (attempt === COLLISION_ATTEMPTS) throw stillColliding();
    }
  }
}

/** UNAVAILABLE (retryable): holders kept coming and going under the write. */
export function stillColliding(): ConnectError {
  return new ConnectError("database contention: the write kept colliding, retry", Code.Unavailable);
}

/** pending → running in one conditional write; a queued run starts only through claimNextRun. */
export async function startRun(db: SqlSession, runId: string): Promise<boolean> {
  const id = checkId("run_id", runId);
  return matched(await db.run(S.startRun, [toSql(nowTimestamp()), id]));
}

/** Extends an owned active run's lease, answering the recorded cancel from the same transaction. */
export async function renewLease(
  db: SqlSession,
  runId: string,
  ownerWorkerId: string,
  lease: Lease,
): Promise<LeaseRenewal> {
  const input = checkLeaseCall(runId, ownerWorkerId, lease);
  const values = renewValues(input);
  return db.transaction(async (tx) => {
    if (!matched(await tx.run(S.renewLease, values))) return { renewed: false, cancelAction: null };
    // The UPDATE holds the row lock: this reads what it left.
    const [row] = rowsOf<{ cancel_action: CancelAction | null }>(
      await tx.run(S.cancelActionOf, [input.runId]),
    );
    return { renewed: true, cancelAction: row?.cancel_action ?? null };
  });
}

/** renewLease's write, answering only whether it applied. */
export async function updateLease(
  db: SqlSession,
  runId: string,
  ownerWorkerId: string,
  lease: Lease,
): Promise<boolean> {
  const input = checkLeaseCall(runId, ownerWorkerId, lease);
  return matched(await db.run(S.renewLease, renewValues(input)));
}

/** The renewLease statement's values. */
function renewValues(input: ReturnType<typeof checkLeaseCall>): SqlValues {
  return [...leaseValues(input.lease), toSql(nowTimestamp()), input.runId, input.ownerWorkerId];
}

interface LockedRun {
  status: RunStatus;
  queued: number | string;
  cancel_action: CancelAction | null;
}

/** The run's status, queue flag and cancel, locked until the transaction ends; null: missing. */
async function lockRun(tx: SqlTransaction, runId: string): Promise<LockedRun | null> {
  return rowsOf<LockedRun>(await tx.run(S.lockForCancel, [runId]))[0] ?? null;
}

function isActive(status: RunStatus): boolean {
  return status === "pending" || status === "running";
}

/**
 * Records the first cancel request of an active run and answers the
 * recorded one. A queued run has no owner to see it: it is interrupted at
 * once, so it is never claimed.
 */
export async function requestCancel(
  db: SqlSession,
  runId: string,
  action: CancelAction,
): Promise<CancelAction | null> {
  const input = checkCancel(runId, action);
  return db.transaction(async (tx) => {
    const row = await lockRun(tx, input.runId);
    if (row === null || !isActive(row.status)) return null;
    const now = toSql(nowTimestamp());
    await (Number(row.queued) === 1
      ? tx.run(S.cancelQueued, [input.action, now, CANCELLED_BEFORE_START, now, input.runId])
      : tx.run(S.recordCancel, [input.action, now, now, input.runId]));
    return row.cancel_action ?? input.action;
  });
}

/** Ends an active run unless a cancel is recorded: of the two, exactly one wins. */
export async function finalizeIfNotCancelled(
  db: SqlSession,
  runId: string,
  status: RunStatus,
  options: { error?: string | null; stopReason?: string | null } | undefined,
): Promise<StatusFinalization> {
  const input = checkFinalize(runId, status, options);
  return db.transaction(async (tx) => {
    const row = await lockRun(tx, input.runId);
    if (row === null) return { finalized: false, cancelAction: null };
    if (!isActive(row.status) || row.cancel_action !== null) {
      return { finalized: false, cancelAction: row.cancel_action };
    }
    await tx.run(UPDATE_STATUS, statusValues(input));
    return { finalized: true, cancelAction: null };
  });
}

/** Marks an active, unqueued run whose lease expired past grace as error; of racing claimers one wins. */
export async function claimForTakeover(
  db: SqlSession,
  runId: string,
  options: TakeoverOptions,
): Promise<boolean> {
  const input = checkTakeover(runId, options);
  return matched(
    await db.run(S.claimForTakeover, [
      input.error,
      input.stopReason,
      toSql(nowTimestamp()),
      input.runId,
      graceValue(input.graceSeconds),
    ]),
  );
}

/** Active, unqueued rows of every kind created by `before` whose lease expired past grace, oldest first. */
export async function listInflightWithExpiredLease(
  db: SqlSession,
  options: ExpiredLeaseOptions | undefined,
): Promise<RunRecord[]> {
  const input = checkExpiredLeaseList(options);
  const grace = graceValue(input.graceSeconds);
  const rows =
    input.before === null
      ? await db.list(S.listExpiredLeasesNow, [grace])
      : await db.list(S.listExpiredLeases, [toSql(input.before), grace]);
  return rows.map(fromRow);
}

/** The visible runs of the thread among runIds, keyed by run id. */
export async function getManyByThread(
  db: SqlSession,
  threadId: string,
  runIds: readonly string[],
  options: OwnerOptions | undefined,
): Promise<Record<string, RunRecord>> {
  const input = checkGetMany(threadId, runIds, options);
  const found: [string, RunRecord][] = [];
  const largest = ID_LIST_SIZES[ID_LIST_SIZES.length - 1] as number;
  for (let start = 0; start < input.runIds.length; start += largest) {
    const ids = input.runIds.slice(start, start + largest);
    const size = ID_LIST_SIZES.find((n) => n >= ids.length) as number;
    // Padded with repeats of the first id, so a handful of prepared statements serves any count.
    const padded = [...ids, ...Array<string>(size - ids.length).fill(ids[0] as string)];
    const owned = input.userId !== null;
    const sql =
      size === ID_LIST_SIZES[0]
        ? owned
          ? S.getMany32Owned
          : S.getMany32
        : owned
          ? S.getMany1024Owned
          : S.getMany1024;
    const values = [input.threadId, ...padded, ...(owned ? [input.userId] : [])];
    for (const row of await db.list(sql, values)) {
      const record = fromRow(row);
      found.push([record.runId, record]);
    }
  }
  // fromEntries defines own properties, so a run id "__proto__" is just a key.
  return Object.fromEntries(found);
}

/** The distinct non-empty metadata.regenerate_from_run_id strings of the thread's success runs, in code point order. */
export async function listSuccessfulRegenerateSources(
  db: SqlSession,
  threadId: string,
  options: OwnerOptions | undefined,
): Promise<string[]> {
  const input = checkThreadOwned(threadId, options);
  const rows = rowsOf<{ source: Buffer | string }>(
    input.userId === null
      ? await db.run(S.regenerateSources, [input.threadId])
      : await db.run(S.regenerateSourcesOwned, [input.threadId, input.userId]),
  );
  // Binary values, DISTINCT and ordered by UTF-8 bytes: code point order.
  return rows.map((row) => text(row.source) as string);
}

/** The thread's runs regenerated by an edit, oldest first. */
export async function listEditRegenerateRuns(
  db: SqlSession,
  threadId: string,
  options: OwnerOptions | undefined,
): Promise<RunRecord[]> {
  const input = checkThreadOwned(threadId, options);
  const rows =
    input.userId === null
      ? await db.list(S.editRegenerateRuns, [input.threadId])
      : await db.list(S.editRegenerateRunsOwned, [input.threadId, input.userId]);
  return rows.map(fromRow);
}
