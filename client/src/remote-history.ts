import {
  type Client,
  Code,
  type CallOptions as ConnectCallOptions,
  ConnectError,
} from "@connectrpc/connect";
import { checkOperationKind } from "./coordination.js";
import type { Run, RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
import {
  type DeleteThreadOptions,
  eachItem,
  type MetadataFilter,
  type Page,
  type PageRequest,
  type RunSearch,
  type RunStats,
  type RunStatsOptions,
  type ThreadSummary,
} from "./history.js";
import { searchToProto, statsFromProto, threadFromProto } from "./history-convert.js";
import { runFromProto } from "./proto-convert.js";
import { optionalCount, optionalTimestamp, text } from "./remote-request.js";
import type { RemoteCallOptions } from "./remote-run-store.js";
import type {
  ExpiredLeaseOptions,
  ListByThreadOptions,
  OwnerOptions,
  RecoveryOptions,
  RunRecord,
} from "./run-store.js";
import { checkBoolean, checkLimit, invalidArgument } from "./validation.js";

// RemoteRunStore's history methods (docs/contract.md, "History") and the
// part-1/part-2 lists that walk pages, kept apart so the store reads as one
// call a method.

/** An RPC of RunStoreService by its camelCase name, as the generated client has it. */
export type RpcName = keyof (typeof RunStoreService)["method"];

/** Runs one RPC as RemoteRunStore does: token, deadline, retries, tracing. */
export type Invoke = <T>(
  name: RpcName,
  rpc: (options: ConnectCallOptions) => Promise<T>,
  call: RemoteCallOptions | undefined,
) => Promise<T>;

/**
 * Rows a page when a drop-in list (listPending, listInflight,
 * listInflightWithExpiredLease, listByThread past this limit) walks pages.
 * A run is typically 0.9–1.3 KB on the wire, so a page is about 0.5–0.7 MiB
 * and stays under 4 MiB (the default receive limit of most gRPC clients)
 * for runs of up to ~8 KB; a page the server refuses as over its response
 * budget (RESOURCE_EXHAUSTED) is asked again at half the size.
 */
export const WALK_PAGE_SIZE = 500;

/** The size sent for a page without one: the server's default, set so that the first page pages. */
const DEFAULT_PAGE_SIZE = 100;

/** The largest int32, the most a page_size field carries. */
const INT32_MAX = 2 ** 31 - 1;

/** The page fields of a list request; both unset asks for part 1's unpaged answer. */
interface WirePage {
  pageSize?: number;
  pageToken: string;
}

/** What every paged list answers. */
interface RunsAnswer {
  runs: Run[];
  nextPageToken: string;
  hasMore: boolean;
}

/** The history RPCs over RemoteRunStore's client and its `invoke`. */
export class RemoteHistory {
  constructor(
    private readonly client: Client<typeof RunStoreService>,
    private readonly invoke: Invoke,
  ) {}

  async listByThread(
    threadId: string,
    options: ListByThreadOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<RunRecord[]> {
    const filters = {
      threadId: text("thread_id", threadId),
      userId: text("user_id", options?.userId),
    };
    const limit = checkLimit("limit", options?.limit);
    const list = (request: typeof filters & (WirePage | { limit: number })) =>
      this.invoke("listByThread", (o) => this.client.listByThread(request, o), call);
    const unpaged = () => list({ ...filters, limit });
    // Up to a page, part 1's call is the same answer on any server.
    if (limit <= WALK_PAGE_SIZE) return (await unpaged()).runs.map(runFromProto);
    return walkRuns((page) => list({ ...filters, ...page }), unpaged, limit);
  }

  async listPending(
    options: RecoveryOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<RunRecord[]> {
    const before = optionalTimestamp(options?.before, "before");
    const list = (page: WirePage) =>
      this.invoke("listPending", (o) => this.client.listPending({ before, ...page }, o), call);
    return walkRuns(list, () => list({ pageToken: "" }));
  }

  async listInflight(
    options: RecoveryOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<RunRecord[]> {
    const before = optionalTimestamp(options?.before, "before");
    const list = (page: WirePage) =>
      this.invoke("listInflight", (o) => this.client.listInflight({ before, ...page }, o), call);
    return walkRuns(list, () => list({ pageToken: "" }));
  }

  async listInflightWithExpiredLease(
    options: ExpiredLeaseOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<RunRecord[]> {
    const list = this.expiredLeaseList(options, call);
    return walkRuns(list, () => list({ pageToken: "" }));
  }

  async listByThreadPage(
    threadId: string,
    options: OwnerOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    const request = {
      threadId: text("thread_id", threadId),
      userId: text("user_id", options?.userId),
      ...pageFields(page),
    };
    return runPage(
      await this.invoke("listByThread", (o) => this.client.listByThread(request, o), call),
    );
  }

  listPendingPage(
    options: RecoveryOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    return this.recoveryPage("listPending", options, page, call);
  }

  listInflightPage(
    options: RecoveryOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    return this.recoveryPage("listInflight", options, page, call);
  }

  /** A page of ListPending or ListInflight: the two take the same request. */
  private async recoveryPage(
    method: "listPending" | "listInflight",
    options: RecoveryOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    const request = { before: optionalTimestamp(options?.before, "before"), ...pageFields(page) };
    const list = (o: ConnectCallOptions): Promise<RunsAnswer> => this.client[method](request, o);
    return runPage(await this.invoke(method, list, call));
  }

  async listInflightWithExpiredLeasePage(
    options: ExpiredLeaseOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    const fields = pageFields(page);
    return runPage(await this.expiredLeaseList(options, call)(fields));
  }

  async searchRunsPage(
    search: RunSearch | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<RunRecord>> {
    const request = { ...searchRequest(search), ...pageFields(page) };
    return runPage(
      await this.invoke("searchRuns", (o) => this.client.searchRuns(request, o), call),
    );
  }

  searchRuns(
    search: RunSearch | undefined,
    pageSize: number | null | undefined,
    call: RemoteCallOptions | undefined,
  ): AsyncGenerator<RunRecord, void, undefined> {
    return eachItem((page) => this.searchRunsPage(search, page, call), pageSize);
  }

  async getRunStats(
    options: RunStatsOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<RunStats> {
    const request = {
      userId: text("user_id", options?.userId),
      createdAfter: optionalTimestamp(options?.createdAfter, "created_after"),
      createdBefore: optionalTimestamp(options?.createdBefore, "created_before"),
      utcOffset: text("utc_offset", options?.utcOffset) ?? "",
    };
    return statsFromProto(
      await this.invoke("getRunStats", (o) => this.client.getRunStats(request, o), call),
    );
  }

  async listThreadsPage(
    options: OwnerOptions | undefined,
    page: PageRequest | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<Page<ThreadSummary>> {
    const request = { userId: text("user_id", options?.userId), ...pageFields(page) };
    const response = await this.invoke(
      "listThreads",
      (o) => this.client.listThreads(request, o),
      call,
    );
    return pageOf(response.threads.map(threadFromProto), response);
  }

  listThreads(
    options: OwnerOptions | undefined,
    pageSize: number | null | undefined,
    call: RemoteCallOptions | undefined,
  ): AsyncGenerator<ThreadSummary, void, undefined> {
    return eachItem((page) => this.listThreadsPage(options, page, call), pageSize);
  }

  async deleteThread(
    threadId: string,
    options: DeleteThreadOptions | undefined,
    call: RemoteCallOptions | undefined,
  ): Promise<number> {
    const request = {
      threadId: text("thread_id", threadId),
      userId: text("user_id", options?.userId),
      force: checkBoolean("force", options?.force ?? false),
    };
    const response = await this.invoke(
      "deleteThread",
      (o) => this.client.deleteThread(request, o),
      call,
    );
    return Number(response.deletedRuns);
  }

  /** The expired-lease listing of `options`, one request a page. */
  private expiredLeaseList(
    options: ExpiredLeaseOptions | undefined,
    call: RemoteCallOptions | undefined,
  ) {
    const filters = {
      before: optionalTimestamp(options?.before, "before"),
      graceSeconds: optionalCount("grace_seconds", options?.graceSeconds),
    };
    return (page: WirePage) =>
      this.invoke(
        "listInflightWithExpiredLease",
        (o) => this.client.listInflightWithExpiredLease({ ...filters, ...page }, o),
        call,
      );
  }
}

/**
 * Every row of a list, read WALK_PAGE_SIZE rows a page (at most `limit`).
 * A page refused as too large is asked again at half the size. A server
 * whose store cannot page (UNIMPLEMENTED on the first page) is asked once
 * with `unpaged`, part 1's call; one that does not know the page fields (an
 * older server) answers every row with has_more false, which ends the walk.
 */
async function walkRuns(
  fetchPage: (page: WirePage) => Promise<RunsAnswer>,
  unpaged: () => Promise<RunsAnswer>,
  limit = Number.POSITIVE_INFINITY,
): Promise<RunRecord[]> {
  const rows: RunRecord[] = [];
  let size = WALK_PAGE_SIZE;
  let pageToken = "";
  for (;;) {
    const pageSize = Math.min(size, limit - rows.length);
    let page: Page<RunRecord>;
    try {
      page = runPage(await fetchPage({ pageSize, pageToken }));
    } catch (error) {
      const code = error instanceof ConnectError ? error.code : undefined;
      if (code === Code.Unimplemented && pageToken === "") {
        return (await unpaged()).runs.map(runFromProto);
      }
      if (code !== Code.ResourceExhausted || pageSize === 1) throw error;
      size = Math.ceil(pageSize / 2);
      continue;
    }
    for (const run of page.items) rows.push(run);
    if (page.nextPageToken === null || rows.length >= limit) break;
    pageToken = page.nextPageToken;
  }
  if (rows.length > limit) rows.length = limit;
  return rows;
}

/** A page's fields as sent: the size always (so the first page pages), the token or "". */
function pageFields(page: PageRequest | undefined): Required<WirePage> {
  if (page !== undefined && (page === null || typeof page !== "object")) {
    throw invalidArgument("page", "must be an object with pageSize and pageToken");
  }
  return {
    pageSize: pageSizeField(page?.pageSize),
    pageToken: text("page_token", page?.pageToken) ?? "",
  };
}

/** page_size as an int32; the range 1–1000 is the server's rule (and wording). */
function pageSizeField(value: unknown): number {
  if (value === undefined || value === null) return DEFAULT_PAGE_SIZE;
  if (typeof value !== "number" || !Number.isInteger(value) || Math.abs(value) > INT32_MAX) {
    throw invalidArgument("page_size", "must be an integer from 1 to 1000");
  }
  return value;
}

/** A runs answer as a page. */
function runPage(answer: RunsAnswer): Page<RunRecord> {
  return pageOf(answer.runs.map(runFromProto), answer);
}

/** Items and the answer's page fields as a Page; has_more needs a token to go on with. */
function pageOf<T>(items: T[], answer: { nextPageToken: string; hasMore: boolean }): Page<T> {
  if (answer.hasMore && answer.nextPageToken === "") {
    throw new ConnectError("server answered has_more without a next_page_token", Code.Internal);
  }
  return {
    items,
    nextPageToken: answer.hasMore ? answer.nextPageToken : null,
    hasMore: answer.hasMore,
  };
}

/**
 * A search as its request fields. Refused here is only what the wire cannot
 * carry: a list that is not one, a kind or status that has no proto value,
 * a string with a lone surrogate, a metadata value that is not a JSON
 * scalar; the filters' rules are the server's.
 */
function searchRequest(search: RunSearch | undefined) {
  if (search !== undefined && (search === null || typeof search !== "object")) {
    throw invalidArgument("search", "must be an object of filters");
  }
  const s = search ?? {};
  return searchToProto({
    userId: text("user_id", s.userId),
    threadId: text("thread_id", s.threadId),
    statuses: listField("statuses", s.statuses),
    assistantId: text("assistant_id", s.assistantId),
    modelName: text("model_name", s.modelName),
    operationKinds: listField("operation_kinds", s.operationKinds).map((kind, i) =>
      checkOperationKind(`operation_kinds[${i}]`, kind),
    ),
    createdAfter: s.createdAfter,
    createdBefore: s.createdBefore,
    metadata: metadataField(s.metadata),
  });
}

/** A list filter as sent: null/undefined is empty; anything but an array is refused naming `field`. */
export function listField<T>(field: string, value: readonly T[] | null | undefined): readonly T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidArgument(field, "must be a list");
  return value;
}

/** A metadata filter whose values a Struct carries unchanged (no NaN, no Infinity). */
function metadataField(value: MetadataFilter | null | undefined): MetadataFilter | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument("metadata", "must be an object of top-level keys and values");
  }
  for (const [key, item] of Object.entries(value)) {
    text("metadata key", key);
    const scalar =
      typeof item === "string" ||
      typeof item === "boolean" ||
      (typeof item === "number" && Number.isFinite(item));
    if (!scalar) throw invalidArgument(`metadata.${key}`, "must be a string, number or bool");
    if (typeof item === "string") text(`metadata.${key}`, item);
  }
  return value;
}
