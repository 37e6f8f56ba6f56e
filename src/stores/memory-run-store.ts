import {
  type ListByThreadOptions,
  nowTimestamp,
  type OwnerOptions,
  type PutFields,
  type RecoveryOptions,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  type RunStore,
  type ThreadTokenUsage,
} from "@runstore/client";
import { COUNTER_FIELDS } from "@runstore/client/internal";
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
import { compareCodePoints } from "./text.js";
import { TokenUsageTally } from "./token-usage.js";

const INFLIGHT: ReadonlySet<RunStatus> = new Set(["pending", "running"]);
const FINISHED: ReadonlySet<RunStatus> = new Set(["success", "error"]);
const FINISHED_OR_ACTIVE: ReadonlySet<RunStatus> = new Set(["success", "error", "running"]);

/**
 * The reference RunStore and the embedded default: every rule of docs/contract.md in
 * plain maps. Each method runs synchronously to its end, so every write is
 * atomic with respect to every other call. Runs are indexed by thread and
 * the in-flight ones kept apart, so no call scans every run except
 * listPending's filter over in-flight runs. Nothing survives a restart.
 */
export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private readonly byThread = new Map<string, Set<string>>();
  private readonly inflight = new Set<string>();

  async put(runId: string, fields: PutFields): Promise<void> {
    const input = checkPut(runId, fields);
    const now = nowTimestamp();
    const existing = this.runs.get(input.runId);
    const { createdAt, ...descriptive } = input;
    if (existing === undefined) {
      const record: RunRecord = {
        ...descriptive,
        createdAt: createdAt ?? now,
        updatedAt: now,
        totalInputTokens: 0,
        totalOutputTokens: 0,
        totalTokens: 0,
        llmCallCount: 0,
        leadAgentTokens: 0,
        subagentTokens: 0,
        middlewareTokens: 0,
        messageCount: 0,
        lastAiMessage: null,
        firstHumanMessage: null,
      };
      this.runs.set(record.runId, record);
      this.index(record);
    } else {
      this.unindex(existing);
      Object.assign(existing, descriptive, { updatedAt: now });
      this.index(existing);
    }
  }

  async get(runId: string, options?: OwnerOptions): Promise<RunRecord | null> {
    const { runId: id, userId } = checkOwned(runId, options);
    const record = this.visible(id, userId);
    return record === undefined ? null : copy(record);
  }

  async listByThread(threadId: string, options?: ListByThreadOptions): Promise<RunRecord[]> {
    const input = checkListByThread(threadId, options);
    if (input.limit === 0) return [];
    const rows: RunRecord[] = [];
    for (const id of this.byThread.get(input.threadId) ?? []) {
      const record = this.runs.get(id);
      if (record !== undefined && (input.userId === null || record.userId === input.userId)) {
        rows.push(record);
      }
    }
    rows.sort(
      (a, b) => compareCodePoints(b.createdAt, a.createdAt) || compareCodePoints(b.runId, a.runId),
    );
    return rows.slice(0, input.limit).map(copy);
  }

  async updateStatus(
    runId: string,
    status: RunStatus,
    options?: { error?: string | null },
  ): Promise<boolean> {
    const input = checkUpdateStatus(runId, status, options);
    const record = this.runs.get(input.runId);
    if (record === undefined) return false;
    record.status = input.status;
    if (input.error !== null) record.error = input.error;
    record.updatedAt = nowTimestamp();
    this.trackInflight(record);
    return true;
  }

  async delete(runId: string, options?: OwnerOptions): Promise<void> {
    const { runId: id, userId } = checkOwned(runId, options);
    const record = this.visible(id, userId);
    if (record === undefined) return;
    this.unindex(record);
    this.runs.delete(id);
  }

  async updateModelName(runId: string, modelName: string | null): Promise<void> {
    const input = checkUpdateModelName(runId, modelName);
    const record = this.runs.get(input.runId);
    if (record === undefined) return;
    record.modelName = input.modelName;
    record.updatedAt = nowTimestamp();
  }

  async updateRunCompletion(runId: string, completion: RunCompletion): Promise<boolean> {
    const input = checkCompletion(runId, completion);
    const record = this.runs.get(input.runId);
    if (record === undefined) return false;
    record.status = input.status;
    for (const [name] of COUNTER_FIELDS) record[name] = input[name];
    if (input.lastAiMessage !== null) record.lastAiMessage = input.lastAiMessage;
    if (input.firstHumanMessage !== null) record.firstHumanMessage = input.firstHumanMessage;
    if (input.error !== null) record.error = input.error;
    record.updatedAt = nowTimestamp();
    this.trackInflight(record);
    return true;
  }

  async updateRunProgress(runId: string, progress: RunProgress): Promise<void> {
    const input = checkProgress(runId, progress);
    const record = this.runs.get(input.runId);
    if (record === undefined || record.status !== "running") return;
    Object.assign(record, input.counters);
    if (input.lastAiMessage !== null) record.lastAiMessage = input.lastAiMessage;
    if (input.firstHumanMessage !== null) record.firstHumanMessage = input.firstHumanMessage;
    record.updatedAt = nowTimestamp();
  }

  async listPending(options?: RecoveryOptions): Promise<RunRecord[]> {
    return this.recoverable(checkRecovery(options).before, (s) => s === "pending");
  }

  async listInflight(options?: RecoveryOptions): Promise<RunRecord[]> {
    return this.recoverable(checkRecovery(options).before, (s) => INFLIGHT.has(s));
  }

  async aggregateTokensByThread(
    threadId: string,
    options?: { includeActive?: boolean },
  ): Promise<ThreadTokenUsage> {
    const input = checkAggregate(threadId, options);
    const counted = input.includeActive ? FINISHED_OR_ACTIVE : FINISHED;
    const tally = new TokenUsageTally();
    for (const id of this.byThread.get(input.threadId) ?? []) {
      const run = this.runs.get(id);
      if (run !== undefined && counted.has(run.status))
        tally.add(run.modelName, { runs: 1, ...run });
    }
    return tally.result();
  }

  /** The run when it exists and `userId` (if given) owns it. */
  private visible(runId: string, userId: string | null): RunRecord | undefined {
    const record = this.runs.get(runId);
    return record !== undefined && (userId === null || record.userId === userId)
      ? record
      : undefined;
  }

  private recoverable(before: string, wanted: (status: RunStatus) => boolean): RunRecord[] {
    const rows: RunRecord[] = [];
    for (const id of this.inflight) {
      const record = this.runs.get(id);
      if (record !== undefined && wanted(record.status) && record.createdAt <= before) {
        rows.push(record);
      }
    }
    rows.sort(
      (a, b) => compareCodePoints(a.createdAt, b.createdAt) || compareCodePoints(a.runId, b.runId),
    );
    return rows.map(copy);
  }

  private index(record: RunRecord): void {
    let thread = this.byThread.get(record.threadId);
    if (thread === undefined) {
      thread = new Set();
      this.byThread.set(record.threadId, thread);
    }
    thread.add(record.runId);
    this.trackInflight(record);
  }

  private unindex(record: RunRecord): void {
    const thread = this.byThread.get(record.threadId);
    thread?.delete(record.runId);
    if (thread?.size === 0) this.byThread.delete(record.threadId);
    this.inflight.delete(record.runId);
  }

  private trackInflight(record: RunRecord): void {
    if (INFLIGHT.has(record.status)) this.inflight.add(record.runId);
    else this.inflight.delete(record.runId);
  }
}

/** A copy the caller may change without touching the store. */
function copy(record: RunRecord): RunRecord {
  return {
    ...record,
    metadata: structuredClone(record.metadata),
    kwargs: structuredClone(record.kwargs),
  };
}
