import type {
  Admission,
  CancelAction,
  Lease,
  LeaseRenewal,
  Page,
  PageRequest,
  PutFields,
  RunCompletion,
  RunRecord,
  RunStats,
  RunStatus,
  RunStore,
  StatusFinalization,
  TakeoverOptions,
  ThreadOperationFields,
  TokenTotals,
} from "@runstore/client";
import { assert } from "vitest";

// How a case's step calls the TypeScript RunStore: the wire (snake_case)
// arguments of cases/*.json in the interface's call shape, and the result
// back in wire form. python/tests/contract/case_runner.py does the same for
// GrpcRunStore.

/**
 * The store methods a step may call, by their contract names: every method
 * of the contract. python/tests/contract/case_runner.py keeps the same list.
 */
export const CASE_METHODS = [
  "put",
  "get",
  "list_by_thread",
  "update_status",
  "delete",
  "update_model_name",
  "update_run_completion",
  "update_run_progress",
  "list_pending",
  "list_inflight",
  "aggregate_tokens_by_thread",
  "create_thread_operation",
  "start_run",
  "renew_lease",
  "update_lease",
  "request_cancel",
  "finalize_if_not_cancelled",
  "claim_for_takeover",
  "list_inflight_with_expired_lease",
  "claim_next_run",
  "delete_thread_operation",
  "get_many_by_thread",
  "list_successful_regenerate_sources",
  "list_edit_regenerate_runs",
  "list_by_thread_page",
  "list_pending_page",
  "list_inflight_page",
  "list_inflight_with_expired_lease_page",
  "search_runs_page",
  "search_runs",
  "get_run_stats",
  "list_threads_page",
  "list_threads",
  "delete_thread",
] as const;

/** A contract method name. */
export type CaseMethod = (typeof CASE_METHODS)[number];

/**
 * The record keys of part 1 (docs/contract.md before coordination), in wire
 * spelling. Part 1's case files compare records on these only, so the fields
 * part 2 added do not change what they assert; coordination-*.json compare
 * whole records. python/tests/contract/case_runner.py keeps the same list.
 */
export const PART_1_RECORD_KEYS: readonly string[] = [
  "run_id",
  "thread_id",
  "assistant_id",
  "user_id",
  "model_name",
  "status",
  "multitask_strategy",
  "metadata",
  "kwargs",
  "error",
  "created_at",
  "updated_at",
  "total_input_tokens",
  "total_output_tokens",
  "total_tokens",
  "llm_call_count",
  "lead_agent_tokens",
  "subagent_tokens",
  "middleware_tokens",
  "message_count",
  "last_ai_message",
  "first_human_message",
];

type Args = Record<string, unknown>;

function snakeToCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The top-level keys in the other spelling; values (metadata, model names) untouched. */
function renameKeys(value: object, rename: (name: string) => string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [rename(key), item]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A token_usage_by_model map in the other spelling: model names kept, each
 * model's counter names renamed. Anything that is not a map of objects is
 * handed over as it is, for the store to refuse.
 */
function usageMap(value: unknown, rename: (name: string) => string): unknown {
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([model, usage]) => [
      model,
      isPlainObject(usage) ? renameKeys(usage, rename) : usage,
    ]),
  );
}

/** A lease argument, {"expires_at"} or {"duration_ms"}, as {expiresAt} / {durationMs}. */
function lease(value: unknown): Lease {
  return (isPlainObject(value) ? renameKeys(value, snakeToCamel) : value) as Lease;
}

/**
 * A call's options object: wire names in the interface's spelling, a lease
 * and a usage map converted inside too.
 */
function camel(args: Args): Record<string, never> {
  const options = renameKeys(args, snakeToCamel);
  if ("lease" in options) options.lease = lease(options.lease);
  if ("tokenUsageByModel" in options) {
    options.tokenUsageByModel = usageMap(options.tokenUsageByModel, snakeToCamel);
  }
  return options as Record<string, never>;
}

/** How the results of one case file are compared: whole records, or part 1's keys. */
export class WireForm {
  constructor(private readonly recordKeys: readonly string[] | null) {}

  /** A record (or null) in wire form: snake_case keys, usage map counters too. */
  record(record: RunRecord | null): unknown {
    if (record === null) return null;
    const wire = renameKeys(record, camelToSnake);
    if ("token_usage_by_model" in wire) {
      wire.token_usage_by_model = usageMap(wire.token_usage_by_model, camelToSnake);
    }
    const keys = this.recordKeys;
    return keys === null
      ? wire
      : Object.fromEntries(Object.entries(wire).filter(([key]) => keys.includes(key)));
  }

  records(records: RunRecord[]): unknown {
    return records.map((record) => this.record(record));
  }
}

/** The methods that return nothing: the call must resolve to undefined. */
const VOID = (result: unknown) => {
  assert.strictEqual(result, undefined, "a method that returns nothing returned something");
  return null;
};

const AS_IS = (result: unknown) => result;

interface Call {
  invoke(store: RunStore, args: Args): Promise<unknown>;
  toWire(result: unknown, wire: WireForm): unknown;
}

function usageToWire(usage: unknown): unknown {
  const wire = renameKeys(usage as object, camelToSnake);
  return { ...wire, by_caller: renameKeys(wire.by_caller as object, camelToSnake) };
}

const record: Call["toWire"] = (result, wire) => wire.record(result as RunRecord | null);
const records: Call["toWire"] = (result, wire) => wire.records(result as RunRecord[]);

/**
 * A case's page arguments (page_size, page_token) as a PageRequest, apart
 * from the filters; undefined when the step gives neither.
 */
function splitPage(args: Args): [filters: Args, page: PageRequest | undefined] {
  const { page_size, page_token, ...filters } = args;
  if (!("page_size" in args) && !("page_token" in args)) return [filters, undefined];
  const page: Record<string, unknown> = {};
  if ("page_size" in args) page.pageSize = page_size;
  if ("page_token" in args) page.pageToken = page_token;
  return [filters, page as PageRequest];
}

/** A page in wire form: {items, next_page_token, has_more}, each item converted. */
function page(item: Call["toWire"]): Call["toWire"] {
  return (result, wire) => {
    const { items, nextPageToken, hasMore } = result as Page<unknown>;
    return {
      items: items.map((each) => item(each, wire)),
      next_page_token: nextPageToken,
      has_more: hasMore,
    };
  };
}

/**
 * A page method whose filters are one options object: the step's page
 * arguments apart, the rest in the interface's spelling; items in wire form.
 */
function paged(
  list: (s: RunStore, options: Record<string, never>, given?: PageRequest) => Promise<unknown>,
  item: Call["toWire"] = record,
): Call {
  return {
    invoke: (s, args) => {
      const [filters, given] = splitPage(args);
      return list(s, camel(filters), given);
    },
    toWire: page(item),
  };
}

/** Every item of an iterator over pages (searchRuns, listThreads), in order. */
async function collect(items: AsyncIterable<unknown>): Promise<unknown[]> {
  const all: unknown[] = [];
  for await (const item of items) all.push(item);
  return all;
}

const thread: Call["toWire"] = (result) => renameKeys(result as object, camelToSnake);

function totalsByModel(byModel: Record<string, TokenTotals>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(byModel).map(([model, totals]) => [model, renameKeys(totals, camelToSnake)]),
  );
}

/**
 * Run statistics in wire form: snake_case keys (model names kept), and
 * by_status as the response's list of {status, runs}, in the answer's order.
 */
function statsToWire(result: unknown): unknown {
  const stats = result as RunStats;
  return {
    total_runs: stats.totalRuns,
    by_status: Object.entries(stats.byStatus).map(([status, runs]) => ({ status, runs })),
    active_runs: stats.activeRuns,
    failed_runs: stats.failedRuns,
    tokens: renameKeys(stats.tokens, camelToSnake),
    by_model: totalsByModel(stats.byModel),
    days: stats.days.map((day) => ({
      date: day.date,
      tokens: renameKeys(day.tokens, camelToSnake),
      by_model: totalsByModel(day.byModel),
    })),
  };
}

/*
 * The wire arguments of a case as the TypeScript interface takes them. The
 * values are handed over as they are, a wrong type included: the store must
 * refuse it as the server would, so the casts only quiet the compiler.
 */
export const CALLS: Record<CaseMethod, Call> = {
  put: {
    invoke: (s, { run_id, ...rest }) =>
      s.put(run_id as string, camel(rest) as unknown as PutFields),
    toWire: VOID,
  },
  get: {
    invoke: (s, { run_id, ...rest }) => s.get(run_id as string, camel(rest)),
    toWire: record,
  },
  list_by_thread: {
    invoke: (s, { thread_id, ...rest }) => s.listByThread(thread_id as string, camel(rest)),
    toWire: records,
  },
  update_status: {
    invoke: (s, { run_id, status, ...rest }) =>
      s.updateStatus(run_id as string, status as RunStatus, camel(rest)),
    toWire: AS_IS,
  },
  delete: {
    invoke: (s, { run_id, ...rest }) => s.delete(run_id as string, camel(rest)),
    toWire: VOID,
  },
  update_model_name: {
    invoke: (s, { run_id, model_name }) =>
      s.updateModelName(run_id as string, model_name as string | null),
    toWire: VOID,
  },
  update_run_completion: {
    invoke: (s, { run_id, ...rest }) =>
      s.updateRunCompletion(run_id as string, camel(rest) as unknown as RunCompletion),
    toWire: AS_IS,
  },
  update_run_progress: {
    invoke: (s, { run_id, ...rest }) => s.updateRunProgress(run_id as string, camel(rest)),
    toWire: VOID,
  },
  list_pending: {
    invoke: (s, args) => s.listPending(camel(args)),
    toWire: records,
  },
  list_inflight: {
    invoke: (s, args) => s.listInflight(camel(args)),
    toWire: records,
  },
  aggregate_tokens_by_thread: {
    invoke: (s, { thread_id, ...rest }) =>
      s.aggregateTokensByThread(thread_id as string, camel(rest)),
    toWire: usageToWire,
  },
  // Part 2: coordination between workers.
  create_thread_operation: {
    invoke: (s, { run_id, ...rest }) =>
      s.createThreadOperation(run_id as string, camel(rest) as unknown as ThreadOperationFields),
    toWire: (result, wire) => {
      const { run, takenOver } = result as Admission;
      return { run: wire.record(run), taken_over: wire.records(takenOver) };
    },
  },
  start_run: {
    invoke: (s, { run_id }) => s.startRun(run_id as string),
    toWire: AS_IS,
  },
  renew_lease: {
    invoke: (s, { run_id, owner_worker_id, lease: given }) =>
      s.renewLease(run_id as string, owner_worker_id as string, lease(given)),
    toWire: (result) => {
      const { renewed, cancelAction } = result as LeaseRenewal;
      return { renewed, cancel_action: cancelAction };
    },
  },
  update_lease: {
    invoke: (s, { run_id, owner_worker_id, lease: given }) =>
      s.updateLease(run_id as string, owner_worker_id as string, lease(given)),
    toWire: AS_IS,
  },
  request_cancel: {
    invoke: (s, { run_id, action }) => s.requestCancel(run_id as string, action as CancelAction),
    toWire: AS_IS,
  },
  finalize_if_not_cancelled: {
    invoke: (s, { run_id, status, ...rest }) =>
      s.finalizeIfNotCancelled(run_id as string, status as RunStatus, camel(rest)),
    toWire: (result) => {
      const { finalized, cancelAction } = result as StatusFinalization;
      return { finalized, cancel_action: cancelAction };
    },
  },
  claim_for_takeover: {
    invoke: (s, { run_id, ...rest }) =>
      s.claimForTakeover(run_id as string, camel(rest) as unknown as TakeoverOptions),
    toWire: AS_IS,
  },
  list_inflight_with_expired_lease: {
    invoke: (s, args) => s.listInflightWithExpiredLease(camel(args)),
    toWire: records,
  },
  claim_next_run: {
    invoke: (s, { owner_worker_id, lease: given, ...rest }) =>
      s.claimNextRun(owner_worker_id as string, lease(given), camel(rest)),
    toWire: record,
  },
  delete_thread_operation: {
    invoke: (s, { run_id, user_id }) =>
      s.deleteThreadOperation(run_id as string, user_id as string | null),
    toWire: VOID,
  },
  get_many_by_thread: {
    invoke: (s, { thread_id, run_ids, ...rest }) =>
      s.getManyByThread(thread_id as string, run_ids as string[], camel(rest)),
    toWire: (result, wire) =>
      Object.fromEntries(
        Object.entries(result as Record<string, RunRecord>).map(([id, run]) => [
          id,
          wire.record(run),
        ]),
      ),
  },
  list_successful_regenerate_sources: {
    invoke: (s, { thread_id, ...rest }) =>
      s.listSuccessfulRegenerateSources(thread_id as string, camel(rest)),
    toWire: AS_IS,
  },
  list_edit_regenerate_runs: {
    invoke: (s, { thread_id, ...rest }) =>
      s.listEditRegenerateRuns(thread_id as string, camel(rest)),
    toWire: records,
  },
  // Part 3: history, accounting and retention.
  list_by_thread_page: {
    invoke: (s, { thread_id, ...rest }) => {
      const [filters, given] = splitPage(rest);
      return s.listByThreadPage(thread_id as string, camel(filters), given);
    },
    toWire: page(record),
  },
  list_pending_page: paged((s, options, given) => s.listPendingPage(options, given)),
  list_inflight_page: paged((s, options, given) => s.listInflightPage(options, given)),
  list_inflight_with_expired_lease_page: paged((s, options, given) =>
    s.listInflightWithExpiredLeasePage(options, given),
  ),
  search_runs_page: paged((s, options, given) => s.searchRunsPage(options, given)),
  search_runs: {
    invoke: (s, { page_size, ...rest }) =>
      collect(s.searchRuns(camel(rest), page_size as number | undefined)),
    toWire: records,
  },
  get_run_stats: {
    invoke: (s, args) => s.getRunStats(camel(args)),
    toWire: statsToWire,
  },
  list_threads_page: paged((s, options, given) => s.listThreadsPage(options, given), thread),
  list_threads: {
    invoke: (s, { page_size, ...rest }) =>
      collect(s.listThreads(camel(rest), page_size as number | undefined)),
    toWire: (result, wire) => (result as unknown[]).map((each) => thread(each, wire)),
  },
  delete_thread: {
    invoke: (s, { thread_id, ...rest }) => s.deleteThread(thread_id as string, camel(rest)),
    toWire: AS_IS,
  },
};
