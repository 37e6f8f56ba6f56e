import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { MysqlRunStore } from "../src/stores/mysql-run-store.js";
import { HISTORY_OPS, type HistoryCalls, historyCalls, USERLESS_OPS } from "./scale-history.js";
import { SEED_SHAPE, type SeedResult, seed, seededShape } from "./seed.js";

// `npm run bench:scale`: the same calls on a 10,000-run table and on a
// 1,000,000-run table (both seeded by bench/seed.ts, same shape: ten runs
// per thread, ~1,000 per user, 100 in flight), one call at a time, in
// alternating rounds so both tables see the same machine noise. With
// indexes and no scans the big table's latencies stay close to the small
// one's. The history calls (scale-history.ts) answer the same rows on both
// tables: a user has as many runs on either. Both databases are kept
// between runs (re-seeded with --reseed, or when seed.ts's shape changed).

const { values: flags } = parseArgs({
  options: {
    reseed: { type: "boolean", default: false },
    rounds: { type: "string", default: "5" },
    samples: { type: "string", default: "1000" },
    /** Calls per round of each history operation (each reads tens to hundreds of rows). */
    "history-samples": { type: "string", default: "200" },
    /** Only these operations (comma-separated), e.g. search_user_time,get_run_stats. */
    ops: { type: "string" },
  },
});
const SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
const ROUNDS = Number(flags.rounds);
const SAMPLES = Number(flags.samples);
const HISTORY_SAMPLES = Number(flags["history-samples"]);
/** Both tables: ten runs per thread, 1,000 runs per user. */
const TABLES = [
  { name: "10k", database: "runstore_scale_10k", runs: 10_000, threads: 1_000, users: 10 },
  { name: "1m", database: "runstore_scale_1m", runs: 1_000_000, threads: 100_000, users: 1_000 },
] as const;

const CORE_OPS = ["get", "list_by_thread", "aggregate", "list_pending", "list_inflight"] as const;
type Op = (typeof CORE_OPS)[number] | (typeof HISTORY_OPS)[number];
const ALL_OPS: readonly Op[] = [...CORE_OPS, ...HISTORY_OPS];
const OPS: Op[] = ALL_OPS.filter(
  (op) => flags.ops === undefined || flags.ops.split(",").includes(op),
);
/** Operations that read no thread or user: measured once, in the hot set. */
const KEYLESS: ReadonlySet<string> = new Set(["list_pending", "list_inflight", ...USERLESS_OPS]);

/** Seeds a table unless it already holds this shape and size of seed.ts's. */
async function ensureSeeded(table: (typeof TABLES)[number]): Promise<SeedResult | null> {
  const url = `${SERVER}/${table.database}`;
  const held = flags.reseed ? null : await seededShape(url);
  const fresh =
    held !== null &&
    held.shape === SEED_SHAPE &&
    held.runs === table.runs &&
    held.threads === table.threads &&
    held.users === table.users;
  if (fresh) return null;
  return seed({ url, runs: table.runs, threads: table.threads, users: table.users });
}

/**
 * Which threads the calls read: "hot", 200 threads (2,000 runs) that stay in
 * InnoDB's buffer pool, as recent threads do; "wide", 2,000 threads (20,000
 * runs) spread over the whole table, so on the big table many reads miss a
 * default-sized buffer pool and go to the page cache. The history calls read
 * 10 users (hot) or up to 1,000 (wide: every user of the big table, the
 * same 10 on the small one).
 */
const KEY_SETS = { hot: 200, wide: 2000 } as const;
const USER_SETS: Record<KeySet, number> = { hot: 10, wide: 1000 };
type KeySet = keyof typeof KEY_SETS;

/** What the calls read: some existing run ids and thread ids. */
async function sampleKeys(store: MysqlRunStore, threads: number, count: number) {
  const threadIds = Array.from(
    { length: count },
    (_, k) => `thread-${((k * 7919) % threads).toString(36).padStart(6, "0")}`,
  );
  const runIds: string[] = [];
  for (const threadId of threadIds) {
    for (const run of await store.listByThread(threadId, { limit: 100 })) runIds.push(run.runId);
  }
  return { threadIds, runIds };
}

const quantile = (sorted: number[], at: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(at * sorted.length))] ?? 0;

async function main(): Promise<void> {
  const seeded: Record<string, SeedResult | null> = {};
  for (const table of TABLES) {
    console.error(`seeding ${table.database} (${table.runs} runs) unless present…`);
    seeded[table.name] = await ensureSeeded(table);
  }
  const stores = TABLES.map((table) => ({
    table,
    store: MysqlRunStore.open({ url: `${SERVER}/${table.database}`, poolSize: 2 }),
  }));
  try {
    const now = new Date().toISOString();
    type Keys = Awaited<ReturnType<typeof sampleKeys>> & { history: HistoryCalls };
    const call = (store: MysqlRunStore, k: Keys, op: Op, i: number): Promise<unknown> => {
      const threadId = k.threadIds[i % k.threadIds.length] as string;
      switch (op) {
        case "get":
          return store.get(k.runIds[(i * 31) % k.runIds.length] as string);
        case "list_by_thread":
          return store.listByThread(threadId, { limit: 100 });
        case "aggregate":
          return store.aggregateTokensByThread(threadId);
        case "list_pending":
          return store.listPending({ before: now });
        case "list_inflight":
          return store.listInflight({ before: now });
        default: {
          const calls = k.history[op];
          return (calls[i % calls.length] as () => Promise<number>)();
        }
      }
    };
    /** What the history calls answered (rows, or runs for stats), summed per table: the same work? */
    const answers = new Map<string, { sum: number; calls: number }>();
    const latencies = new Map<string, number[]>();
    for (const [set, count] of Object.entries(KEY_SETS) as [KeySet, number][]) {
      const keys: Keys[] = [];
      for (const { store, table } of stores) {
        const users = Array.from({ length: Math.min(USER_SETS[set], table.users) }, (_, u) => u);
        const history = await historyCalls(store, users, table.users);
        keys.push({ ...(await sampleKeys(store, table.threads, count)), history });
      }
      // Round 0 warms both tables' pages into memory; it is not counted.
      for (let round = 0; round <= ROUNDS; round++) {
        for (const op of OPS) {
          if (set === "wide" && KEYLESS.has(op)) continue;
          const calls = (CORE_OPS as readonly string[]).includes(op) ? SAMPLES : HISTORY_SAMPLES;
          for (const [index, { table, store }] of stores.entries()) {
            const k = keys[index] as Keys;
            const name = `${set}/${op}/${table.name}`;
            const samples = latencies.get(name) ?? [];
            latencies.set(name, samples);
            for (let i = 0; i < calls; i++) {
              const began = performance.now();
              const answer = await call(store, k, op, round * calls + i);
              if (round === 0) continue;
              samples.push(performance.now() - began);
              if (typeof answer === "number") {
                const sum = answers.get(name) ?? { sum: 0, calls: 0 };
                answers.set(name, { sum: sum.sum + answer, calls: sum.calls + 1 });
              }
            }
          }
        }
      }
    }
    const rows = [...latencies.keys()]
      .filter((name) => name.endsWith("/1m"))
      .map((name) => {
        const [set, op] = name.split("/") as [KeySet, Op];
        const small = (latencies.get(`${set}/${op}/10k`) ?? []).sort((a, b) => a - b);
        const big = (latencies.get(name) ?? []).sort((a, b) => a - b);
        const answered = (table: string) => {
          const sum = answers.get(`${set}/${op}/${table}`);
          return sum === undefined ? undefined : sum.sum / sum.calls;
        };
        return {
          set,
          op,
          answered10k: answered("10k") ?? null,
          answered1m: answered("1m") ?? null,
          p50Ms10k: quantile(small, 0.5),
          p50Ms1m: quantile(big, 0.5),
          p99Ms10k: quantile(small, 0.99),
          p99Ms1m: quantile(big, 0.99),
        };
      });
    const admin = await createConnection({ uri: SERVER });
    const [[pool]] = (await admin.query(
      "SELECT @@innodb_buffer_pool_size AS bytes",
    )) as unknown as [[{ bytes: number }]];
    const [sizes] = (await admin.query(
      "SELECT TABLE_SCHEMA AS db, DATA_LENGTH + INDEX_LENGTH AS bytes FROM information_schema.TABLES " +
        "WHERE TABLE_NAME = 'runs' AND TABLE_SCHEMA IN (?, ?)",
      TABLES.map((t) => t.database),
    )) as unknown as [{ db: string; bytes: number }[]];
    await admin.end();
    const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
    const fmt = (n: number, d = 2) => n.toFixed(d);
    const lines = [
      `${ROUNDS} rounds × ${SAMPLES} calls (history: ${HISTORY_SAMPLES}) per operation and table, one at a time, in-process MysqlRunStore`,
      `InnoDB buffer pool ${mb(pool?.bytes ?? 0)}; tables (data + indexes): ${sizes.map((t) => `${t.db} ${mb(t.bytes)}`).join(", ")}`,
      ...Object.entries(seeded).map(([name, s]) =>
        s === null
          ? `${name}: already seeded`
          : `${name}: seeded ${s.runs} runs over ${s.threads} threads and ${s.users} users in ${fmt(s.seconds, 1)} s (${Math.round(s.rowsPerSecond)} rows/s)`,
      ),
      "",
      "| keys | call | mean answer 10k / 1M | p50 ms 10k | p50 ms 1M | × | p99 ms 10k | p99 ms 1M | × |",
      "|---|---|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.set} | ${r.op} | ${r.answered10k === null ? "—" : `${fmt(r.answered10k, 1)} / ${fmt(r.answered1m ?? 0, 1)}`} | ${fmt(r.p50Ms10k)} | ${fmt(r.p50Ms1m)} | ${fmt(r.p50Ms1m / r.p50Ms10k)} | ${fmt(r.p99Ms10k)} | ${fmt(r.p99Ms1m)} | ${fmt(r.p99Ms1m / r.p99Ms10k)} |`,
      ),
    ];
    console.log(lines.join("\n"));
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      "bench/results/scale.json",
      `${JSON.stringify({ rounds: ROUNDS, samples: SAMPLES, historySamples: HISTORY_SAMPLES, bufferPoolBytes: pool?.bytes, seeded, rows }, null, 2)}\n`,
    );
  } finally {
    await Promise.all(stores.map((s) => s.store.close()));
  }
}

await main();
