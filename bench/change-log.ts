import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { migrate } from "../src/stores/mysql-migrations.js";
import { MysqlRunStore } from "../src/stores/mysql-run-store.js";
import {
  cpuMicros,
  cpuWindow,
  type LoadFigures,
  median,
  runLoadProcesses,
} from "./load-processes.js";
import { serverPid } from "./server-pid.js";

// What the MySQL change log (docs/mysql.md "Change log") costs the write
// path: the lifecycle workload (10 store calls an agent run, 8 of them
// writes) on an in-process MysqlRunStore, on a database whose change
// triggers are dropped ("without change log") and on one that has them
// ("with change log"), rounds alternating; then, on the second, what the
// sequencer spends per change it numbers. Figures only, never pass/fail.
//
//   node --conditions=source --import tsx bench/change-log.ts [--rounds 3] [--duration-ms 3000] [--concurrency 16]

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "duration-ms": { type: "string", default: "3000" },
    concurrency: { type: "string", default: "16" },
  },
});
const ROUNDS = Number(flags.rounds);
const DURATION_MS = Number(flags["duration-ms"]);
const CONCURRENCY = Number(flags.concurrency);
const POOL_SIZE = 64;
const SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
const TRIGGERS = ["runs_change_insert", "runs_change_update", "runs_change_delete"];
/** Sequencer runs with nothing to number, measured one after another. */
const IDLE_RUNS = 500;

/** A migrated database of this run's own; without its change triggers when `triggers` is false. */
async function database(name: string, triggers: boolean): Promise<string> {
  const url = `${SERVER}/${name}`;
  await migrate({ url });
  if (!triggers) {
    const connection = await createConnection({ uri: url });
    for (const trigger of TRIGGERS) await connection.query(`DROP TRIGGER ${trigger}`);
    await connection.end();
  }
  return url;
}

/** One round of lifecycle on `url`: its figures and the database's CPU per operation. */
async function round(url: string, dbPid: number | null, tag: string) {
  const db = cpuWindow(dbPid === null ? [] : [dbPid]);
  const figures: LoadFigures = await runLoadProcesses(
    {
      client: "mysql",
      target: url,
      workload: "lifecycle",
      concurrency: CONCURRENCY,
      durationMs: DURATION_MS,
      mysqlPoolSize: POOL_SIZE,
      tag,
    },
    1,
    db,
  );
  return {
    opsPerSec: figures.ops / figures.seconds,
    dbUsPerOp: db.micros() / figures.ops,
    figures,
  };
}

/** Numbers every change on `url` with the sequencer; its cost per change (database + this process). */
async function sequencerCost(url: string, dbPid: number | null) {
  const store = MysqlRunStore.open({ url, poolSize: 2 });
  const connection = await createConnection({ uri: url });
  try {
    const [rows] = await connection.query(
      "SELECT COUNT(*) AS n FROM runstore_changes WHERE change_seq IS NULL",
    );
    const pending = Number((rows as { n: number }[])[0]?.n);
    const feed = store.changeFeed();
    const db = cpuWindow(dbPid === null ? [] : [dbPid]);
    const self = cpuMicros(process.pid);
    const started = performance.now();
    db.start();
    // Each run numbers up to 5000; the last finds nothing left.
    let runs = 0;
    for (let head = -1n; ; ) {
      const next = await feed.head();
      runs++;
      if (next === head) break;
      head = next;
    }
    db.end();
    const ms = performance.now() - started;
    const nodeUs = cpuMicros(process.pid) - self;
    // What a server with watchers pays every WATCH_POLL_MS when nothing changed.
    const idle = cpuWindow(dbPid === null ? [] : [dbPid]);
    const idleStarted = performance.now();
    idle.start();
    for (let i = 0; i < IDLE_RUNS; i++) await feed.head();
    idle.end();
    return {
      pending,
      runs,
      ms,
      dbUsPerChange: db.micros() / pending,
      nodeUsPerChange: nodeUs / pending,
      idleDbUs: idle.micros() / IDLE_RUNS,
      idleMs: (performance.now() - idleStarted) / IDLE_RUNS,
    };
  } finally {
    await connection.end();
    await store.close();
  }
}

async function main(): Promise<void> {
  const base = `runstore_bench_changes_${process.pid}`;
  const admin = await createConnection({ uri: SERVER });
  const dbPid = await serverPid(SERVER);
  const names = [`${base}_without`, `${base}_with`];
  try {
    const without = await database(names[0] as string, false);
    const withLog = await database(names[1] as string, true);
    const results = {
      without: [] as Awaited<ReturnType<typeof round>>[],
      with: [] as Awaited<ReturnType<typeof round>>[],
    };
    for (let r = 0; r < ROUNDS; r++) {
      results.without.push(await round(without, dbPid, `w${r}`));
      results.with.push(await round(withLog, dbPid, `c${r}`));
    }
    const ops = (k: "without" | "with") => median(results[k].map((x) => x.opsPerSec));
    const dbCpu = (k: "without" | "with") => median(results[k].map((x) => x.dbUsPerOp));
    const errors = [...results.without, ...results.with].reduce((n, x) => n + x.figures.errors, 0);
    const sequencer = await sequencerCost(withLog, dbPid);
    console.log(
      [
        `lifecycle, in-process MysqlRunStore, concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${DURATION_MS} ms (medians), errors ${errors}`,
        "",
        "| path | lifecycles/s | db CPU µs/lifecycle |",
        "|---|---|---|",
        `| without change log | ${ops("without").toFixed(0)} | ${dbCpu("without").toFixed(0)} |`,
        `| with change log | ${ops("with").toFixed(0)} | ${dbCpu("with").toFixed(0)} |`,
        `| ratio with / without | ${(ops("with") / ops("without")).toFixed(2)} | ${(dbCpu("with") / dbCpu("without")).toFixed(2)} |`,
        "",
        `sequencer: ${sequencer.pending} changes numbered in ${sequencer.runs} runs, ${sequencer.ms.toFixed(0)} ms; ` +
          `per change: db CPU ${sequencer.dbUsPerChange.toFixed(1)} µs, this process ${sequencer.nodeUsPerChange.toFixed(1)} µs, ` +
          `${((sequencer.ms * 1000) / sequencer.pending).toFixed(1)} µs wall; ` +
          `a run with nothing to number: db CPU ${sequencer.idleDbUs.toFixed(0)} µs, ${sequencer.idleMs.toFixed(2)} ms wall`,
      ].join("\n"),
    );
  } finally {
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
}

await main();
