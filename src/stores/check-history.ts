import type {
  DeleteThreadOptions,
  ExpiredLeaseOptions,
  OperationKind,
  OwnerOptions,
  PageRequest,
  RecoveryOptions,
  RunSearch,
  RunStatsOptions,
  RunStatus,
} from "@runstore/client";
import {
  checkBoolean,
  checkId,
  checkOperationKind,
  checkOptionalId,
  checkOptionalText,
  checkStatus,
  checkString,
  invalidArgument,
  nowTimestamp,
  parseTimestamp,
} from "@runstore/client/internal";
import { checkOptionalTimestamp } from "./check-coordination.js";
import { optionsOf } from "./check-input.js";
import {
  DEFAULT_PAGE_SIZE,
  decodePageToken,
  encodePageToken,
  PAGE_SIZE_MAX,
  PAGE_SIZE_MIN,
} from "./page-token.js";
import { normalizeModelName } from "./text.js";

// The argument checks of the history RPCs (docs/contract.md, "History"),
// called first by every backend like check-input.ts. They also turn page
// tokens back into the sort key to continue after, so the stores only see
// checked values.

/** The most metadata keys one search may filter on. */
export const MAX_METADATA_FILTERS = 16;

/** A checked page request: its size and the sort key to continue after (null: first page). */
export interface PageInput {
  size: number;
  after: string[] | null;
  /** The instant the first page fixed, carried by the token; null when none. */
  pinned: string | null;
  /** Makes the token of the page ending at `last`. */
  tokenAfter(last: string[]): string;
}

/** A run's sort key: [created_at, run_id]. */
export type RunKey = [createdAt: string, runId: string];

/**
 * Checks a page request of list `list` whose request filters are `filters`
 * (canonical: equal filters give equal JSON). The token's sort key is
 * checked with `checkKey` so that only well-formed values reach a query.
 */
export function checkPage(
  page: PageRequest | undefined,
  list: string,
  filters: unknown,
  checkKey: (key: string[]) => string[] = checkRunKey,
): PageInput {
  const opts = optionsOf("page", page);
  const size = checkPageSize(opts.pageSize);
  const token = opts.pageToken ?? "";
  if (typeof token !== "string") throw invalidArgument("page_token", "must be a string");
  const cursor = token === "" ? null : decodePageToken(token, list, filters, 2);
  const pinned = cursor?.pinned == null ? null : parseTimestamp(cursor.pinned, "page_token");
  return {
    size,
    after: cursor === null ? null : checkKey(cursor.after),
    pinned,
    tokenAfter: (last) => encodePageToken(list, filters, last, pinned),
  };
}

/** page_size: 1 to 1000, default 100. */
function checkPageSize(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_PAGE_SIZE;
  if (
    typeof value !== "number" ||
    !Number.isInteger(value) ||
    value < PAGE_SIZE_MIN ||
    value > PAGE_SIZE_MAX
  ) {
    throw invalidArgument(
      "page_size",
      `must be an integer from ${PAGE_SIZE_MIN} to ${PAGE_SIZE_MAX}`,
    );
  }
  return value;
}

/** A run sort key from a token: a timestamp and a run id. */
export function checkRunKey(key: string[]): RunKey {
  return [parseTimestamp(key[0] ?? "", "page_token"), checkId("page_token", key[1])];
}

/** A thread sort key from a token: a timestamp and a thread id. */
export function checkThreadKey(key: string[]): string[] {
  return [parseTimestamp(key[0] ?? "", "page_token"), checkId("page_token", key[1])];
}

/** The page a store answers: the first `size` rows, and a token when more remain. */
export function pageOf<T>(
  rows: T[],
  page: PageInput,
  keyOf: (row: T) => string[],
): { items: T[]; nextPageToken: string | null; hasMore: boolean } {
  const hasMore = rows.length > page.size;
  const items = hasMore ? rows.slice(0, page.size) : rows;
  const last = items.at(-1);
  return {
    items,
    hasMore,
    nextPageToken: hasMore && last !== undefined ? page.tokenAfter(keyOf(last)) : null,
  };
}

/** A run's sort key. */
export function runKey(run: { createdAt: string; runId: string }): RunKey {
  return [run.createdAt, run.runId];
}

/** Checks listByThreadPage's arguments. */
export function checkThreadPage(
  threadId: unknown,
  options: OwnerOptions | undefined,
  page?: PageRequest,
) {
  const opts = optionsOf("options", options);
  const filters = {
    threadId: checkId("thread_id", threadId),
    userId: checkOptionalId("user_id", opts.userId),
  };
  return { ...filters, page: checkPage(page, "list_by_thread", filters) };
}

/**
 * Checks listPendingPage's / listInflightPage's arguments. `before` not
 * given is pinned by the first page to its now, so every page lists the
 * same range.
 */
export function checkRecoveryPage(
  list: string,
  options: RecoveryOptions | undefined,
  page?: PageRequest,
) {
  const opts = optionsOf("options", options);
  const given = checkOptionalTimestamp("before", opts.before);
  const checked = checkPage(page, list, { before: given });
  const pinned = given ?? checked.pinned ?? nowTimestamp();
  const tokenAfter = (last: string[]) =>
    encodePageToken(list, { before: given }, last, given === null ? pinned : null);
  return { before: pinned, page: { ...checked, pinned, tokenAfter } };
}

/** Checks listInflightWithExpiredLeasePage's arguments (before null: the store's now, per page). */
export function checkExpiredLeasePage(
  options: ExpiredLeaseOptions | undefined,
  page?: PageRequest,
) {
  const opts = optionsOf("options", options);
  const filters = {
    before: checkOptionalTimestamp("before", opts.before),
    graceSeconds: opts.graceSeconds ?? null,
  };
  return { ...filters, page: checkPage(page, "list_inflight_with_expired_lease", filters) };
}

/** A checked search: every filter normalised (sorted, deduplicated) so equal searches compare equal. */
export interface SearchInput {
  userId: string | null;
  threadId: string | null;
  statuses: RunStatus[];
  assistantId: string | null;
  modelName: string | null;
  operationKinds: OperationKind[];
  createdAfter: string | null;
  createdBefore: string | null;
  /** [key, value] pairs sorted by key. */
  metadata: [string, string | number | boolean][];
}

/** Checks searchRunsPage's arguments. */
export function checkSearch(search: RunSearch | undefined, page?: PageRequest) {
  const opts = optionsOf("search", search);
  const filters: SearchInput = {
    userId: checkOptionalId("user_id", opts.userId),
    threadId: checkOptionalId("thread_id", opts.threadId),
    statuses: checkNames("statuses", opts.statuses, checkStatus),
    assistantId:
      opts.assistantId == null ? null : checkString("assistant_id", opts.assistantId, 0, 128),
    // Normalised as put stores it, so a filter matches what put was given.
    modelName: normalizeModelName(checkOptionalText("model_name", opts.modelName)),
    operationKinds: checkNames("operation_kinds", opts.operationKinds, checkOperationKind),
    createdAfter: checkOptionalTimestamp("created_after", opts.createdAfter),
    createdBefore: checkOptionalTimestamp("created_before", opts.createdBefore),
    metadata: checkMetadataFilter(opts.metadata),
  };
  if (filters.operationKinds.length === 0) filters.operationKinds = ["run"];
  return { filters, page: checkPage(page, "search_runs", filters) };
}

/** A list of enum names: each checked, then sorted and deduplicated. */
function checkNames<T extends string>(
  field: string,
  value: readonly unknown[] | null | undefined,
  check: (field: string, value: unknown) => T,
): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidArgument(field, "must be a list");
  const names = value.map((item, index) => check(`${field}[${index}]`, item));
  return [...new Set(names)].sort();
}

/** metadata: at most 16 top-level keys, each value a string, finite number or bool. */
function checkMetadataFilter(value: unknown): [string, string | number | boolean][] {
  if (value === undefined || value === null) return [];
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument("metadata", "must be an object of top-level keys and values");
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_METADATA_FILTERS) {
    throw invalidArgument("metadata", `must have at most ${MAX_METADATA_FILTERS} keys`);
  }
  for (const [key, item] of entries) {
    checkString("metadata key", key, 1, 255);
    const scalar =
      typeof item === "string" ||
      typeof item === "boolean" ||
      (typeof item === "number" && Number.isFinite(item));
    if (!scalar) throw invalidArgument(`metadata.${key}`, "must be a string, number or bool");
  }
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) as [
    string,
    string | number | boolean,
  ][];
}

/** The most a UTC offset may be, in minutes (±14:00). */
const MAX_OFFSET_MINUTES = 14 * 60;

/** Checks getRunStats's arguments; the offset becomes minutes east of UTC. */
export function checkStats(options: RunStatsOptions | undefined) {
  const opts = optionsOf("options", options);
  return {
    userId: checkOptionalId("user_id", opts.userId),
    createdAfter: checkOptionalTimestamp("created_after", opts.createdAfter),
    createdBefore: checkOptionalTimestamp("created_before", opts.createdBefore),
    offsetMinutes: checkUtcOffset(opts.utcOffset),
  };
}

/** "+HH:MM" / "-HH:MM" between -14:00 and +14:00 → minutes; empty or null → 0. */
export function checkUtcOffset(value: unknown): number {
  if (value === undefined || value === null || value === "") return 0;
  const match = typeof value === "string" ? /^([+-])(\d\d):(\d\d)$/.exec(value) : null;
  const minutes = match === null ? Number.NaN : Number(match[2]) * 60 + Number(match[3]);
  if (match === null || Number(match[3]) > 59 || minutes > MAX_OFFSET_MINUTES) {
    throw invalidArgument("utc_offset", 'must be "+HH:MM" or "-HH:MM" between -14:00 and +14:00');
  }
  return match[1] === "-" ? -minutes : minutes;
}

/** Checks listThreadsPage's arguments. */
export function checkThreadListing(options: OwnerOptions | undefined, page?: PageRequest) {
  const opts = optionsOf("options", options);
  const filters = { userId: checkOptionalId("user_id", opts.userId) };
  return { ...filters, page: checkPage(page, "list_threads", filters, checkThreadKey) };
}

/** Checks deleteThread's arguments. */
export function checkDeleteThread(threadId: unknown, options: DeleteThreadOptions | undefined) {
  const opts = optionsOf("options", options);
  return {
    threadId: checkId("thread_id", threadId),
    userId: checkOptionalId("user_id", opts.userId),
    force: checkBoolean("force", opts.force ?? false),
  };
}
