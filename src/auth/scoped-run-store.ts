import {
  type Admission,
  type CancelAction,
  Code,
  ConnectError,
  type DeleteThreadOptions,
  idempotencyConflict,
  type Lease,
  type LeaseRenewal,
  type ListByThreadOptions,
  type OwnerOptions,
  type Page,
  type PageRequest,
  type PutFields,
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
  threadConflict,
  type UpdateStatusOptions,
} from "@runstore/client";
import { eachItem, pb } from "@runstore/client/internal";
import { compareCodePoints } from "../stores/text.js";

type ExpiredLeaseOptions = Parameters<RunStore["listInflightWithExpiredLease"]>[0];
type RecoveryOptions = Parameters<RunStore["listPending"]>[0];

/** PERMISSION_DENIED for a user-bound token; the message names the field or RPC. */
export function denied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

/** ABORTED for a thread busy with a run the caller may not see: names the thread only. */
function hiddenThreadConflict(threadId: string): ConnectError {
  return new ConnectError(
    `thread_id ${threadId} is busy with another user's run`,
    Code.Aborted,
    undefined,
    [{ desc: pb.ThreadConflictSchema, value: { threadId, conflictingRunId: "" } }],
  );
}

/**
 * A RunStore seen through a token bound to `users` (docs/security.md,
 * "Scoped tokens"): a named user outside the set is PERMISSION_DENIED; an
 * omitted user filter means the token's users; lists without a user filter
 * keep only the set's runs. Writes go straight to `store`, a view made with
 * withOwners(users) (src/stores/owners.ts): it checks the owner of the row a
 * write addresses, and the owners of the thread a new run joins, in the same
 * atomic step as the write, so nothing is read here before a write.
 */
export class ScopedRunStore implements RunStore {
  private readonly only: string | null;

  constructor(
    private readonly store: RunStore,
    private readonly users: ReadonlySet<string>,
  ) {
    this.only = users.size === 1 ? ([...users][0] ?? null) : null;
  }

  /** The user filter to apply: the named one (checked), the token's one, or null for several. */
  private filter(given: string | null | undefined): string | null {
    if (given === null || given === undefined) return this.only;
    if (!this.users.has(given)) throw denied("user_id is not one of this token's users");
    return given;
  }

  /** The owner a new row gets: the named one (checked) or the token's only user. */
  private newOwner(given: string | null | undefined): string {
    const user = this.filter(given);
    if (user === null) throw denied("user_id is required: this token is bound to several users");
    return user;
  }

  /**
   * The one user a history read or a thread deletion covers: the named one
   * (checked) or the token's only user. A token bound to several users
   * names one: pages of several users' merged rows would need a token per user.
   */
  private oneUser(given: string | null | undefined): string {
    const user = this.filter(given);
    if (user === null) throw denied("user_id is required: this token is bound to several users");
    return user;
  }

  /** A page of every user's rows with the others' left out; its token still walks the whole list. */
  private minePage(page: Page<RunRecord>): Page<RunRecord> {
    return { ...page, items: page.items.filter((run) => this.mine(run)) };
  }

  private mine(run: RunRecord): boolean {
    return run.userId !== null && this.users.has(run.userId);
  }

  /**
   * Conflicts name no row the token cannot see: an idempotency conflict on
   * another user's row says only that the key is taken; a thread busy with a
   * run outside the set (or one gone by now) keeps its ThreadConflict detail,
   * so SDKs still treat it as a conflict and never retry it, but with an empty
   * conflicting_run_id and a message naming only the thread.
   */
  private async conflictsHidden<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } catch (error) {
      const existing = idempotencyConflict(error);
      if (existing !== null && !this.mine(existing)) {
        throw denied("idempotency_key is held by a run of a user this token is not bound to");
      }
      const busy = threadConflict(error);
      if (busy !== null) {
        const holder = await this.store.get(busy.conflictingRunId);
        if (holder === null || !this.mine(holder)) throw hiddenThreadConflict(busy.threadId);
      }
      throw error;
    }
  }

  async put(runId: string, fields: PutFields): Promise<void> {
    const userId = this.newOwner(fields.userId);
    await this.conflictsHidden(this.store.put(runId, { ...fields, userId }));
  }

  async get(runId: string, options?: OwnerOptions): Promise<RunRecord | null> {
    const userId = this.filter(options?.userId);
    if (userId !== null) return this.store.get(runId, { userId });
    const run = await this.store.get(runId);
    return run !== null && this.mine(run) ? run : null;
  }

  async listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]> {
    const userId = this.filter(options?.userId);
    if (userId !== null) return this.store.listByThread(threadId, { ...options, userId });
    // Several users: each user's newest `limit`, merged in the store's order.
    const lists = await Promise.all(
      [...this.users].map((user) =>
        this.store.listByThread(threadId, { ...options, userId: user }),
      ),
    );
    const limit = options?.limit ?? 100;
    return lists
      .flat()
      .sort(
        (a, b) =>
          compareCodePoints(b.createdAt, a.createdAt) || compareCodePoints(b.runId, a.runId),
      )
      .slice(0, limit);
  }

  async updateStatus(runId: string, status: RunStatus, options?: UpdateStatusOptions) {
    return this.store.updateStatus(runId, status, options);
  }

  async delete(runId: string, options?: OwnerOptions): Promise<void> {
    // No user named: the token's run, whichever of its users owns it.
    const named =
      options?.userId === null || options?.userId === undefined
        ? null
        : this.filter(options.userId);
    await this.store.delete(runId, { userId: named });
  }

  async updateModelName(runId: string, modelName: string | null): Promise<void> {
    return this.store.updateModelName(runId, modelName);
  }

  async updateRunCompletion(runId: string, completion: RunCompletion) {
    return this.store.updateRunCompletion(runId, completion);
  }

  async updateRunProgress(runId: string, progress: RunProgress): Promise<void> {
    return this.store.updateRunProgress(runId, progress);
  }

  async listPending(options?: RecoveryOptions): Promise<RunRecord[]> {
    return (await this.store.listPending(options)).filter((run) => this.mine(run));
  }

  async listInflight(options?: RecoveryOptions): Promise<RunRecord[]> {
    return (await this.store.listInflight(options)).filter((run) => this.mine(run));
  }

  async aggregateTokensByThread(): Promise<ThreadTokenUsage> {
    throw denied(
      "AggregateTokensByThread counts every user's runs on the thread: it needs an unbound (admin) token",
    );
  }

  async createThreadOperation(runId: string, fields: ThreadOperationFields): Promise<Admission> {
    const userId = this.newOwner(fields.userId);
    const strategy = fields.multitaskStrategy ?? "reject";
    if (strategy === "interrupt" || strategy === "rollback") {
      throw denied(
        `multitask_strategy ${strategy} interrupts the thread's active runs whoever owns them: it needs an unbound (admin) token`,
      );
    }
    // A stored row answered as a retry that is someone else's is refused by the store.
    return this.conflictsHidden(this.store.createThreadOperation(runId, { ...fields, userId }));
  }

  async startRun(runId: string): Promise<boolean> {
    return this.store.startRun(runId);
  }

  async renewLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<LeaseRenewal> {
    return this.store.renewLease(runId, ownerWorkerId, lease);
  }

  async updateLease(runId: string, ownerWorkerId: string, lease: Lease): Promise<boolean> {
    return this.store.updateLease(runId, ownerWorkerId, lease);
  }

  async requestCancel(runId: string, action: CancelAction): Promise<CancelAction | null> {
    return this.store.requestCancel(runId, action);
  }

  async finalizeIfNotCancelled(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null; stopReason?: string | null },
  ): Promise<StatusFinalization> {
    return this.store.finalizeIfNotCancelled(runId, status, options);
  }

  async claimForTakeover(runId: string, options: TakeoverOptions): Promise<boolean> {
    return this.store.claimForTakeover(runId, options);
  }

  async listInflightWithExpiredLease(options?: ExpiredLeaseOptions): Promise<RunRecord[]> {
    return (await this.store.listInflightWithExpiredLease(options)).filter((run) => this.mine(run));
  }

  async claimNextRun(): Promise<RunRecord | null> {
    throw denied(
      "ClaimNextRun takes the oldest queued run of any user: it needs an unbound (admin) token",
    );
  }

  async deleteThreadOperation(runId: string, userId: string | null): Promise<void> {
    return this.delete(runId, { userId });
  }

  async getManyByThread(
    threadId: string,
    runIds: readonly string[],
    options?: OwnerOptions,
  ): Promise<Record<string, RunRecord>> {
    const userId = this.filter(options?.userId);
    if (userId !== null) return this.store.getManyByThread(threadId, runIds, { userId });
    const found = await this.store.getManyByThread(threadId, runIds);
    return Object.fromEntries(Object.entries(found).filter(([, run]) => this.mine(run)));
  }

  async listSuccessfulRegenerateSources(
    threadId: string,
    options?: OwnerOptions,
  ): Promise<string[]> {
    const userId = this.filter(options?.userId);
    if (userId !== null) return this.store.listSuccessfulRegenerateSources(threadId, { userId });
    const lists = await Promise.all(
      [...this.users].map((user) =>
        this.store.listSuccessfulRegenerateSources(threadId, { userId: user }),
      ),
    );
    return [...new Set(lists.flat())].sort(compareCodePoints);
  }

  async listEditRegenerateRuns(threadId: string, options?: OwnerOptions): Promise<RunRecord[]> {
    const userId = this.filter(options?.userId);
    if (userId !== null) return this.store.listEditRegenerateRuns(threadId, { userId });
    return (await this.store.listEditRegenerateRuns(threadId)).filter((run) => this.mine(run));
  }

  // History: a user-bound token reads and deletes its one user's rows only.

  async listByThreadPage(threadId: string, options?: OwnerOptions, page?: PageRequest) {
    const userId = this.oneUser(options?.userId);
    return this.store.listByThreadPage(threadId, { userId }, page);
  }

  async listPendingPage(options?: RecoveryOptions, page?: PageRequest) {
    return this.minePage(await this.store.listPendingPage(options, page));
  }

  async listInflightPage(options?: RecoveryOptions, page?: PageRequest) {
    return this.minePage(await this.store.listInflightPage(options, page));
  }

  async listInflightWithExpiredLeasePage(options?: ExpiredLeaseOptions, page?: PageRequest) {
    return this.minePage(await this.store.listInflightWithExpiredLeasePage(options, page));
  }

  async searchRunsPage(search?: RunSearch, page?: PageRequest): Promise<Page<RunRecord>> {
    const userId = this.oneUser(search?.userId);
    return this.store.searchRunsPage({ ...search, userId }, page);
  }

  searchRuns(search?: RunSearch, pageSize?: number | null): AsyncIterable<RunRecord> {
    return eachItem((page) => this.searchRunsPage(search, page), pageSize);
  }

  async getRunStats(options?: RunStatsOptions): Promise<RunStats> {
    const userId = this.oneUser(options?.userId);
    return this.store.getRunStats({ ...options, userId });
  }

  async listThreadsPage(options?: OwnerOptions, page?: PageRequest): Promise<Page<ThreadSummary>> {
    const userId = this.oneUser(options?.userId);
    return this.store.listThreadsPage({ userId }, page);
  }

  listThreads(options?: OwnerOptions, pageSize?: number | null): AsyncIterable<ThreadSummary> {
    return eachItem((page) => this.listThreadsPage(options, page), pageSize);
  }

  async deleteThread(threadId: string, options?: DeleteThreadOptions): Promise<number> {
    const userId = this.oneUser(options?.userId);
    return this.store.deleteThread(threadId, { ...options, userId });
  }
}
