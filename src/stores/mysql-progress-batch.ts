import { Code, ConnectError } from "@connectrpc/connect";
import { COUNTER_FIELDS, refusedBeforeRunning } from "@runstore/client/internal";
import { retryAfterMs } from "../retry-hint.js";
import type { ProgressInput } from "./check-input.js";
import { checkPacketLimit } from "./mysql-packet-limit.js";
import { COUNTER_COLUMNS, type SqlValues, toSql, usageMapToSql } from "./mysql-rows.js";

/** The most progress writes one batch statement carries. */
export const MAX_BATCH_INPUTS = 200;
/** Batch statements (or lone statements) of progress in flight at once; the rest wait and group. */
const MAX_FLIGHTS = 2;
/** The bytes of a batch's inputs when the store does not know max_allowed_packet. */
const DEFAULT_BATCH_BYTES = 1024 * 1024;
/** Room kept under max_allowed_packet besides the statement text (mysql-packet-limit.ts counts 1 KiB). */
const BATCH_SLACK_BYTES = 4096;
/** MYSQL_PROGRESS_BATCH's default: writes waiting for a batch, two full statements' worth. */
export const DEFAULT_MAX_WAITING = MAX_FLIGHTS * MAX_BATCH_INPUTS;
/** Weight of the newest statement in the mean statement time. */
const FLIGHT_TIME_WEIGHT = 0.1;

const TEXT_COLUMNS = ["last_ai_message", "first_human_message", "token_usage_by_model"] as const;

/**
 * Every progress write of a batch in one statement: the inputs are one JSON
 * array, read as a table, each row joined to its run by primary key (the
 * run id hex-encoded, so its bytes survive the JSON round trip exactly:
 * VARBINARY compares byte for byte). An input leaves out what it does not
 * give, which JSON_TABLE reads as NULL, so COALESCE keeps the stored value
 * as the single statement does. `WHERE runs.status = 'running'` is
 * evaluated per row: a run that is not running is left as it is. The JSON
 * table drives the join (STRAIGHT_JOIN) and its rows come in run id order,
 * so two batches lock their rows in the same order. A batch never holds two
 * inputs of one run: a multi-table UPDATE changes each row once.
 */
export const BATCH_PROGRESS =
  "UPDATE JSON_TABLE(?, '$[*]' COLUMNS (run_id VARCHAR(512) CHARACTER SET ascii PATH '$.run_id', " +
  `${COUNTER_COLUMNS.map((c) => `${c} BIGINT PATH '$.${c}'`).join(", ")}, ` +
  `${TEXT_COLUMNS.map((c) => `${c} LONGTEXT CHARACTER SET utf8mb4 PATH '$.${c}'`).join(", ")}, ` +
  "updated_at VARCHAR(26) CHARACTER SET ascii PATH '$.updated_at')) AS p " +
  "STRAIGHT_JOIN runs FORCE INDEX (PRIMARY) ON runs.run_id = UNHEX(p.run_id) SET " +
  `${[...COUNTER_COLUMNS, ...TEXT_COLUMNS].map((c) => `runs.${c} = COALESCE(p.${c}, runs.${c})`).join(", ")}, ` +
  "runs.updated_at = p.updated_at WHERE runs.status = 'running'";

/** updateRunProgress's values for the single statement (STATEMENTS.updateRunProgress). */
export function progressValues(input: ProgressInput, updatedAt: string): SqlValues {
  return [
    ...COUNTER_FIELDS.map(([name]) => input.counters[name] ?? null),
    input.lastAiMessage,
    input.firstHumanMessage,
    input.tokenUsageByModel === null ? null : usageMapToSql(input.tokenUsageByModel),
    toSql(updatedAt),
    input.runId,
  ];
}

/** One input as an element of BATCH_PROGRESS's JSON array: what it does not give is left out. */
function batchItem(input: ProgressInput, updatedAt: string): string {
  const item: Record<string, string | number> = {
    run_id: Buffer.from(input.runId, "utf8").toString("hex"),
  };
  for (const [name, column] of COUNTER_FIELDS) {
    const value = input.counters[name];
    if (value !== undefined) item[column] = value;
  }
  if (input.lastAiMessage !== null) item.last_ai_message = input.lastAiMessage;
  if (input.firstHumanMessage !== null) item.first_human_message = input.firstHumanMessage;
  if (input.tokenUsageByModel !== null) {
    item.token_usage_by_model = usageMapToSql(input.tokenUsageByModel);
  }
  item.updated_at = toSql(updatedAt);
  return JSON.stringify(item);
}

/** A progress write waiting for, or riding in, a batch. */
interface Pending {
  readonly key: string;
  readonly item: string;
  readonly bytes: number;
  /** Today's single statement, on the caller's view of the store (its signal included). */
  readonly alone: () => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  /** Removes the caller's abort listener, if any. */
  detach: () => void;
  settled: boolean;
}

/** What a ProgressBatch runs on: the store without a call's signal, and the answers it needs. */
export interface ProgressBatchOptions {
  /** Runs one statement as its own transaction (deadlock retries and error mapping included). */
  run(sql: string, values: SqlValues): Promise<unknown>;
  /** The answer for a caller whose signal aborted (the store's cut-off error). */
  cutOff(signal: AbortSignal): unknown;
  /** The database's max_allowed_packet, when known. */
  maxAllowedPacketBytes: number | null;
  /** The single statement: an input too large for it is refused alone, before it waits. */
  singleSql: string;
  /** Writes that may wait for a batch (MYSQL_PROGRESS_BATCH); one more is refused. */
  maxWaiting: number;
}

/** The refusals of writes past MYSQL_PROGRESS_BATCH, told apart from any other error. */
const refusals = new WeakSet<object>();

/** Whether `error` is a progress write refused because MYSQL_PROGRESS_BATCH writes waited already. */
export function isProgressBatchRefusal(error: unknown): boolean {
  return typeof error === "object" && error !== null && refusals.has(error);
}

/**
 * Group commit of updateRunProgress (issue 18 item 3). Writes arriving in
 * the same event-loop turn, or while MAX_FLIGHTS statements of progress are
 * in flight, are collected; a write waiting alone then runs the single
 * statement unchanged, several run as one BATCH_PROGRESS statement. Each
 * caller is answered after the statement carrying its write committed.
 * Inputs of one run apply in arrival order: a run with a write in flight
 * or taken into this batch waits for a later one. A batch is capped at
 * MAX_BATCH_INPUTS inputs and under max_allowed_packet.
 *
 * At most `maxWaiting` writes wait (MYSQL_PROGRESS_BATCH): one more is
 * refused at once, before it waits, with UNAVAILABLE and a retry hint of
 * how long the line takes to drain, as the server's other bounds refuse
 * (overload.ts). The server lets batched writes bypass its per-call places
 * (bounded-store.ts): they hold no pool connection each, at most
 * MAX_FLIGHTS between them, so this is their bound.
 *
 * A caller whose signal aborts is answered at once with its cut-off error.
 * If its write was still waiting it never runs; if it already rides in a
 * batch statement, the statement goes on for the others and the write may
 * still apply: a write whose answer was lost, as with any call whose
 * answer does not reach the caller. (A write sent alone keeps the single
 * statement's behaviour: it is killed with the call.)
 */
export class ProgressBatch {
  private readonly waiting: Pending[] = [];
  /** Run ids (hex) with a statement in flight. */
  private readonly busy = new Set<string>();
  private flights = 0;
  private scheduled = false;
  private readonly batchBytes: number;
  /** Mean time of a statement of progress, ms, for the retry hint. */
  private meanFlightMs = 1;

  constructor(private readonly options: ProgressBatchOptions) {
    const limit = options.maxAllowedPacketBytes;
    this.batchBytes =
      limit === null
        ? DEFAULT_BATCH_BYTES
        : limit - Buffer.byteLength(BATCH_PROGRESS) - BATCH_SLACK_BYTES;
  }

  /**
   * Writes `input` with the others that arrive with it; `alone` runs the
   * single statement with `values` on the caller's view of the store.
   */
  write(
    input: ProgressInput,
    updatedAt: string,
    alone: (values: SqlValues) => Promise<unknown>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(this.options.cutOff(signal));
    if (this.waiting.length >= this.options.maxWaiting) return Promise.reject(this.refusal());
    const values = progressValues(input, updatedAt);
    const limit = this.options.maxAllowedPacketBytes;
    if (limit !== null) checkPacketLimit(this.options.singleSql, values, limit);
    const item = batchItem(input, updatedAt);
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        key: Buffer.from(input.runId, "utf8").toString("hex"),
        item,
        bytes: Buffer.byteLength(item) + 1,
        alone: async () => {
          await alone(values);
        },
        resolve,
        reject,
        detach: () => {},
        settled: false,
      };
      if (signal !== undefined) this.answerOnAbort(pending, signal);
      this.waiting.push(pending);
      this.schedule();
    });
  }

  /** A refusal past maxWaiting: come back when the writes waiting have gone, statement by statement. */
  private refusal(): unknown {
    const statements = Math.ceil((this.waiting.length + 1) / (MAX_FLIGHTS * MAX_BATCH_INPUTS));
    const drain = statements * this.meanFlightMs;
    const ms = retryAfterMs(drain);
    const error = refusedBeforeRunning(
      `server overloaded: MYSQL_PROGRESS_BATCH (${this.options.maxWaiting}) progress writes already waiting for a batch; retry after ${ms} ms`,
      ms,
    );
    refusals.add(error);
    return error;
  }

  /** Answers `pending`'s caller when `signal` aborts; a write still waiting is dropped. */
  private answerOnAbort(pending: Pending, signal: AbortSignal): void {
    const onAbort = () => {
      const at = this.waiting.indexOf(pending);
      if (at !== -1) this.waiting.splice(at, 1);
      settle(pending, this.options.cutOff(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.detach = () => signal.removeEventListener("abort", onAbort);
  }

  /** A flush at the end of this event-loop turn, when a statement may start. */
  private schedule(): void {
    if (this.scheduled || this.flights >= MAX_FLIGHTS || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.flights < MAX_FLIGHTS) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.flights++;
      for (const p of batch) this.busy.add(p.key);
      const sentAt = performance.now();
      this.send(batch).finally(() => {
        this.meanFlightMs += (performance.now() - sentAt - this.meanFlightMs) * FLIGHT_TIME_WEIGHT;
        this.flights--;
        for (const p of batch) this.busy.delete(p.key);
        this.schedule();
      });
    }
  }

  /**
   * The next batch, in run id order: waiting writes in arrival order whose
   * run has nothing in flight nor in this batch, and nothing of it waiting
   * ahead, up to the caps.
   */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const blocked = new Set(this.busy);
    let bytes = 2;
    const left: Pending[] = [];
    for (const p of this.waiting) {
      const fits =
        batch.length < MAX_BATCH_INPUTS &&
        (batch.length === 0 || bytes + p.bytes <= this.batchBytes);
      if (!blocked.has(p.key) && fits) {
        batch.push(p);
        bytes += p.bytes;
      } else left.push(p);
      blocked.add(p.key);
    }
    this.waiting.splice(0, this.waiting.length, ...left);
    return batch.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Runs `batch`: alone, the single statement; else one BATCH_PROGRESS. A
   * batch that fails for a reason of its own (not the database being
   * unavailable) is run again one write at a time, so each caller gets its
   * own answer.
   */
  private async send(batch: Pending[]): Promise<void> {
    const first = batch[0];
    if (batch.length === 1 && first !== undefined) return answer(first, first.alone());
    try {
      await this.options.run(BATCH_PROGRESS, [`[${batch.map((p) => p.item).join(",")}]`]);
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unavailable) {
        for (const p of batch) settle(p, error);
        return;
      }
      await Promise.all(batch.map((p) => answer(p, p.alone())));
      return;
    }
    for (const p of batch) settle(p, undefined);
  }
}

/** Answers `pending` with how `work` ends. */
async function answer(pending: Pending, work: Promise<void>): Promise<void> {
  try {
    await work;
    settle(pending, undefined);
  } catch (error) {
    settle(pending, error);
  }
}

/** Answers `pending`'s caller once: `error`, or success when undefined. */
function settle(pending: Pending, error: unknown): void {
  if (pending.settled) return;
  pending.settled = true;
  pending.detach();
  if (error === undefined) pending.resolve();
  else pending.reject(error);
}

/**
 * MYSQL_PROGRESS_BATCH for a store built in-process (the server reads it
 * through config.ts, which names a bad value): the writes that may wait for
 * a batch, 0 for no group commit (the bench's "before"); unset or not a
 * count: DEFAULT_MAX_WAITING.
 */
export function progressBatchLimit(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.MYSQL_PROGRESS_BATCH ?? Number.NaN);
  return Number.isInteger(value) && value >= 0 ? value : DEFAULT_MAX_WAITING;
}
