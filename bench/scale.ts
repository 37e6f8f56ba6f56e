import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { MysqlRunStore } from "../src/stores/mysql-run-store.js";
import { type SeedResult, seed } from "./seed.js";

// `npm run bench:scale`: the same calls on a 10,000-run table and on a
// 1,000,000-run table (both seeded by bench/seed.ts, same shape: ten runs
// per thread, 100 in flight), one call at a time, in alternating rounds so
// both tables see the same machine noise. With indexes and no scans the
// big table's latencies stay close to the small one's. The 1,000,000-run
// database is kept between runs (re-seeded with --reseed).

const { values: flags } = parseArgs({
  options: {
    reseed: { type: "boolean", default: false },
    rounds: { type: "string", default: "5" },
    samples: { type: "string", default: "1000" },
  },
});
const SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
const ROUNDS = Number(flags.rounds);
const SAMPLES = Number(flags.samples);
const TABLES = [
  { name: "10k", database: "runstore_scale_10k", runs: 10_000, threads: 1_000 },
  { name: "1m", database: "runstore_scale_1m", runs: 1_000_000, threads: 100_000 },
] as const;

type Op = "get" | "list_by_thread" | "aggregate" | "list_pending" | "list_inflight";
const OPS: Op[] = ["get", "list_by_thread", "aggregate", "list_pending", "list_inflight"];

/** Seeds a table unless it already holds the expected rows. */
async function ensureSeeded(table: (typeof TABLES)[number]): Promise<SeedResult | null> {
  const url = `${SERVER}/${table.database}`;
  if (!flags.reseed) {
    const admin = await createConnection({ uri: SERVER });
    try {
      const [rows] = (await admin.query(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs'",
        [table.database],
      )) as unknown as [{ TABLE_ROWS: number }[]];
      if (rows[0] !== undefined) {
        const [[count]] = (await admin.query(
          `SELECT COUNT(*) AS n FROM \`${table.database}\`.runs`,
        )) as unknown as [[{ n: number }]];
        if (count?.n === table.runs) return null;
      }
    } finally {
      await admin.end();
    }
  }
  return seed({ url, runs: table.runs, threads: table.threads });
}

/**
 * Which threads the calls read: "hot", 200 threads (2,000 runs) that stay in
 * InnoDB's buffer pool, as recent threads do; "wide", 2,000 threads (20,000
 * runs) spread over the whole table, so on the big table many reads miss a
 * default-sized buffer pool and go to the page cache.
 */
const KEY_SETS = { hot: 200, wide: 2000 } as const;
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
    type Keys = Awaited<ReturnType<typeof sampleKeys>>;
    const call = (store: MysqlRunStore, k: Keys, op: Op, i: number) => {
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
      }
    };
    const latencies = new Map<string, number[]>();
    for (const [set, count] of Object.entries(KEY_SETS) as [KeySet, number][]) {
      const keys = await Promise.all(
        stores.map((s) => sampleKeys(s.store, s.table.threads, count)),
      );
      // Round 0 warms both tables' pages into memory; it is not counted.
      for (let round = 0; round <= ROUNDS; round++) {
        for (const op of OPS) {
          // list_pending / list_inflight read no thread: measured once, in the hot set.
          if (set === "wide" && (op === "list_pending" || op === "list_inflight")) continue;
          for (const [index, { table, store }] of stores.entries()) {
            const k = keys[index] as Keys;
            const name = `${set}/${op}/${table.name}`;
            const samples = latencies.get(name) ?? [];
            latencies.set(name, samples);
            for (let i = 0; i < SAMPLES; i++) {
              const began = performance.now();
              await call(store, k, op, round * SAMPLES + i);
              if (round > 0) samples.push(performance.now() - began);
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
        return {
          set,
          op,
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
      `${ROUNDS} rounds × ${SAMPLES} calls per operation and table, one at a time, in-process MysqlRunStore`,
      `InnoDB buffer pool ${mb(pool?.bytes ?? 0)}; tables (data + indexes): ${sizes.map((t) => `${t.db} ${mb(t.bytes)}`).join(", ")}`,
      ...Object.entries(seeded).map(([name, s]) =>
        s === null
          ? `${name}: already seeded`
          : `${name}: seeded ${s.runs} runs over ${s.threads} threads in ${fmt(s.seconds, 1)} s (${Math.round(s.rowsPerSecond)} rows/s)`,
      ),
      "",
      "| keys | call | p50 ms 10k | p50 ms 1M | × | p99 ms 10k | p99 ms 1M | × |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.set} | ${r.op} | ${fmt(r.p50Ms10k)} | ${fmt(r.p50Ms1m)} | ${fmt(r.p50Ms1m / r.p50Ms10k)} | ${fmt(r.p99Ms10k)} | ${fmt(r.p99Ms1m)} | ${fmt(r.p99Ms1m / r.p99Ms10k)} |`,
      ),
    ];
    console.log(lines.join("\n"));
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      "bench/results/scale.json",
      `${JSON.stringify({ rounds: ROUNDS, samples: SAMPLES, bufferPoolBytes: pool?.bytes, seeded, rows }, null, 2)}\n`,
    );
  } finally {
    await Promise.all(stores.map((s) => s.store.close()));
  }
}

await main();
