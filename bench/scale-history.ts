import type { RunSearch, RunStatus } from "@runstore/client";
import type { MysqlRunStore } from "../src/stores/mysql-run-store.js";
import { seededUser } from "./seed.js";

// The history calls of `npm run bench:scale` (issue 15): the three searches
// a console runs by default, each a first page and the page after it
// through the first page's token, a user's first page of threads, and a
// user's month of stats in a UTC+8 day. Every call is built before timing
// starts (the second pages' tokens read then), so the timed loop only calls.

/** The history operations, as their rows in the report. */
export const HISTORY_OPS = [
  "search_user_time",
  "search_user_time_page2",
  "search_user_status_time",
  "search_user_status_time_page2",
  "search_status_time",
  "search_status_time_page2",
  "list_threads",
  "get_run_stats",
] as const;
export type HistoryOp = (typeof HISTORY_OPS)[number];

/** Operations that name no user: the same call whichever users a key set reads. */
export const USERLESS_OPS: ReadonlySet<string> = new Set([
  "search_status_time",
  "search_status_time_page2",
]);

/** A console's page. */
export const PAGE_SIZE = 50;
const DAY_MS = 86_400_000;
/** The searches' window, ending at the newest run. */
export const SEARCH_DAYS = 7;
/** GetRunStats' range, ending at the newest run, and its days' offset. */
export const STATS_DAYS = 30;
export const STATS_OFFSET = "+08:00";
/** user + status + time: a user's successful runs (66 of a user's ~78 a week: two pages). */
export const USER_STATUSES: RunStatus[] = ["success"];
/** status + time: every user's failed runs (error + timeout, two index ranges merged). */
export const FAILED_STATUSES: RunStatus[] = ["error", "timeout"];

/** One timed call and what it answered (rows, or runs counted for stats). */
type Call = () => Promise<number>;

/** The calls of each operation, cycled through by the timed loop. */
export type HistoryCalls = Record<HistoryOp, Call[]>;

/** The newest run's created_at: the end of every window. */
async function newestCreatedAt(store: MysqlRunStore): Promise<number> {
  const page = await store.searchRunsPage({}, { pageSize: 1 });
  const newest = page.items[0];
  if (newest === undefined) throw new Error("bench:scale: the table has no runs");
  return Date.parse(newest.createdAt);
}

/** A search's first page and the page after it (its token read now). */
async function searchPages(store: MysqlRunStore, search: RunSearch): Promise<[Call, Call]> {
  const first = await store.searchRunsPage(search, { pageSize: PAGE_SIZE });
  const pageToken = first.nextPageToken;
  if (pageToken === null)
    throw new Error(`bench:scale: one page only for ${JSON.stringify(search)}`);
  return [
    async () => (await store.searchRunsPage(search, { pageSize: PAGE_SIZE })).items.length,
    async () =>
      (await store.searchRunsPage(search, { pageSize: PAGE_SIZE, pageToken })).items.length,
  ];
}

/** Every history call on `store` for these users (seeded user numbers). */
export async function historyCalls(
  store: MysqlRunStore,
  users: readonly number[],
  seededUsers: number,
): Promise<HistoryCalls> {
  const newest = await newestCreatedAt(store);
  const createdBefore = new Date(newest + 1).toISOString();
  const window = {
    createdAfter: new Date(newest - SEARCH_DAYS * DAY_MS).toISOString(),
    createdBefore,
  };
  const calls = Object.fromEntries(HISTORY_OPS.map((op) => [op, [] as Call[]])) as HistoryCalls;
  const failed = await searchPages(store, { ...window, statuses: FAILED_STATUSES });
  calls.search_status_time.push(failed[0]);
  calls.search_status_time_page2.push(failed[1]);
  for (const user of users) {
    const userId = seededUser(user, seededUsers);
    const all = await searchPages(store, { ...window, userId });
    const some = await searchPages(store, { ...window, userId, statuses: USER_STATUSES });
    calls.search_user_time.push(all[0]);
    calls.search_user_time_page2.push(all[1]);
    calls.search_user_status_time.push(some[0]);
    calls.search_user_status_time_page2.push(some[1]);
    calls.list_threads.push(
      async () => (await store.listThreadsPage({ userId }, { pageSize: PAGE_SIZE })).items.length,
    );
    const stats = {
      userId,
      createdAfter: new Date(newest - STATS_DAYS * DAY_MS).toISOString(),
      createdBefore,
      utcOffset: STATS_OFFSET,
    };
    calls.get_run_stats.push(async () => (await store.getRunStats(stats)).totalRuns);
  }
  return calls;
}
