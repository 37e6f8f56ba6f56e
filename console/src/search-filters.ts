import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type RunStatus,
  type SearchRunsRequest,
  SearchRunsRequestSchema,
} from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { localMidnight, STATUSES, statusName } from "./format.js";

/** The runs page's filters as the URL hash holds them (no secrets: the token never goes there). */
export interface SearchFilters {
  user: string;
  thread: string;
  model: string;
  /** Status names, e.g. ["running", "error"]; none: every status. */
  statuses: string[];
  /** Local dates YYYY-MM-DD, inclusive; "" leaves that end open. */
  from: string;
  to: string;
  size: string;
}

/** The page sizes offered. */
export const PAGE_SIZES = ["10", "20", "50", "100"] as const;

/** The filters of a route's query. */
export function filtersOf(query: URLSearchParams): SearchFilters {
  const size = query.get("size") ?? "20";
  return {
    user: query.get("user") ?? "",
    thread: query.get("thread") ?? "",
    model: query.get("model") ?? "",
    statuses: (query.get("status") ?? "").split(",").filter((s) => s !== ""),
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
    size: (PAGE_SIZES as readonly string[]).includes(size) ? size : "20",
  };
}

/** The filters as route query values (for href). */
export function queryOf(filters: SearchFilters): Record<string, string> {
  return {
    user: filters.user,
    thread: filters.thread,
    model: filters.model,
    status: filters.statuses.join(","),
    from: filters.from,
    to: filters.to,
    size: filters.size === "20" ? "" : filters.size,
  };
}

/** The SearchRuns request of the filters and one page token. */
export function searchRequest(filters: SearchFilters, pageToken: string): SearchRunsRequest {
  const statuses: RunStatus[] = STATUSES.filter((s) => filters.statuses.includes(statusName(s)));
  return create(SearchRunsRequestSchema, {
    userId: filters.user === "" ? undefined : filters.user,
    threadId: filters.thread === "" ? undefined : filters.thread,
    modelName: filters.model === "" ? undefined : filters.model,
    statuses,
    createdAfter: filters.from === "" ? undefined : timestampFromDate(localMidnight(filters.from)),
    createdBefore: filters.to === "" ? undefined : timestampFromDate(localMidnight(filters.to, 1)),
    pageSize: Number(filters.size),
    pageToken,
  });
}
