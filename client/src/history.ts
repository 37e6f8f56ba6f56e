import type { OperationKind, OwnerOptions, RunStatus, TimestampInput } from "./run-store.js";

// History, accounting and retention (docs/contract.md, "History"): the
// record types of SearchRuns, GetRunStats, ListThreads, DeleteThread and of
// the keyset pages every list may be read in.

/** One page of a keyset-paged list: the request's rows, then where to go on. */
export interface PageRequest {
  /** 1 to 1000; default 100. */
  pageSize?: number | null;
  /** The previous page's nextPageToken; null or "" for the first page. */
  pageToken?: string | null;
}

/** A page: its items, the token of the next page, and whether there is one. */
export interface Page<T> {
  items: T[];
  /** null when hasMore is false. */
  nextPageToken: string | null;
  /** true when items after this page remained when it was read. */
  hasMore: boolean;
}

/** Metadata equality filters: top-level keys and their string, number or bool values. */
export type MetadataFilter = Record<string, string | number | boolean>;

/** SearchRuns' filters; every given one must hold. Omitted or null means no filter. */
export interface RunSearch extends OwnerOptions {
  threadId?: string | null;
  /** Any of these; empty or omitted: every status. */
  statuses?: readonly RunStatus[] | null;
  assistantId?: string | null;
  modelName?: string | null;
  /** Any of these; empty or omitted: runs only. */
  operationKinds?: readonly OperationKind[] | null;
  /** Created at or after this instant. */
  createdAfter?: TimestampInput | null;
  /** Created strictly before this instant. */
  createdBefore?: TimestampInput | null;
  /** At most 16 keys. */
  metadata?: MetadataFilter | null;
}

/** GetRunStats' scope: a user (or all), a creation range, the days' UTC offset. */
export interface RunStatsOptions extends OwnerOptions {
  createdAfter?: TimestampInput | null;
  createdBefore?: TimestampInput | null;
  /** "+HH:MM" or "-HH:MM", -14:00 to +14:00; default "+00:00". */
  utcOffset?: string | null;
}

/** Token counters summed over runs. */
export interface TokenTotals {
  runs: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  /** Summed from token_usage_by_model only; 0 in a run's plain totals. */
  cacheReadTokens: number;
}

/** One local day (in the request's UTC offset) of runs and tokens. */
export interface DayStats {
  /** YYYY-MM-DD. */
  date: string;
  tokens: TokenTotals;
  byModel: Record<string, TokenTotals>;
}

/** GetRunStats' answer (rows of kind run only; tokens of every status). */
export interface RunStats {
  totalRuns: number;
  /** Statuses without runs are left out. */
  byStatus: Partial<Record<RunStatus, number>>;
  /** pending + running. */
  activeRuns: number;
  /** error + timeout. */
  failedRuns: number;
  tokens: TokenTotals;
  /** token_usage_by_model, or a run's totals under its model_name ("unknown" when null). */
  byModel: Record<string, TokenTotals>;
  /** Days that have runs, oldest first. */
  days: DayStats[];
}

/** A thread's state derived from its rows, as LangGraph derives it. */
export type ThreadStatus = "idle" | "busy" | "interrupted" | "error";

/** The thread statuses, in proto order. */
export const THREAD_STATUSES: readonly ThreadStatus[] = ["idle", "busy", "interrupted", "error"];

/** One thread, summarised over its visible runs. */
export interface ThreadSummary {
  threadId: string;
  runCount: number;
  /** The newest run by created_at, then run_id. */
  latestRunId: string;
  latestRunStatus: RunStatus;
  latestRunUpdatedAt: string;
  /** The latest updated_at over the visible runs: the listing's sort key. */
  lastActivityAt: string;
  totalTokens: number;
  status: ThreadStatus;
}

/** DeleteThread's options. */
export interface DeleteThreadOptions extends OwnerOptions {
  /** Remove active rows too instead of refusing with FailedPrecondition. */
  force?: boolean;
}

/** Every item of every page, fetching the next page only when the caller reaches it. */
export async function* eachItem<T>(
  fetchPage: (page: PageRequest) => Promise<Page<T>>,
  pageSize?: number | null,
): AsyncGenerator<T, void, undefined> {
  let pageToken: string | null = null;
  do {
    const page: Page<T> = await fetchPage({ pageSize: pageSize ?? null, pageToken });
    yield* page.items;
    pageToken = page.hasMore ? page.nextPageToken : null;
  } while (pageToken !== null);
}
