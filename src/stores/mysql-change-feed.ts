import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStatus } from "@runstore/client";
import { invalidArgument } from "@runstore/client/internal";
import {
  type ChangeFeed,
  type ChangeKind,
  ChangeLogGap,
  type ChangeRecord,
} from "./change-feed.js";
import { rowsOf, type SqlSession, type SqlTransaction } from "./mysql-coordination.js";
import { COLUMNS, fromRow, fromSql, type RunRow } from "./mysql-rows.js";

// The MySQL change log (docs/mysql.md "Change log"): triggers on `runs`
// (migration 0005_changes) write one runstore_changes row per change in the
// writer's transaction, unnumbered. The sequencer numbers them: one short
// transaction (READ COMMITTED, as every session of the pool, so its locking
// read takes no gap locks and never holds up a writer's insert) locks the
// counter row, takes the oldest unnumbered rows it can lock, skipping those
// an uncommitted writer still holds (numbered on a later tick, once
// committed), gives them counter+1, counter+2, … in change_id order and
// moves the counter. Numbers are handed out under the counter's lock and
// committed with it, so they are dense and committed in order, and every
// replica of the database (every node of a Galera cluster, where two
// sequencers at once collide at certification and one is retried) reads the
// same order.

/** The most changes one sequencer transaction numbers. */
export const SEQUENCE_BATCH = 5000;

const NO_COUNTER = "runstore_change_counter has no row: run the migrations";

/** Tries of head() in a row that number nothing (another node keeps winning the counter) before UNAVAILABLE. */
const HEAD_STALLS = 50;

/** The most changes one read() returns. */
export const MAX_READ = 5000;

/** The statements of the change log, each one MySQL 8 and MariaDB 10.11 both accept. */
export const CHANGE_STATEMENTS = {
  /** The counter, locked; no row when another sequencer of this node holds it (it numbers, this one need not). */
  lockCounter: "SELECT last_seq FROM runstore_change_counter WHERE id = 1 FOR UPDATE SKIP LOCKED",
  /** The counter, locked, waiting for a sequencer that holds it (head(): its numbers must be counted). */
  lockCounterWaiting: "SELECT last_seq FROM runstore_change_counter WHERE id = 1 FOR UPDATE",
  /** The oldest unnumbered changes no uncommitted writer holds, in index order (no sort). */
  unnumbered:
    "SELECT change_id FROM runstore_changes FORCE INDEX (changes_unnumbered) " +
    "WHERE change_seq IS NULL ORDER BY change_id LIMIT ? FOR UPDATE SKIP LOCKED",
  /**
   * Numbers the changes whose ids are bound as a JSON array, in its order,
   * from the base bound second: the id at position i (from 1) gets base + i.
   * The list drives (STRAIGHT_JOIN), one primary key lookup a change, so
   * only those rows are touched: read the other way round, the join would
   * wait on a change an uncommitted writer holds. (FIELD or CASE over the
   * list would compare each row with the whole list.)
   */
  number:
    "UPDATE JSON_TABLE(?, '$[*]' COLUMNS (n FOR ORDINALITY, id BIGINT PATH '$')) AS numbered " +
    "STRAIGHT_JOIN runstore_changes FORCE INDEX (PRIMARY) ON runstore_changes.change_id = numbered.id " +
    "SET runstore_changes.change_seq = CAST(? AS SIGNED) + numbered.n WHERE runstore_changes.change_seq IS NULL",
  bumpCounter: "UPDATE runstore_change_counter SET last_seq = ? WHERE id = 1",
  counter: "SELECT last_seq, feed_id FROM runstore_change_counter WHERE id = 1",
  /** The counter, and whether any committed change waits for a number: a run with nothing to do is this one read. */
  poll:
    "SELECT last_seq, EXISTS (SELECT 1 FROM runstore_changes FORCE INDEX (changes_unnumbered) " +
    "WHERE change_seq IS NULL) AS waiting FROM runstore_change_counter WHERE id = 1",
  read:
    "SELECT change_seq, change_kind, changed_at, previous_status, " +
    `${COLUMNS} FROM runstore_changes WHERE change_seq > ? ORDER BY change_seq LIMIT ?`,
} as const;

/** A change row as read() loads it. */
interface ChangeRow extends RunRow {
  change_seq: number | string;
  change_kind: string;
  changed_at: string;
  previous_status: string | null;
}

/** A BIGINT as mysql2 returns it (a number while safe, else a string). */
function big(value: number | string): bigint {
  return BigInt(String(value));
}

/**
 * The change log of one MySQL database, read through a MysqlRunStore's
 * session (its pool, timeouts and deadlock retries).
 */
export class MysqlChangeFeed implements ChangeFeed {
  private feedId: string | null = null;

  /** `pollMs`: how often waitForChange runs the sequencer (WATCH_POLL_MS). */
  constructor(
    private readonly db: SqlSession,
    private readonly pollMs = 100,
  ) {}

  async identity(): Promise<string> {
    this.feedId ??= (await this.counter()).feedId;
    return this.feedId;
  }

  /**
   * The newest number once every change committed before the call has one:
   * a watch "from now" starts after all of them. Unlike the poll it waits
   * for a sequencer holding the counter (skipping it answered a counter
   * without that sequencer's numbers), and it numbers the whole backlog,
   * SEQUENCE_BATCH at a time: a database nobody watched holds every change
   * since unnumbered (pruned after CHANGE_LOG_HOURS).
   */
  async head(): Promise<bigint> {
    let stalled = 0;
    for (;;) {
      const polled = await this.poll();
      if (!polled.waiting) return polled.lastSeq;
      let numbered: bigint | null = null;
      try {
        numbered = await this.db.transaction((tx) =>
          numberChanges(tx, CHANGE_STATEMENTS.lockCounterWaiting),
        );
      } catch (error) {
        if (!(error instanceof ConnectError && error.code === Code.Unavailable)) throw error;
      }
      stalled = numbered !== null && numbered > polled.lastSeq ? 0 : stalled + 1;
      if (stalled >= HEAD_STALLS) {
        throw new ConnectError(
          `the change log's counter made no progress in ${HEAD_STALLS} tries; try again`,
          Code.Unavailable,
        );
      }
    }
  }

  /** The counter, and whether a committed change waits for a number: one read, no lock. */
  private async poll(): Promise<{ lastSeq: bigint; waiting: boolean }> {
    const [polled] = rowsOf<{ last_seq: number | string; waiting: number | string }>(
      await this.db.run(CHANGE_STATEMENTS.poll, []),
    );
    if (polled === undefined) throw new Error(NO_COUNTER);
    return { lastSeq: big(polled.last_seq), waiting: Number(polled.waiting) === 1 };
  }

  async read(after: bigint, limit: number): Promise<ChangeRecord[]> {
    checkRead(after, limit);
    const head = await this.sequence();
    if (after > head) {
      throw new ChangeLogGap(`position ${after} is past the newest change (${head})`, "ahead");
    }
    if (after === head) return [];
    const rows = rowsOf<ChangeRow>(
      await this.db.run(CHANGE_STATEMENTS.read, [String(after), String(limit)]),
    );
    // Pruning deletes the oldest numbered changes only, so a missing
    // after + 1 means it is gone, and the rest follow it without a hole.
    const first = rows[0];
    if (first === undefined || big(first.change_seq) !== after + 1n) {
      throw new ChangeLogGap(
        `position ${after} is older than the oldest change kept${first === undefined ? "" : ` (the oldest position still readable is ${big(first.change_seq) - 1n})`}`,
        "pruned",
      );
    }
    return rows.map(toRecord);
  }

  async waitForChange(after: bigint, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!signal.aborted) {
      try {
        if ((await this.sequence()) > after) return;
      } catch {
        // The database is unreachable: the caller's read() will say so; keep polling.
      }
      const left = deadline - Date.now();
      if (left <= 0) return;
      try {
        // The designed poll interval, not synchronisation.
        await sleep(Math.min(this.pollMs, left), undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /**
   * Runs the sequencer once; answers the last number given (this call's or
   * another sequencer's). With no committed change waiting (the usual poll)
   * that is one read, with no transaction and no lock. Numbering is left to another sequencer when it
   * holds the counter on this node, or keeps winning the counter on other
   * nodes (certification conflicts past the store's retries, UNAVAILABLE):
   * the counter as committed is the answer then, and this one numbers on a
   * later run. A database that does not answer fails the counter's read too.
   */
  async sequence(): Promise<bigint> {
    const polled = await this.poll();
    if (!polled.waiting) return polled.lastSeq;
    let numbered: bigint | null = null;
    try {
      numbered = await this.db.transaction((tx) =>
        numberChanges(tx, CHANGE_STATEMENTS.lockCounter),
      );
    } catch (error) {
      if (!(error instanceof ConnectError && error.code === Code.Unavailable)) throw error;
    }
    return numbered ?? (await this.counter()).lastSeq;
  }

  private async counter(): Promise<{ lastSeq: bigint; feedId: string }> {
    const [row] = rowsOf<{ last_seq: number | string; feed_id: string }>(
      await this.db.run(CHANGE_STATEMENTS.counter, []),
    );
    if (row === undefined) throw new Error(NO_COUNTER);
    return { lastSeq: big(row.last_seq), feedId: row.feed_id };
  }
}

/**
 * The sequencer's transaction: numbers up to SEQUENCE_BATCH committed
 * changes; the counter after it, or null when another sequencer held the
 * counter.
 */
async function numberChanges(tx: SqlTransaction, lockCounter: string): Promise<bigint | null> {
  const [counter] = rowsOf<{ last_seq: number | string }>(await tx.run(lockCounter, []));
  if (counter === undefined) return null;
  const last = big(counter.last_seq);
  const ids = rowsOf<{ change_id: number | string }>(
    await tx.run(CHANGE_STATEMENTS.unnumbered, [String(SEQUENCE_BATCH)]),
  ).map((row) => String(row.change_id));
  if (ids.length === 0) return last;
  await tx.run(CHANGE_STATEMENTS.number, [`[${ids.join(",")}]`, String(last)]);
  const next = last + BigInt(ids.length);
  await tx.run(CHANGE_STATEMENTS.bumpCounter, [String(next)]);
  return next;
}

/** Checks read()'s arguments (the watch hub's, still refused by name when wrong). */
function checkRead(after: unknown, limit: unknown): void {
  if (typeof after !== "bigint" || after < 0n) {
    throw invalidArgument("after", "must be a sequence (a bigint of 0 or more)");
  }
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_READ) {
    throw invalidArgument("limit", `must be an integer from 1 to ${MAX_READ}`);
  }
}

/** A change row as the record every change feed returns. */
function toRecord(row: ChangeRow): ChangeRecord {
  return {
    sequence: big(row.change_seq),
    kind: row.change_kind as ChangeKind,
    run: fromRow(row),
    previousStatus: row.previous_status as RunStatus | null,
    changedAt: fromSql(row.changed_at),
  };
}
