import { parseArgs } from "node:util";
import type { RunStore } from "@runstore/client";
import { hasChangeFeed } from "../src/stores/change-feed.js";
import { MemoryRunStore } from "../src/stores/memory-run-store.js";

// What the memory store's change log (src/stores/memory-change-feed.ts)
// costs its write path: the lifecycle workload of bench/load.ts (put,
// start, five progress snapshots, completion, get, listByThread: 8 writes)
// on an in-process MemoryRunStore, one lifecycle after another. With
// --watch, one WatchRuns stream (the server's hub and one stream's
// generator, no network) reads every change while the writes run. Run it
// on a tree without the change log (a checkout before issue 17) for the
// "without" figure. Figures only, never pass/fail.
//
//   node --conditions=source --import tsx bench/watch-memory.ts [--rounds 5] [--lifecycles 20000] [--watch]

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    lifecycles: { type: "string", default: "20000" },
    watch: { type: "boolean", default: false },
  },
});
const ROUNDS = Number(flags.rounds);
const LIFECYCLES = Number(flags.lifecycles);
const METADATA = { source: "bench", tags: ["a", "b"], depth: { x: 1 } };

/** One lifecycle of bench/load.ts's workload. */
async function lifecycle(store: RunStore, i: number): Promise<void> {
  const runId = `l-${i}`;
  const threadId = `lt-${i % 64}`;
  await store.put(runId, { threadId, metadata: METADATA });
  await store.updateStatus(runId, "running");
  for (let k = 1; k <= 5; k++) {
    await store.updateRunProgress(runId, { totalTokens: k * 100, lastAiMessage: `step ${k}` });
  }
  await store.updateRunCompletion(runId, { status: "success", totalTokens: 600 });
  await store.get(runId);
  await store.listByThread(threadId, { limit: 10 });
}

/** A WatchRuns stream of every run over the store's log, read as fast as it comes; stops on abort. */
async function watcher(store: MemoryRunStore, signal: AbortSignal): Promise<() => number> {
  const { WatchHub } = await import("../src/watch/watch-hub.js");
  const { watchStream } = await import("../src/watch/watch-stream.js");
  if (!hasChangeFeed(store)) throw new Error("--watch needs a store with a change log");
  const hub = new WatchHub(store.changeFeed(), {
    window: 10_000,
    maxWatchers: 10,
    maxWatchersPerConnection: 10,
    retryMs: 100,
  });
  let changes = 0;
  const filter = {
    userId: null,
    users: null,
    threadId: null,
    statuses: new Set<never>(),
    activeOnly: false,
    operationKinds: new Set(["run" as const]),
  };
  const stream = watchStream(hub, {
    filter,
    cursor: null,
    connection: null,
    heartbeatMs: 60_000,
    signal,
  });
  const first = await stream.next();
  if (first.done) throw new Error("the stream ended at once");
  let failed: unknown = null;
  void (async () => {
    for await (const message of stream) if (message.change !== null) changes++;
  })().catch((error: unknown) => {
    failed = error;
  });
  return () => {
    if (failed !== null) throw failed;
    return changes;
  };
}

/** One round on a fresh store: lifecycles a second, and the changes a watcher saw. */
async function round(): Promise<{ perSecond: number; watched: number | null; rssMb: number }> {
  const store = new MemoryRunStore({ maxRuns: 0 });
  const stop = new AbortController();
  const watched = flags.watch ? await watcher(store, stop.signal) : null;
  const started = process.hrtime.bigint();
  for (let i = 0; i < LIFECYCLES; i++) {
    await lifecycle(store, i);
    // Let the watcher's turns run, as a server's event loop would between calls.
    if (watched !== null && i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await new Promise((resolve) => setImmediate(resolve));
  const seen = watched === null ? null : watched();
  stop.abort();
  return {
    perSecond: LIFECYCLES / seconds,
    watched: seen,
    rssMb: process.memoryUsage().rss / 2 ** 20,
  };
}

const results = [];
await round(); // warm-up
for (let r = 0; r < ROUNDS; r++) results.push(await round());
const rates = results.map((r) => r.perSecond).sort((a, b) => a - b);
const median = rates[Math.floor(rates.length / 2)] ?? 0;
const log = hasChangeFeed(new MemoryRunStore())
  ? "change log, nobody watching"
  : "without change log";
console.log(
  JSON.stringify({
    variant: `${log}${flags.watch ? ", one watcher" : ""}`,
    lifecycles: LIFECYCLES,
    rounds: ROUNDS,
    lifecyclesPerSecond: Math.round(median),
    writesPerSecond: Math.round(median * 8),
    microsPerLifecycle: Number((1e6 / median).toFixed(1)),
    watcherSaw: results.map((r) => r.watched),
    rssMb: Math.round(results.at(-1)?.rssMb ?? 0),
  }),
);
