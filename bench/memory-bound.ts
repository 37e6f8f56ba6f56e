import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { RemoteRunStore } from "@runstore/client";
import { type Served, serve, statusMb } from "./serve.js";

// The memory store under a long write load (issue 15 item 7): a server on
// the memory backend with MEMORY_MAX_RUNS set takes many more run
// lifecycles (put, start, complete) through RemoteRunStore than it may
// hold, and its RSS (/proc/<pid>/status VmRSS) is sampled every
// `sampleEvery` runs. With the bound the series goes flat once the store is
// full (the oldest finished runs are evicted); with MEMORY_MAX_RUNS=0 it
// grows with every run, up to a cap so the bench cannot exhaust the machine.
// Part of `npm run bench`; alone (after `npm run build`):
// `node --conditions=source --import tsx bench/memory-bound.ts [--smoke]
// [--max-runs N] [--runs N] [--sample-every N]`.

/** One measured server: its bound and how many lifecycles to write. */
export interface BoundSpec {
  /** MEMORY_MAX_RUNS; 0: no bound. */
  maxRuns: number;
  runs: number;
  sampleEvery: number;
  concurrency: number;
  /** Writing stops once the server's RSS passes this (the unbounded run's cap). */
  rssCapMb: number;
}

/** What one server did. */
export interface BoundResult extends BoundSpec {
  written: number;
  samples: { runs: number; rssMb: number }[];
  /** Runs of kind run the store held at the end (GetRunStats over everything). */
  held: number;
  peakRssMb: number;
  seconds: number;
  /** Why writing stopped before `runs`: the RSS cap or the first error; null when it did not. */
  stopped: string | null;
}

const MODELS = ["gpt-4o", "claude-sonnet-4", "deepseek-v3", "qwen-max"];
/** The metadata and input an agent runtime writes with a run (as bench/load.ts and seed.ts). */
const METADATA = {
  graph_id: "lead_agent",
  source: "bench",
  env: "prod",
  tags: ["agent", "team-3"],
};

/** One run's lifecycle: put (pending), start (running), completion (success) with its usage. */
async function lifecycle(store: RemoteRunStore, i: number): Promise<void> {
  const runId = `mb-${i.toString(36).padStart(8, "0")}`;
  const model = MODELS[i % MODELS.length] as string;
  await store.put(runId, {
    threadId: `mb-thread-${Math.floor(i / 10)}`,
    userId: `user-${i % 1000}`,
    assistantId: "lead_agent",
    modelName: model,
    metadata: { ...METADATA, step: i % 10 },
    kwargs: { input: { messages: [{ role: "user", content: `Question ${i} about the report` }] } },
  });
  await store.startRun(runId);
  await store.updateRunCompletion(runId, {
    status: "success",
    totalInputTokens: 4000,
    totalOutputTokens: 800,
    totalTokens: 4800,
    llmCallCount: 3,
    messageCount: 6,
    lastAiMessage: `Here is the summary for request ${i}.`,
    tokenUsageByModel: { [model]: { inputTokens: 4000, outputTokens: 800, totalTokens: 4800 } },
  });
}

/** Writes the lifecycles with `concurrency` workers, sampling the server's RSS as they go. */
async function writeAndSample(server: Served, spec: BoundSpec) {
  const pid = server.child.pid as number;
  const store = new RemoteRunStore({ baseUrl: server.url, retry: false });
  const samples: BoundResult["samples"] = [];
  let next = 0;
  let done = 0;
  let stopped: string | null = null;
  const worker = async () => {
    while (stopped === null && next < spec.runs) {
      const i = next++;
      try {
        await lifecycle(store, i);
      } catch (error) {
        stopped ??= `run ${i}: ${(error as Error).message}`;
        return;
      }
      done++;
      if (done % spec.sampleEvery === 0) {
        const rssMb = statusMb(pid, "VmRSS");
        samples.push({ runs: done, rssMb });
        console.error(
          `memory bound MEMORY_MAX_RUNS=${spec.maxRuns}: ${done} runs, RSS ${Math.round(rssMb)} MB`,
        );
        if (rssMb > spec.rssCapMb) stopped ??= `RSS ${Math.round(rssMb)} MB past the cap`;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
    const held = (await store.getRunStats({})).totalRuns;
    return { written: done, samples, held, stopped };
  } finally {
    store.close();
  }
}

/** Starts a memory-backend server with the spec's bound, loads it, stops it. */
export async function measureBound(spec: BoundSpec): Promise<BoundResult> {
  const server = await serve(
    `runstore-memory (MEMORY_MAX_RUNS=${spec.maxRuns})`,
    ["dist/main.js"],
    {
      MEMORY_MAX_RUNS: String(spec.maxRuns),
      // A write load measuring memory, as in bench/run.ts: no shedding on lag.
      OVERLOAD_LAG_MS: "0",
    },
  );
  try {
    const began = performance.now();
    const written = await writeAndSample(server, spec);
    return {
      ...spec,
      ...written,
      peakRssMb: statusMb(server.child.pid as number, "VmHWM"),
      seconds: (performance.now() - began) / 1000,
    };
  } finally {
    server.child.kill("SIGTERM");
  }
}

/** The sizes to measure: the bound, the lifecycles written and how often RSS is sampled. */
export interface BoundSizes {
  maxRuns: number;
  runs: number;
  sampleEvery: number;
}

/** Full size, or a few seconds' worth for `--smoke`. */
export const BOUND_SIZES: Record<"full" | "smoke", BoundSizes> = {
  full: { maxRuns: 20_000, runs: 200_000, sampleEvery: 20_000 },
  smoke: { maxRuns: 200, runs: 1000, sampleEvery: 200 },
};

/** The bounded server, then the unbounded one (the same writes, RSS-capped). */
export function boundSpecs(sizes: BoundSizes): BoundSpec[] {
  const shared = {
    concurrency: 32,
    rssCapMb: 2048,
    runs: sizes.runs,
    sampleEvery: sizes.sampleEvery,
  };
  return [
    { ...shared, maxRuns: sizes.maxRuns },
    { ...shared, maxRuns: 0 },
  ];
}

/**
 * The last sample over the first taken once the bound was passed (the store
 * full and evicting): 1.00 is flat. Null without a bound or such samples.
 */
export function flatRatio(result: BoundResult): number | null {
  if (result.maxRuns === 0) return null;
  const after = result.samples.filter((s) => s.runs > result.maxRuns);
  const first = after[0];
  const last = after.at(-1);
  return first === undefined || last === undefined ? null : last.rssMb / first.rssMb;
}

/** The results as report lines (a series per server). */
export function boundReport(results: readonly BoundResult[]): string[] {
  const lines = [
    "| MEMORY_MAX_RUNS | lifecycles written | runs held at the end | RSS MB every sample (runs written: MB) | last / first past the bound | peak RSS MB | s |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const series = r.samples.map((s) => `${s.runs}: ${Math.round(s.rssMb)}`).join(", ");
    const ratio = flatRatio(r);
    lines.push(
      `| ${r.maxRuns === 0 ? "0 (no bound)" : r.maxRuns} | ${r.written}${r.stopped === null ? "" : ` (stopped: ${r.stopped})`} | ${r.held} | ${series} | ${ratio === null ? "—" : ratio.toFixed(2)} | ${Math.round(r.peakRssMb)} | ${r.seconds.toFixed(0)} |`,
    );
  }
  return lines;
}

/** Every spec in turn (one server at a time, so each has the machine to itself). */
export async function memoryBound(sizes: BoundSizes): Promise<BoundResult[]> {
  if (!existsSync("dist/main.js")) throw new Error("memory bound: run `npm run build` first");
  const results: BoundResult[] = [];
  for (const spec of boundSpecs(sizes)) {
    results.push(await measureBound(spec));
    console.error(`memory bound MEMORY_MAX_RUNS=${spec.maxRuns}: done`);
  }
  return results;
}

/** The bench step: measures, prints the table, keeps the figures in bench/results. */
export async function memoryBoundStep(smoke: boolean, sizes?: BoundSizes): Promise<void> {
  const results = await memoryBound(sizes ?? BOUND_SIZES[smoke ? "smoke" : "full"]);
  console.log(["", "Memory store under MEMORY_MAX_RUNS:", "", ...boundReport(results)].join("\n"));
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/memory-bound${smoke ? "-smoke" : ""}.json`,
    `${JSON.stringify(
      results.map((r) => ({ ...r, flatRatio: flatRatio(r) })),
      null,
      2,
    )}\n`,
  );
}

if (process.argv[1]?.endsWith("memory-bound.ts")) {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      "max-runs": { type: "string" },
      runs: { type: "string" },
      "sample-every": { type: "string" },
    },
  });
  const smoke = values.smoke ?? false;
  const base = BOUND_SIZES[smoke ? "smoke" : "full"];
  await memoryBoundStep(smoke, {
    maxRuns: Number(values["max-runs"] ?? base.maxRuns),
    runs: Number(values.runs ?? base.runs),
    sampleEvery: Number(values["sample-every"] ?? base.sampleEvery),
  });
}
