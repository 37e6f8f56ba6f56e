import { parseArgs } from "node:util";
import { createPool } from "mysql2/promise";
import { migrate } from "../src/stores/mysql-migrations.js";

// `npm run seed -- --database-url mysql://root@127.0.0.1:3306/runstore_big`
// Loads a realistic run table: `--runs` runs (default 1,000,000) over
// `--threads` threads (default 100,000), ten per thread, with metadata,
// kwargs, token counters and messages of the sizes agent runtimes write.
// The shape does not change with the size, so a small and a big table can
// be compared call for call: ten runs per thread, and exactly `pending` +
// `running` runs in flight (so list_pending / list_inflight answer the same
// number of rows whatever the table's size). Multi-row INSERTs over a few
// connections; prints how long it took.

const MODELS = ["gpt-4o", "claude-sonnet-4", "deepseek-v3", "qwen-max"];
const FINISHED = ["success", "success", "success", "success", "success", "success", "error"];
const DAY_MS = 86_400_000;

export interface SeedOptions {
  url: string;
  runs: number;
  threads: number;
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
  seconds: number;
  rowsPerSecond: number;
}

/** A DATETIME(6) literal, `ms` after the epoch, UTC. */
function datetime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "000");
}

/** A small deterministic PRNG (mulberry32), so every seeding writes the same table. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Row `i` of the table, as the INSERT's values. */
function row(i: number, options: Required<SeedOptions>, now: number, next: () => number) {
  const thread = i % options.threads;
  // The newest runs (highest i) are the ones in flight.
  const fromEnd = options.runs - 1 - i;
  const status =
    fromEnd < options.pending
      ? "pending"
      : fromEnd < options.pending + options.running
        ? "running"
        : (FINISHED[Math.floor(next() * FINISHED.length)] as string);
  const created = now - DAY_MS * 90 + Math.floor((i / options.runs) * DAY_MS * 90);
  const finished = status !== "pending" && status !== "running";
  const input = finished ? 1000 + Math.floor(next() * 20_000) : 0;
  const output = finished ? 200 + Math.floor(next() * 4000) : 0;
  return [
    `run-${i.toString(36).padStart(8, "0")}-${Math.floor(next() * 1e9).toString(36)}`,
    `thread-${thread.toString(36).padStart(6, "0")}`,
    "lead_agent",
    `user-${thread % 1000}`,
    MODELS[thread % MODELS.length],
    status,
    "reject",
    JSON.stringify({
      graph_id: "lead_agent",
      source: "seed",
      tags: ["agent", `team-${thread % 17}`],
      step: i % 10,
    }),
    JSON.stringify({
      input: { messages: [{ role: "user", content: `Question ${i} about the quarterly report` }] },
      config: { recursion_limit: 100, configurable: { thread_id: `thread-${thread}` } },
    }),
    status === "error" ? "RuntimeError: tool call failed after 3 retries" : null,
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
  ];
}

const COLUMNS =
  "run_id, thread_id, assistant_id, user_id, model_name, status, multitask_strategy, " +
  "metadata, kwargs, error, created_at, updated_at, total_input_tokens, total_output_tokens, " +
  "total_tokens, llm_call_count, lead_agent_tokens, subagent_tokens, middleware_tokens, " +
  "message_count, last_ai_message, first_human_message";

/** Creates the schema when needed, empties the table and loads it. */
export async function seed(input: SeedOptions): Promise<SeedResult> {
  const options: Required<SeedOptions> = {
    pending: 50,
    running: 50,
    batch: 1000,
    parallel: 4,
    ...input,
  };
  if (options.runs < options.threads) throw new Error("--runs must be at least --threads");
  await migrate({ url: options.url });
  const pool = createPool({ uri: options.url, connectionLimit: options.parallel });
  try {
    await pool.query("TRUNCATE TABLE runs");
    const began = performance.now();
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
    await pool.query("ANALYZE TABLE runs");
    const seconds = (performance.now() - began) / 1000;
    return {
      runs: options.runs,
      threads: options.threads,
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
    },
  });
  const url = values["database-url"] ?? process.env.DATABASE_URL;
  if (url === undefined) {
    console.error("seed: give --database-url mysql://user@host:port/database (or DATABASE_URL)");
    process.exit(2);
  }
  const result = await seed({ url, runs: Number(values.runs), threads: Number(values.threads) });
  console.log(
    `seeded ${result.runs} runs over ${result.threads} threads in ${result.seconds.toFixed(1)} s ` +
      `(${Math.round(result.rowsPerSecond)} rows/s)`,
  );
}
