import {
  type Admission,
  type CancelAction,
  type DeleteThreadOptions,
  type ExpiredLeaseOptions,
  type Lease,
  type LeaseRenewal,
  type ListByThreadOptions,
  nowTimestamp,
  type OwnerOptions,
  type Page,
  type PageRequest,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunSearch,
  type RunStats,
  type RunStatsOptions,
  type RunStatus,
  type RunStore,
  type StatusFinalization,
  type TakeoverOptions,
  type ThreadOperationFields,
  type ThreadSummary,
  type ThreadTokenUsage,
  type UpdateStatusOptions,
} from "@runstore/client";
import { COUNTER_FIELDS, eachItem, idempotencyConflictError } from "@runstore/client/internal";
import type { ChangeFeed } from "./change-feed.js";
import {
  checkAggregate,
  checkCompletion,
  checkListByThread,
  checkOwned,
  checkProgress,
  checkPut,
  checkRecovery,
  checkUpdateModelName,
  checkUpdateStatus,
} from "./check-input.js";
import { admit, claimNextRun } from "./memory-admission.js";
import { MemoryChangeFeed } from "./memory-change-feed.js";
import {
  claimForTakeover,
  finalizeIfNotCancelled,
  listInflightWithExpiredLease,
  renewLease,
  requestCancel,
  startRun,
} from "./memory-coordination.js";
import { checkThreadOwners, writableRow } from "./memory-owners.js";
import {
  listByThreadPage,
  listInflightPage,
  listInflightWithExpiredLeasePage,
  listPendingPage,
} from "./memory-pages.js";
import { claimSweep, sweepTerminal } from "./memory-retention.js";
import {
  ACTIVE,
  copyRow,
  MemoryRunTable,
  newestFirst,
  newRow,
  type StoredRun,
} from "./memory-run-table.js";
import { searchRunsPage } from "./memory-search.js";
import { getRunStats } from "./memory-stats.js";
import {
  getManyByThread,
  listEditRegenerateRuns,
  listSuccessfulRegenerateSources,
  visibleRuns,
} from "./memory-thread-reads.js";
import { deleteThread, listThreadsPage } from "./memory-threads.js";
import type { HonoursOwners, Owners } from "./owners.js";
import { TokenUsageTally } from "./token-usage.js";

const FINISHED: ReadonlySet<RunStatus> = new Set(["success", "error"]);
const FINISHED_OR_ACTIVE: ReadonlySet<RunStatus> = new Set(["success", "error", "running"]);
/** What a guarded updateStatus may overwrite: a rollback goes running → interrupted → error. */
const GUARDED_STATUS_FROM: ReadonlySet<RunStatus> = new Set(["pending", "running", "interrupted"]);

/**
 * The reference RunStore and the embedded default: every rule of
 * docs/contract.md in plain maps. Part 2 lives beside it: admission and the
 * queue in memory-admission.ts, leases, cancels and takeover in
 * memory-coordination.ts, its thread reads in memory-thread-reads.ts, the
 * history (issue 15) in memory-pages.ts, memory-search.ts, memory-stats.ts
 * and memory-threads.ts, the rows and their indexes (and the MEMORY_MAX_RUNS
 * eviction) in memory-run-table.ts. Each method runs
 * synchronously to its end, so every call is atomic with respect to every
 * other. Nothing survives a restart.
 */
export class MemoryRunStore implements RunStore, HonoursOwners {
  private readonly table: MemoryRunTable;
  /** Set on a view from withOwners(): the users its writes act for. */
  private readonly owners: Owners | null = null;

  /**
   * `maxBytes`: the budget of estimated row bytes past which writes are
   * RESOURCE_EXHAUSTED; `maxRuns`: rows held before the oldest terminal ones
   * are evicted (0: no such bound); `watchLogMax`: changes the change log
   * keeps (WATCH_LOG_MAX, memory-change-feed.ts).
   */
  constructor(options: { maxBytes?: number; maxRuns?: number; watchLogMax?: number } = {}) {
    const feed = new MemoryChangeFeed(options.watchLogMax);
    this.table = new MemoryRunTable(options.maxBytes, options.maxRuns, feed);
  }

  /** The log of every change of this store's rows, for WatchRuns (src/watch/). */
  changeFeed(): ChangeFeed {
    return this.table.feed;
  }

  /**
   * This store with the owner condition of owners.ts in every write: an
   * object whose prototype is this store, so the view shares its table.
   */
  withOwners(owners: Owners): MemoryRunStore {
    return Object.create(this, { owners: { value: owners } }) as MemoryRunStore;
  }

  async put(runId: string, fields: PutFields): Promise<void> {
    const input = checkPut(runId, fields);
    const existing = writableRow(this.table, input.runId, this.owners);
    const holder =
      input.idempotencyKey === null ? undefined : this.table.holderOf(input.idempotencyKey);
    if (holder !== undefined && holder.runId !== input.runId) {
      throw idempotencyConflictError(copyRow(holder));
    }
    if (existing === undefined || existing.threadId !== input.threadId) {
      checkThreadOwners(this.table, input.threadId, this.owners);
    }
    const now = nowTimestamp();
    if (existing === undefined) {
      this.table.insert(newRow({ ...input, queued: false, holdsSlot: false }, now));
    } else {
      // created_at, counters, messages, cancel, usage map, slot and queue
      // stay; a put never takes a slot, so a row it moves to another thread
      // gives its slot back (and holds none on the new thread).
      const { createdAt: _, ...descriptive } = input;
      const changes: Partial<StoredRun> = { ...descriptive, updatedAt: now };
      if (input.threadId !== existing.threadId) changes.holdsSlot = false;
      this.table.write(existing, changes);
    }
  }

  async get(runId: string, options?: OwnerOptions): Promise<RunRecord | null> {
    const { runId: id, userId } = checkOwned(runId, options);
    const row = this.table.visible(id, userId);
    return row === undefined ? null : copyRow(row);
  }

  async listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]> {
    const input = checkListByThread(threadId, options);
    if (input.limit === 0) return [];
    const rows = visibleRuns(this.table, input.threadId, input.userId);
    return rows.sort(newestFirst).slice(0, input.limit).map(copyRow);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: UpdateStatusOptions,
  ): Promise<boolean> {
    const input = checkUpdateStatus(runId, status, options);
    const row = writableRow(this.table, input.runId, this.owners);
    if (row === undefined) return false;
    if (input.guarded && !GUARDED_STATUS_FROM.has(row.status)) return false;
    const changes: Partial<StoredRun> = { status: input.status, updatedAt: nowTimestamp() };
    if (input.error !== null) changes.error = input.error;
    if (input.stopReason !== null) changes.stopReason = input.stopReason;
    this.table.write(row, changes);
    return true;
  }

  async delete(runId: string, options?: OwnerOptions): Promise<void> {
    const { runId: id, userId } = checkOwned(runId, options);
    const row = writableRow(this.table, id, this.owners);
    if (row !== undefined && (userId === null || row.userId === userId)) this.table.remove(row);
  }

  async updateModelName(runId: string, modelName: string | null): Promise<void> {
    const input = checkUpdateModelName(runId, modelName);
    const row = writableRow(this.table, input.runId, this.owners);
    if (row === undefined) return;
    this.table.write(row, { modelName: input.modelName, updatedAt: nowTimestamp() });
  }

  async updateRunCompletion(runId: string, completion: RunCompletion): Promise<boolean> {
    const input = checkCompletion(runId, completion);
    const row = writableRow(this.table, input.runId, this.owners);
    if (row === undefined) return false;
    if (input.guarded && !completionMayOverwrite(row.status, input.status)) return false;
    const changes: Partial<StoredRun> = {
      status: input.status,
      tokenUsageByModel: input.tokenUsageByModel,
      updatedAt: nowTimestamp(),
    };
    for (const [name] of COUNTER_FIELDS) changes[name] = input[name];
    if (input.lastAiMessage !== null) changes.lastAiMessage = input.lastAiMessage;
    if (input.firstHumanMessage !== null) changes.firstHumanMessage = input.firstHumanMessage;
    if (input.error !== null) changes.error = input.error;
    this.table.write(row, changes);
    return true;
  }

  async updateRunProgress(runId: string, progress: RunProgress): Promise<void> {
    const input = checkProgress(runId, progress);
    const row = writableRow(this.table, input.runId, this.owners);
    if (row === undefined || row.status !== "running") return;
    const changes: Partial<StoredRun> = { ...input.counters, updatedAt: nowTimestamp() };
    if (input.lastAiMessage !== null) changes.lastAiMessage = input.lastAiMessage;
    if (input.firstHumanMessage !== null) changes.firstHumanMessage = input.firstHumanMessage;
    if (input.tokenUsageByModel !== null) changes.tokenUsageByModel = input.tokenUsageByModel;
    this.table.write(row, changes);
  }

  async listPending(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    const pendingRun = (row: StoredRun) => row.status === "pending" && row.operationKind === "run";
    return this.table.activeCreatedBy(before, pendingRun).map(copyRow);
  }

  async listInflight(options?: RecoveryOptions): Promise<RunRecord[]> {
    const { before } = checkRecovery(options);
    return this.table.activeCreatedBy(before, () => true).map(copyRow);
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
  ): Promise<ThreadTokenUsage> {
    const input = checkAggregate(threadId, options);
    const counted = input.includeActive ? FINISHED_OR_ACTIVE : FINISHED;
    const tally = new TokenUsageTally();
    for (const run of visibleRuns(this.table, input.threadId, null)) {
      if (counted.has(run.status))
        tally.add(run.modelName, { runs: 1, ...run }, run.tokenUsageByModel);
    }
    return tally.result();
  }

  async createThreadOperation(runId: string, fields: ThreadOperationFields): Promise<Admission> {
    return admit(this.table, runId, fields, this.owners);
  }

  async startRun(runId: string): Promise<boolean> {
    return startRun(this.table, runId, this.owners);
  }

  async renewLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<LeaseRenewal> {
    return renewLease(this.table, runId, ownerWorkerId, lease, this.owners);
  }

  async updateLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<boolean> {
    return renewLease(this.table, runId, ownerWorkerId, lease, this.owners).renewed;
  }

  async requestCancel(runId: string, action: CancelAction): Promise<CancelAction | null> {
    return requestCancel(this.table, runId, action, this.owners);
  }

  async finalizeIfNotCancelled(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null; stopReason?: string | null },
  ): Promise<StatusFinalization> {
    return finalizeIfNotCancelled(this.table, runId, status, options, this.owners);
  }

  async claimForTakeover(runId: string, options: TakeoverOptions): Promise<boolean> {
    return claimForTakeover(this.table, runId, options, this.owners);
  }

  async listInflightWithExpiredLease(options?: ExpiredLeaseOptions): Promise<RunRecord[]> {
    return listInflightWithExpiredLease(this.table, options);
  }

  async claimNextRun(
    ownerWorkerId: string,
    lease: Lease,
    options?: { threadId?: string | null },
  ): Promise<RunRecord | null> {
    return claimNextRun(this.table, ownerWorkerId, lease, options);
  }

  async deleteThreadOperation(runId: string, userId: string | null): Promise<void> {
    return this.delete(runId, { userId });
  }

  async getManyByThread(
    threadId: string,
    runIds: readonly string[],
    options?: OwnerOptions,
  ): Promise<Record<string, RunRecord>> {
    return getManyByThread(this.table, threadId, runIds, options);
  }

  async listSuccessfulRegenerateSources(
    threadId: string,
    options?: OwnerOptions,
  ): Promise<string[]> {
    return listSuccessfulRegenerateSources(this.table, threadId, options);
  }

  async listEditRegenerateRuns(threadId: string, options?: OwnerOptions): Promise<RunRecord[]> {
    return listEditRegenerateRuns(this.table, threadId, options);
  }

  async listByThreadPage(
    threadId: string,
    options?: OwnerOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>> {
    return listByThreadPage(this.table, threadId, options, page);
  }

  async listPendingPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>> {
    return listPendingPage(this.table, options, page);
  }

  async listInflightPage(options?: RecoveryOptions, page?: PageRequest): Promise<Page<RunRecord>> {
    return listInflightPage(this.table, options, page);
  }

  async listInflightWithExpiredLeasePage(
    options?: ExpiredLeaseOptions,
    page?: PageRequest,
  ): Promise<Page<RunRecord>> {
    return listInflightWithExpiredLeasePage(this.table, options, page);
  }

  async searchRunsPage(search?: RunSearch, page?: PageRequest): Promise<Page<RunRecord>> {
    return searchRunsPage(this.table, search, page);
  }

  searchRuns(search?: RunSearch, pageSize?: number | null): AsyncIterable<RunRecord> {
    return eachItem((page) => this.searchRunsPage(search, page), pageSize);
  }

  async getRunStats(options?: RunStatsOptions): Promise<RunStats> {
    return getRunStats(this.table, options);
  }

  async listThreadsPage(options?: OwnerOptions, page?: PageRequest): Promise<Page<ThreadSummary>> {
    return listThreadsPage(this.table, options, page);
  }

  listThreads(options?: OwnerOptions, pageSize?: number | null): AsyncIterable<ThreadSummary> {
    return eachItem((page) => this.listThreadsPage(options, page), pageSize);
  }

  async deleteThread(threadId: string, options?: DeleteThreadOptions): Promise<number> {
    return deleteThread(this.table, threadId, options);
  }

  // Retention (memory-retention.ts; the sweeper is retention.ts).

  async claimSweep(holder: string, leaseMs: number): Promise<boolean> {
    return claimSweep(holder, leaseMs);
  }

  async sweepTerminal(cutoff: string, limit: number): Promise<number> {
    return sweepTerminal(this.table, cutoff, limit);
  }
}

/**
 * Whether a guarded completion to `target` may overwrite `current`: never a
 * different terminal outcome, except error over interrupted (a rollback).
 */
function completionMayOverwrite(current: RunStatus, target: RunStatus): boolean {
  return (
    ACTIVE.has(current) || current === target || (target === "error" && current === "interrupted")
  );
}
