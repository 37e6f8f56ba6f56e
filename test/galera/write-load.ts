import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { createConnection } from "mysql2/promise";

// A mixed write load for the kill tests (node-kill.test.ts): loops that each
// take one run after another through its writes, alternating two paths
//   put:       put (pending), updateStatus running, two progress snapshots,
//              updateRunCompletion success
//   admission: createThreadOperation (pending), startRun, two snapshots,
//              finalizeIfNotCancelled success
// with a ledger of how far each run's acknowledged writes got and how far
// any attempt got, every call the caller saw fail (a run stops at its first),
// and the check of one node's rows against the ledger.

/** How far a run's writes got: 0 none, 1 pending, 2 running, 3 and 4 a snapshot, 10 ended. */
type Stage = number;

const ENDED: Stage = 10;

interface Ledger {
  runId: string;
  /** The stage of the last write answered as applied. */
  acked: Stage;
  /** The stage of the last write sent (answered or not). */
  attempted: Stage;
}

/** A call the caller saw fail, or answered as not applied. */
export interface Failure {
  method: string;
  /** The ConnectError code's name, or "NOT_APPLIED" for an answer of false. */
  code: string;
  startedAt: number;
  endedAt: number;
}

/** One call of a run, and the stage it reaches when applied. */
interface Step {
  stage: Stage;
  method: string;
  call: () => Promise<unknown>;
}

/** The row a run left on a node: what stageOf reads. */
export interface RunRow {
  status: string;
  total_tokens: number;
}

function steps(store: RunStore, runId: string, owner: string, admission: boolean): Step[] {
  const threadId = `${runId}-t`;
  const snapshots: Step[] = [1, 2].map((k) => ({
    stage: 2 + k,
    method: "updateRunProgress",
    call: () => store.updateRunProgress(runId, { totalTokens: 10 * k }),
  }));
  if (admission) {
    return [
      {
        stage: 1,
        method: "createThreadOperation",
        call: () =>
          store.createThreadOperation(runId, {
            threadId,
            ownerWorkerId: owner,
            lease: { durationMs: 60_000 },
          }),
      },
      { stage: 2, method: "startRun", call: () => store.startRun(runId) },
      ...snapshots,
      {
        stage: ENDED,
        method: "finalizeIfNotCancelled",
        call: () => store.finalizeIfNotCancelled(runId, "success"),
      },
    ];
  }
  return [
    { stage: 1, method: "put", call: () => store.put(runId, { threadId, status: "pending" }) },
    { stage: 2, method: "updateStatus", call: () => store.updateStatus(runId, "running") },
    ...snapshots,
    {
      stage: ENDED,
      method: "updateRunCompletion",
      call: () => store.updateRunCompletion(runId, { status: "success", totalTokens: 100 }),
    },
  ];
}

/** false, or a finalization that did not finalize: the write did not apply. */
function notApplied(answer: unknown): boolean {
  if (answer === false) return true;
  return typeof answer === "object" && answer !== null && "finalized" in answer
    ? answer.finalized === false
    : false;
}

/** The stage a run's row shows (NaN for a status the load never writes). */
export function stageOf(row: RunRow | undefined): Stage {
  if (row === undefined) return 0;
  switch (row.status) {
    case "pending":
      return 1;
    case "running":
      return 2 + Number(row.total_tokens) / 10;
    case "success":
      return ENDED;
    default:
      return Number.NaN;
  }
}

/** `loops` concurrent loops of runs named `${tag}-<loop>-<i>`, started at once; stop() ends them. */
export class WriteLoad {
  readonly runs: Ledger[] = [];
  readonly failures: Failure[] = [];
  /** When each write was acknowledged (performance.now()), in order. */
  readonly acks: number[] = [];
  /** Every call's start and duration in ms, in the order they ended. */
  readonly calls: { startedAt: number; ms: number }[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly store: RunStore,
    readonly tag: string,
    loops: number,
  ) {
    this.loops = Array.from({ length: loops }, (_, loop) => this.loop(loop));
  }

  /** Writes acknowledged at or after `time` (performance.now()). */
  ackedSince(time: number): number {
    return this.acks.filter((at) => at >= time).length;
  }

  /** Lets each loop finish its call in flight, then resolves. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /**
   * What breaks the ledger in one node's rows (by run id): a run whose row
   * is behind its last acknowledged write (that write was lost), past its
   * last attempted one (a write nobody made), or a row of this load that no
   * loop wrote. Empty when the node holds every acknowledged write.
   */
  check(rows: ReadonlyMap<string, RunRow>): string[] {
    const problems: string[] = [];
    for (const { runId, acked, attempted } of this.runs) {
      const found = stageOf(rows.get(runId));
      if (!(found >= acked && found <= attempted)) {
        problems.push(`${runId}: acknowledged ${acked}, attempted ${attempted}, found ${found}`);
      }
    }
    const known = new Set(this.runs.map((run) => run.runId));
    for (const runId of rows.keys()) {
      if (!known.has(runId)) problems.push(`${runId}: a row no loop wrote`);
    }
    return problems;
  }

  private async loop(loop: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const ledger: Ledger = { runId: `${this.tag}-${loop}-${i}`, acked: 0, attempted: 0 };
      this.runs.push(ledger);
      const owner = `${this.tag}-worker-${loop}`;
      for (const step of steps(this.store, ledger.runId, owner, i % 2 === 1)) {
        if (!this.running) break;
        ledger.attempted = step.stage;
        if (!(await this.call(step))) break;
        ledger.acked = step.stage;
      }
    }
  }

  /** Makes one call; true when it was acknowledged as applied. */
  private async call(step: Step): Promise<boolean> {
    const startedAt = performance.now();
    const code = await step.call().then(
      (answer) => (notApplied(answer) ? "NOT_APPLIED" : null),
      (error: unknown) => Code[ConnectError.from(error).code] ?? "UNKNOWN",
    );
    const endedAt = performance.now();
    this.calls.push({ startedAt, ms: endedAt - startedAt });
    if (code !== null) {
      this.failures.push({ method: step.method, code, startedAt, endedAt });
      return false;
    }
    this.acks.push(endedAt);
    return true;
  }
}

/** The rows of a load's runs on one node (a database URL), by run id. */
export async function readRuns(url: string, tag: string): Promise<Map<string, RunRow>> {
  const connection = await createConnection({ uri: url });
  try {
    const [rows] = await connection.query(
      // run_id is VARBINARY: read back as text.
      "SELECT CONVERT(run_id USING utf8mb4) AS run_id, status, total_tokens FROM runs WHERE run_id LIKE ?",
      [`${tag}-%`],
    );
    return new Map(
      (rows as (RunRow & { run_id: string })[]).map((row) => [
        row.run_id,
        { status: row.status, total_tokens: Number(row.total_tokens) },
      ]),
    );
  } finally {
    await connection.end();
  }
}

/**
 * An interceptor for the client's transports recording every attempt that
 * failed into `into`: those the failover and retries hid from the caller too.
 */
export function recordFailedAttempts(into: Failure[]): Interceptor {
  return (next) => async (request) => {
    const startedAt = performance.now();
    try {
      return await next(request);
    } catch (error) {
      const code = Code[ConnectError.from(error).code] ?? "UNKNOWN";
      into.push({ method: request.method.name, code, startedAt, endedAt: performance.now() });
      throw error;
    }
  };
}
