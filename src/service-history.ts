import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import type { Page, PageRequest, RunRecord, RunStore } from "@runstore/client";
import {
  invalidArgument,
  type pb,
  searchFromProto,
  statsToProto,
  threadToProto,
} from "@runstore/client/internal";
import type { ResponseBudget } from "./response-budget.js";
import { optionalInteger, optionalTimestamp } from "./wire-values.js";

// The history RPCs (docs/contract.md, "History") and the paged forms of the
// part-1/part-2 lists: request → store call → response, one function an RPC,
// called by RunStoreServiceImpl with the store bound to the call.

/** What a handler answers: the response message's init shape. */
type Answer<Schema extends DescMessage> = Promise<MessageInitShape<Schema>>;

/** The page fields every paged request has. */
interface PagedRequest {
  pageSize?: number;
  pageToken: string;
}

/** The page a request asks for, or null when it does not page (part 1's answer). */
export function pageOf(req: PagedRequest): PageRequest | null {
  if (req.pageSize === undefined && req.pageToken === "") return null;
  return { pageSize: req.pageSize ?? null, pageToken: req.pageToken };
}

/** A page of runs as a list answer, held to the response budget. */
export async function runPage(page: Page<RunRecord>, budget: ResponseBudget) {
  const { runs } = await budget.runs(page.items);
  return { runs, nextPageToken: page.nextPageToken ?? "", hasMore: page.hasMore };
}

/** ListByThread with pages; `limit` belongs to the unpaged form only. */
export async function listByThreadPage(
  store: RunStore,
  req: pb.ListByThreadRequest,
  page: PageRequest,
  budget: ResponseBudget,
) {
  if (req.limit !== undefined) {
    throw invalidArgument("limit", "cannot be combined with page_size or page_token");
  }
  return runPage(
    await store.listByThreadPage(req.threadId, { userId: req.userId ?? null }, page),
    budget,
  );
}

/** ListPending with pages. */
export async function listPendingPage(
  store: RunStore,
  req: pb.ListPendingRequest,
  page: PageRequest,
  budget: ResponseBudget,
) {
  return runPage(
    await store.listPendingPage({ before: optionalTimestamp(req.before, "before") }, page),
    budget,
  );
}

/** ListInflight with pages. */
export async function listInflightPage(
  store: RunStore,
  req: pb.ListInflightRequest,
  page: PageRequest,
  budget: ResponseBudget,
) {
  return runPage(
    await store.listInflightPage({ before: optionalTimestamp(req.before, "before") }, page),
    budget,
  );
}

/** ListInflightWithExpiredLease with pages. */
export async function listInflightWithExpiredLeasePage(
  store: RunStore,
  req: pb.ListInflightWithExpiredLeaseRequest,
  page: PageRequest,
  budget: ResponseBudget,
) {
  const options = {
    before: optionalTimestamp(req.before, "before"),
    graceSeconds: optionalInteger(req.graceSeconds),
  };
  return runPage(await store.listInflightWithExpiredLeasePage(options, page), budget);
}

/** Runs across threads, newest first, a page at a time (paging is always on). */
export async function searchRuns(
  store: RunStore,
  req: pb.SearchRunsRequest,
  budget: ResponseBudget,
): Answer<typeof pb.SearchRunsResponseSchema> {
  const page = { pageSize: req.pageSize ?? null, pageToken: req.pageToken };
  return runPage(await store.searchRunsPage(searchFromProto(req), page), budget);
}

/** Counts and token totals, in all and per local day. */
export async function getRunStats(
  store: RunStore,
  req: pb.GetRunStatsRequest,
): Answer<typeof pb.GetRunStatsResponseSchema> {
  return statsToProto(
    await store.getRunStats({
      userId: req.userId ?? null,
      createdAfter: optionalTimestamp(req.createdAfter, "created_after"),
      createdBefore: optionalTimestamp(req.createdBefore, "created_before"),
      utcOffset: req.utcOffset,
    }),
  );
}

/** Threads with visible runs, most recent activity first. */
export async function listThreads(
  store: RunStore,
  req: pb.ListThreadsRequest,
): Answer<typeof pb.ListThreadsResponseSchema> {
  const page = await store.listThreadsPage(
    { userId: req.userId ?? null },
    { pageSize: req.pageSize ?? null, pageToken: req.pageToken },
  );
  return {
    threads: page.items.map(threadToProto),
    nextPageToken: page.nextPageToken ?? "",
    hasMore: page.hasMore,
  };
}

/** Removes a thread's visible rows; answers how many. */
export async function deleteThread(
  store: RunStore,
  req: pb.DeleteThreadRequest,
): Answer<typeof pb.DeleteThreadResponseSchema> {
  const deleted = await store.deleteThread(req.threadId, {
    userId: req.userId ?? null,
    force: req.force,
  });
  return { deletedRuns: BigInt(deleted) };
}
