import { parseArgs } from "node:util";
import { createPool, type Pool } from "mysql2/promise";
import { migrate } from "../src/stores/mysql-migrations.js";

// `npm run seed -- --database-url mysql://root@127.0.0.1:3306/runstore_big`
// Loads a realistic run table: `--runs` runs (default 1,000,000) over
// `--threads` threads (default 100,000), ten per thread, with metadata,
// kwargs, token counters and messages of the sizes agent runtimes write.
// The shape does not change with the size, so a small and a big table can
// be compared call for call: ten runs per thread, about 1,000 runs per user
// (`--users`, default runs / 1,000), exactly `pending` + `running` runs in
// flight (so list_pending / list_inflight answer the same number of rows
// whatever the table's size), and the same mix of statuses, models and
// usage maps over the same 90 days. Multi-row INSERTs over a few
// connections; prints how long it took.

/**
 * The seeded table's shape, recorded in `bench_seed` when a seeding ends: a
 * table recorded with another shape (or none) is stale and seeded again.
 * 2: users by runs, mixed statuses, usage maps, null models, metadata env/channel.
 */
export const SEED_SHAPE = 2;

const MODELS = ["gpt-4o", "claude-sonnet-4", "deepseek-v3", "qwen-max"];
/** A subagent's model, second in some usage maps. */
const SUBAGENT_MODEL = "gpt-4o-mini";
/** Finished runs' statuses and their weights (out of 100). */
const FINISHED: [string, number][] = [
  ["success", 85],
  ["error", 8],
  ["timeout", 3],
  ["interrupted", 4],
];
const ERRORS: Record<string, string> = {
  error: "RuntimeError: tool call failed after 3 retries",
  timeout: "TimeoutError: run exceeded 600 s",
};
const DAY_MS = 86_400_000;
/** The days the created_at values span, ending at the seeding's start. */
export const SEED_DAYS = 90;

export interface SeedOptions {
  url: string;
  runs: number;
  threads: number;
  /** Users the threads belong to (thread k to user k mod users); default runs / 1,000. */
  users?: number;
  /** Runs left pending (default 50) and running (default 50), the newest ones. */
  pending?: number;
  running?: number;
  /** Rows per INSERT (default 1000) and INSERTs in flight (default 4). */
  batch?: number;
  parallel?: number;
}

export interface SeedResult {
  runs: number;
  threads: number;
  users: number;
  seconds: number;
  rowsPerSecond: number;
}

/** A DATETIME(6) literal, `ms` after the epoch, UTC. */
function datetime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "000");
}

/** A small deterministic PRNG (mulberry32), so every seeding writes the same table. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The user of `thread`, as seeded (user-0000 is the first). */
export function seededUser(thread: number, users: number): string {
  return `user-${(thread % users).toString().padStart(4, "0")}`;
}

/** The thread id of thread number `thread`. */
export function seededThread(thread: number): string {
  return `thread-${thread.toString(36).padStart(6, "0")}`;
}

/** A finished run's status, by FINISHED's weights. */
function finishedStatus(next: () => number): string {
  let draw = next() * 100;
  for (const [status, weight] of FINISHED) {
    draw -= weight;
    if (draw < 0) return status;
  }
  return "success";
}

/** Row `i`'s status: the newest runs (highest i) are the ones in flight. */
function statusOf(i: number, options: Required<SeedOptions>, next: () => number): string {
  const fromEnd = options.runs - 1 - i;
  if (fromEnd < options.pending) return "pending";
  if (fromEnd < options.pending + options.running) return "running";
  return finishedStatus(next);
}

/** Two in five finished runs carry a usage map: their model's share, and a subagent's on some. */
function usageMap(model: string | null, input: number, output: number, next: () => number) {
  if (input === 0 || next() >= 0.4) return {};
  const sub = next() < 0.5 ? 0.2 : 0;
  const part = (share: number) => {
    const i = Math.floor(input * share);
    const o = Math.floor(output * share);
    return { input_tokens: i, output_tokens: o, total_tokens: i + o, cache_read_tokens: i >> 2 };
  };
  const map: Record<string, ReturnType<typeof part>> = { [model ?? "unknown"]: part(1 - sub) };
  if (sub > 0) map[SUBAGENT_MODEL] = part(sub);
  return map;
}

/** Row `i` of the table, as the INSERT's values. */
function row(i: number, options: Required<SeedOptions>, now: number, next: () => number) {
  const thread = i % options.threads;
  const status = statusOf(i, options, next);
  const created = now - DAY_MS * SEED_DAYS + Math.floor((i / options.runs) * DAY_MS * SEED_DAYS);
  const finished = status !== "pending" && status !== "running";
  const input = finished ? 1000 + Math.floor(next() * 20_000) : 0;
  const output = finished ? 200 + Math.floor(next() * 4000) : 0;
  // One run in fifty never learned its model (GetRunStats counts it as "unknown").
  const model = next() < 0.02 ? null : (MODELS[thread % MODELS.length] as string);
  return [
    `run-${i.toString(36).padStart(8, "0")}-${Math.floor(next() * 1e9).toString(36)}`,
    seededThread(thread),
    "lead_agent",
    seededUser(thread, options.users),
    model,
    status,
    "reject",
    JSON.stringify({
      graph_id: "lead_agent",
      source: "seed",
      env: thread % 10 === 0 ? "staging" : "prod",
      channel: ["web", "api", "slack"][thread % 3],
      tags: ["agent", `team-${thread % 17}`],
      step: i % 10,
    }),
    JSON.stringify({
      input: { messages: [{ role: "user", content: `Question ${i} about the quarterly report` }] },
      config: { recursion_limit: 100, configurable: { thread_id: `thread-${thread}` } },
    }),
    ERRORS[status] ?? null,
    datetime(created),
    datetime(created + (finished ? 30_000 + Math.floor(next() * 600_000) : 0)),
    input,
    output,
    input + output,
    finished ? 1 + Math.floor(next() * 12) : 0,
    Math.floor((input + output) * 0.7),
    Math.floor((input + output) * 0.2),
    Math.floor((input + output) * 0.1),
    finished ? 2 + Math.floor(next() * 30) : 0,
    finished
      ? `Here is the summary for request ${i}: ${"the figures look fine. ".repeat(6)}`
      : null,
    `Question ${i} about the quarterly report`,
    JSON.stringify(usageMap(model, input, output, next)),
  ];
}

const COLUMNS =
  "run_id, thread_id, assistant_id, user_id, model_name, status, multitask_strategy, " +
  "metadata, kwargs, error, created_at, updated_at, total_input_tokens, total_output_tokens, " +
  "total_tokens, llm_call_count, lead_agent_tokens, subagent_tokens, middleware_tokens, " +
  "message_count, last_ai_message, first_human_message, token_usage_by_model";

/**
 * Creates the database when missing and empties `runs` when it exists, before
 * migrating: indexes a newer schema adds are then built on an empty table.
 */
async function emptyDatabase(url: string): Promise<void> {
  const database = decodeURIComponent(new URL(url).pathname.slice(1));
  const server = new URL(url);
  server.pathname = "/";
  const pool = createPool({ uri: server.toString(), connectionLimit: 1 });
  const name = `\`${database.replaceAll("`", "``")}\``;
  try {
    await pool.query(
      `CREATE DATABASE IF NOT EXISTS ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    );
    const [tables] = (await pool.query(
      "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'runs'",
      [database],
    )) as unknown as [unknown[]];
    if (tables.length > 0) await pool.query(`TRUNCATE TABLE ${name}.runs`);
    await pool.query(`DROP TABLE IF EXISTS ${name}.bench_seed`);
  } finally {
    await pool.end();
  }
}

/** Records the shape and size just seeded (seededShape reads it back). */
async function recordShape(pool: Pool, options: Required<SeedOptions>): Promise<void> {
  await pool.query(
    "CREATE TABLE bench_seed (shape INT NOT NULL, runs BIGINT NOT NULL, threads BIGINT NOT NULL, users BIGINT NOT NULL)",
  );
  await pool.query("INSERT INTO bench_seed VALUES (?, ?, ?, ?)", [
    SEED_SHAPE,
    options.runs,
    options.threads,
    options.users,
  ]);
}

/** What a database was seeded with, or null when it was not (or by a seed.ts before shapes). */
export async function seededShape(
  url: string,
): Promise<{ shape: number; runs: number; threads: number; users: number } | null> {
  const pool = createPool({ uri: url, connectionLimit: 1 });
  try {
    const [rows] = (await pool.query("SELECT * FROM bench_seed")) as unknown as [
      { shape: number; runs: number; threads: number; users: number }[],
    ];
    const [first] = rows;
    return first === undefined ? null : { ...first, runs: Number(first.runs) };
  } catch (error) {
    // ER_BAD_DB_ERROR, ER_NO_SUCH_TABLE: never seeded with a shape.
    if ([1049, 1146].includes((error as { errno?: number }).errno ?? 0)) return null;
    throw error;
  } finally {
    await pool.end();
  }
}

/** Inserts every row, `parallel` INSERTs of `batch` rows at a time. */
async function insertRows(pool: Pool, options: Required<SeedOptions>): Promise<void> {
  const now = Date.now();
  let nextBatch = 0;
  const worker = async () => {
    for (;;) {
      const start = nextBatch * options.batch;
      nextBatch++;
      if (start >= options.runs) return;
      const next = random(start + 1);
      const rows = [];
      for (let i = start; i < Math.min(options.runs, start + options.batch); i++) {
        rows.push(row(i, options, now, next));
      }
      await pool.query(`INSERT INTO runs (${COLUMNS}) VALUES ?`, [rows]);
    }
  };
  await Promise.all(Array.from({ length: options.parallel }, worker));
}

/** Creates the schema when needed, empties the table and loads it. */
export async function seed(input: SeedOptions): Promise<SeedResult> {
  const options: Required<SeedOptions> = {
    users: Math.max(1, Math.round(input.runs / 1000)),
    pending: 50,
    running: 50,
    batch: 1000,
    parallel: 4,
    ...input,
  };
  if (options.runs < options.threads) throw new Error("--runs must be at least --threads");
  if (options.threads < options.users) throw new Error("--threads must be at least --users");
  const began = performance.now();
  await emptyDatabase(options.url);
  await migrate({ url: options.url, poolSize: 1 });
  const pool = createPool({ uri: options.url, connectionLimit: options.parallel });
  try {
    await insertRows(pool, options);
    await pool.query("ANALYZE TABLE runs");
    await recordShape(pool, options);
    const seconds = (performance.now() - began) / 1000;
    return {
      runs: options.runs,
      threads: options.threads,
      users: options.users,
      seconds,
      rowsPerSecond: options.runs / seconds,
    };
  } finally {
    await pool.end();
  }
}

if (process.argv[1]?.endsWith("seed.ts") || process.argv[1]?.endsWith("seed.js")) {
  const { values } = parseArgs({
    options: {
      "database-url": { type: "string" },
      runs: { type: "string", default: "1000000" },
      threads: { type: "string", default: "100000" },
      users: { type: "string" },
    },
  });
  const url = values["database-url"] ?? process.env.DATABASE_URL;
  if (url === undefined) {
    console.error("seed: give --database-url mysql://user@host:port/database (or DATABASE_URL)");
    process.exit(2);
  }
  const result = await seed({
    url,
    runs: Number(values.runs),
    threads: Number(values.threads),
    ...(values.users === undefined ? {} : { users: Number(values.users) }),
  });
  console.log(
    `seeded ${result.runs} runs over ${result.threads} threads and ${result.users} users in ` +
      `${result.seconds.toFixed(1)} s (${Math.round(result.rowsPerSecond)} rows/s)`,
  );
}
