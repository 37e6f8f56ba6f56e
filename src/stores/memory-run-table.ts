import {
  Code,
  ConnectError,
  type RunRecord,
  type RunStatus,
  type TokenCounters,
} from "@runstore/client";
import { COUNTER_FIELDS } from "@runstore/client/internal";
import type { ChangeKind } from "./change-feed.js";
import type { PutInput } from "./check-input.js";
import { MemoryChangeFeed } from "./memory-change-feed.js";
import { type EvictionEntry, EvictionOrder } from "./memory-eviction.js";
import { compareCodePoints } from "./text.js";

/** pending and running: the statuses docs/contract.md calls active (in flight). */
export const ACTIVE: ReadonlySet<RunStatus> = new Set(["pending", "running"]);

/**
 * A stored row: the record plus whether it was admitted holding its
 * thread's active slot (createThreadOperation with reject / interrupt /
 * rollback, or claimNextRun). It holds the slot only while it is active.
 */
export interface StoredRun extends RunRecord {
  holdsSlot: boolean;
}

/** What a new row is made of: a put's fields plus the admission flags. */
export type NewRowFields = PutInput & Pick<StoredRun, "queued" | "holdsSlot">;

/** A new row: counters 0, no messages, no cancel, an empty usage map. */
export function newRow(fields: NewRowFields, now: string): StoredRun {
  return {
    ...fields,
    createdAt: fields.createdAt ?? now,
    updatedAt: now,
    ...zeroCounters(),
    lastAiMessage: null,
    firstHumanMessage: null,
    cancelAction: null,
    cancelRequestedAt: null,
    tokenUsageByModel: {},
  };
}

function zeroCounters(): TokenCounters {
  return Object.fromEntries(COUNTER_FIELDS.map(([name]) => [name, 0])) as Record<
    keyof TokenCounters,
    number
  >;
}

/** Whether `row` holds its thread's active slot right now. */
export function holdsSlot(row: StoredRun): boolean {
  return row.holdsSlot && ACTIVE.has(row.status);
}

/** Oldest first: created_at, then run_id. */
export function oldestFirst(a: RunRecord, b: RunRecord): number {
  return compareCodePoints(a.createdAt, b.createdAt) || compareCodePoints(a.runId, b.runId);
}

/** Newest first: created_at, then run_id, both descending. */
export function newestFirst(a: RunRecord, b: RunRecord): number {
  return oldestFirst(b, a);
}

/** A copy the caller may change without touching the store, without holdsSlot. */
export function copyRow(row: StoredRun): RunRecord {
  const { holdsSlot: _, ...record } = row;
  return {
    ...record,
    metadata: structuredClone(row.metadata),
    kwargs: structuredClone(row.kwargs),
    tokenUsageByModel: structuredClone(row.tokenUsageByModel),
  };
}

/**
 * The row as the change log keeps it: a copy of its fields, sharing its JSON
 * values (metadata, kwargs, the usage map) with the row. The table never
 * changes those in place (a write replaces them whole, write() below), so
 * the record stays as the row was, at a fraction of copyRow's cost; readers
 * of the log must not change them either.
 */
function recordOf(row: StoredRun): RunRecord {
  // A spread copies at the speed of the row's shape (a rest pattern that
  // leaves holdsSlot out takes several times as long); holdsSlot is then
  // blanked, the table's business only.
  const record: Partial<StoredRun> = { ...row };
  record.holdsSlot = undefined;
  return record as RunRecord;
}

/** MEMORY_MAX_BYTES's default: finite, so a full store refuses writes long before the heap limit. */
export const DEFAULT_MEMORY_MAX_BYTES = 1024 * 1024 * 1024;

/** MEMORY_MAX_RUNS's default: rows held before the oldest terminal ones are evicted. */
export const DEFAULT_MEMORY_MAX_RUNS = 100_000;

/** What a row is reckoned to take beyond its JSON: the object, its indexes' entries. */
const ROW_OVERHEAD_BYTES = 256;

/** A row's estimated size: its JSON text (two bytes a UTF-16 unit) plus a fixed overhead. */
export function rowBytes(row: StoredRun): number {
  return ROW_OVERHEAD_BYTES + 2 * JSON.stringify(row).length;
}

/**
 * What `keys` of `row` take of rowBytes: a row's JSON is `{` + its
 * `"key":value` pairs joined by commas + `}`, that is 1 + the sum of
 * (key + value + 4) over the keys whose value is not undefined (which JSON
 * leaves out). So a write's change of size is exact from the fields it
 * touches, without serialising the whole row on every progress snapshot
 * (3.5 % of the server's CPU at 1,500 calls/s, issue 18).
 */
function fieldsBytes(row: Partial<StoredRun>, keys: readonly string[]): number {
  let units = 0;
  for (const key of keys) {
    const value = (row as Record<string, unknown>)[key];
    if (value !== undefined) units += key.length + JSON.stringify(value).length + 4;
  }
  return 2 * units;
}

/** Fields write() may change besides those it is given. */
const DERIVED_FIELDS = ["queued", "holdsSlot"] as const;

/**
 * The rows of MemoryRunStore with the indexes its calls read, held to a
 * budget of estimated bytes: a write that would take the table past it is
 * RESOURCE_EXHAUSTED before anything changes, so the process refuses work
 * instead of dying at the heap limit. It also holds at most `maxRuns` rows
 * (MEMORY_MAX_RUNS; 0: no such bound): a new row past it evicts the oldest
 * terminal row (updated_at, then run_id), and is refused when every row is
 * active. Every row it inserts, writes or removes (eviction included) is
 * appended to `feed`, the store's change log, as a copy, in the same step.
 */
export class MemoryRunTable {
  private readonly rows = new Map<string, StoredRun>();
  private readonly sizes = new Map<string, number>();
  private usedBytes = 0;
  private readonly byThread = new Map<string, Set<string>>();
  private readonly active = new Set<string>();
  private readonly queued = new Set<string>();
  private readonly byKey = new Map<string, string>();
  /** Terminal rows by updated_at: the order MEMORY_MAX_RUNS evicts and RETENTION_DAYS sweeps in. */
  private readonly evictable = new EvictionOrder();

  constructor(
    private readonly maxBytes: number = DEFAULT_MEMORY_MAX_BYTES,
    private readonly maxRuns: number = DEFAULT_MEMORY_MAX_RUNS,
    /** The change log every write of the table is appended to. */
    readonly feed: MemoryChangeFeed = new MemoryChangeFeed(),
  ) {}

  /**
   * The bytes writing `changes` into `row` would add (negative when it
   * shrinks); for a row not stored yet, its whole size (insert).
   */
  growth(row: StoredRun, changes?: Partial<StoredRun>): number {
    const stored = this.sizes.get(row.runId);
    if (changes === undefined) return rowBytes(row) - (stored ?? 0);
    if (stored === undefined) return rowBytes({ ...row, ...changes });
    const keys = Object.keys(changes);
    return fieldsBytes(changes, keys) - fieldsBytes(row, keys);
  }

  /**
   * Room for one new row, `grow` being the bytes it and any writes made
   * with it add: at maxRuns rows the oldest terminal row is evicted. Refused
   * (RESOURCE_EXHAUSTED, nothing changed) when every row is active or the
   * bytes do not fit even after the eviction. An admission calls it first
   * with the sum of all its writes, so it is refused before any is made.
   */
  makeRoom(grow: number): void {
    const victim =
      this.maxRuns > 0 && this.rows.size >= this.maxRuns ? this.evictionVictim() : undefined;
    this.checkBytes(grow - (victim === undefined ? 0 : (this.sizes.get(victim.runId) ?? 0)));
    if (victim !== undefined) this.remove(victim);
  }

  /** The terminal row with the oldest updated_at (ties by run_id): the next to evict or sweep. */
  oldestTerminal(): StoredRun | undefined {
    const entry = this.evictable.oldest((candidate) => this.describes(candidate));
    return entry === undefined ? undefined : this.rows.get(entry[1]);
  }

  /** The oldest terminal row, or RESOURCE_EXHAUSTED naming MEMORY_MAX_RUNS when there is none. */
  private evictionVictim(): StoredRun {
    const victim = this.oldestTerminal();
    if (victim === undefined) {
      throw new ConnectError(
        `memory store holds MEMORY_MAX_RUNS (${this.maxRuns}) runs and every one is active ` +
          "(pending or running), so none can be evicted; end or delete runs, raise MEMORY_MAX_RUNS or use MySQL",
        Code.ResourceExhausted,
      );
    }
    return victim;
  }

  /** Whether an eviction entry still describes its row: stored, terminal, not written since. */
  private describes([updatedAt, runId]: EvictionEntry): boolean {
    const row = this.rows.get(runId);
    return row !== undefined && !ACTIVE.has(row.status) && row.updatedAt === updatedAt;
  }

  /** Refuses a change of `grow` bytes that would take the table past its budget. */
  private checkBytes(grow: number): void {
    if (grow > 0 && this.usedBytes + grow > this.maxBytes) {
      throw new ConnectError(
        `memory store is full (${this.usedBytes} bytes of ${this.maxBytes}); delete runs or use MySQL`,
        Code.ResourceExhausted,
      );
    }
  }

  /** The row, whatever its owner. */
  get(runId: string): StoredRun | undefined {
    return this.rows.get(runId);
  }

  /** The row when it exists and `userId` (if not null) owns it. */
  visible(runId: string, userId: string | null): StoredRun | undefined {
    const row = this.rows.get(runId);
    return row !== undefined && (userId === null || row.userId === userId) ? row : undefined;
  }

  /** The size the table reckons a stored row takes (rowBytes as of its last write), or undefined. */
  sizeOf(runId: string): number | undefined {
    return this.sizes.get(runId);
  }

  /** The row holding an idempotency key. */
  holderOf(key: string): StoredRun | undefined {
    const id = this.byKey.get(key);
    return id === undefined ? undefined : this.rows.get(id);
  }

  insert(row: StoredRun): void {
    const size = rowBytes(row);
    this.makeRoom(size);
    this.usedBytes += size;
    this.sizes.set(row.runId, size);
    this.rows.set(row.runId, row);
    this.index(row);
    this.logChange("created", row, null);
  }

  /**
   * Writes `changes` into `row`, keeping every index right. A row that
   * leaves pending is no longer queued, and one that ends gives its thread's
   * slot back for good (a later write that makes it active again, such as a
   * part-1 put, does not take the slot), whichever write moved it.
   */
  write(row: StoredRun, changes: Partial<StoredRun>): void {
    this.checkBytes(this.growth(row, changes));
    const keys = [...Object.keys(changes), ...DERIVED_FIELDS];
    const before = fieldsBytes(row, keys);
    this.unindex(row);
    const previousStatus = row.status;
    Object.assign(row, changes);
    if (row.status !== "pending") row.queued = false;
    if (row.status !== "pending" && row.status !== "running") row.holdsSlot = false;
    const grown = fieldsBytes(row, keys) - before;
    this.usedBytes += grown;
    this.sizes.set(row.runId, (this.sizes.get(row.runId) ?? 0) + grown);
    this.index(row);
    this.logChange("updated", row, previousStatus);
  }

  remove(row: StoredRun): void {
    this.unindex(row);
    this.usedBytes -= this.sizes.get(row.runId) ?? 0;
    this.sizes.delete(row.runId);
    this.rows.delete(row.runId);
    this.logChange("deleted", row, row.status);
  }

  /** One change of `row` for the change log: a copy only while someone reads the log. */
  private logChange(kind: ChangeKind, row: StoredRun, previousStatus: RunStatus | null): void {
    if (this.feed.keeping()) this.feed.append(kind, recordOf(row), previousStatus);
    else this.feed.skip();
  }

  /** Every row of the thread, in no particular order. */
  *threadRows(threadId: string): Iterable<StoredRun> {
    for (const id of this.byThread.get(threadId) ?? []) yield this.rows.get(id) as StoredRun;
  }

  /** The thread's active rows of every kind and method, oldest first. */
  activeRowsOf(threadId: string): StoredRun[] {
    return [...this.threadRows(threadId)].filter((row) => ACTIVE.has(row.status)).sort(oldestFirst);
  }

  /** The active rows created at or before `before` that `wanted` keeps, oldest first. */
  activeCreatedBy(before: string, wanted: (row: StoredRun) => boolean): StoredRun[] {
    const rows: StoredRun[] = [];
    for (const id of this.active) {
      const row = this.rows.get(id) as StoredRun;
      if (row.createdAt <= before && wanted(row)) rows.push(row);
    }
    return rows.sort(oldestFirst);
  }

  /** Every row, in no particular order. */
  allRows(): Iterable<StoredRun> {
    return this.rows.values();
  }

  /** Every thread with at least one row, in no particular order. */
  threadIds(): Iterable<string> {
    return this.byThread.keys();
  }

  /** Every active (pending or running) row, in no particular order. */
  *activeRows(): Iterable<StoredRun> {
    for (const id of this.active) yield this.rows.get(id) as StoredRun;
  }

  /** Every queued row, in no particular order. */
  *queuedRows(): Iterable<StoredRun> {
    for (const id of this.queued) yield this.rows.get(id) as StoredRun;
  }

  private index(row: StoredRun): void {
    let thread = this.byThread.get(row.threadId);
    if (thread === undefined) {
      thread = new Set();
      this.byThread.set(row.threadId, thread);
    }
    thread.add(row.runId);
    if (ACTIVE.has(row.status)) this.active.add(row.runId);
    if (row.queued) this.queued.add(row.runId);
    if (row.idempotencyKey !== null) this.byKey.set(row.idempotencyKey, row.runId);
    if (!ACTIVE.has(row.status)) this.queueEviction(row);
  }

  /**
   * Adds a terminal row to the eviction order; when stale entries have come
   * to outnumber the rows, rebuilds the order from the terminal rows alone.
   */
  private queueEviction(row: StoredRun): void {
    this.evictable.push([row.updatedAt, row.runId]);
    if (this.evictable.size <= 2 * this.rows.size + 1024) return;
    const entries: EvictionEntry[] = [];
    for (const stored of this.rows.values()) {
      if (!ACTIVE.has(stored.status)) entries.push([stored.updatedAt, stored.runId]);
    }
    this.evictable.rebuild(entries);
  }

  private unindex(row: StoredRun): void {
    const thread = this.byThread.get(row.threadId);
    thread?.delete(row.runId);
    if (thread?.size === 0) this.byThread.delete(row.threadId);
    this.active.delete(row.runId);
    this.queued.delete(row.runId);
    if (row.idempotencyKey !== null) this.byKey.delete(row.idempotencyKey);
  }
}
