import type {
  Admission,
  PutFields,
  RunRecord,
  RunStore,
  ThreadOperationFields,
} from "@runstore/client";
import { createConnection } from "mysql2/promise";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import type { TestDatabase } from "./mysql.js";

/**
 * A backend whose whole content can be captured, so a fault test can prove
 * that a rejected call changed nothing at all (not just the rows it named).
 */
export interface SnapshotBackend {
  label: string;
  store: RunStore;
  /** Every stored row, in a form that differs whenever any stored value (updated_at included) does. */
  snapshot(): Promise<unknown[]>;
  /** What a test needs to know of each row of a snapshot, in the snapshot's order. */
  facts(snapshot: unknown[]): RowFacts[];
  /** Removes every run. */
  clear(): Promise<void>;
  /** The storage itself still answers (MySQL: the runs table exists and can be counted). */
  intact(): Promise<boolean>;
  close(): Promise<void>;
}

/** One stored row as the history reads and DeleteThread see it. */
export interface RowFacts {
  threadId: string;
  userId: string | null;
  /** pending or running (any kind). */
  active: boolean;
  inputTokens: bigint;
  outputTokens: bigint;
  totalTokens: bigint;
}

const ACTIVE = new Set(["pending", "running"]);

/** A MemoryRunStore that remembers every run id put() or createThreadOperation() was asked for: only they create rows. */
class TrackedMemoryStore extends MemoryRunStore {
  readonly ids = new Set<string>();

  override async put(runId: string, fields: PutFields): Promise<void> {
    this.ids.add(runId);
    return super.put(runId, fields);
  }

  override async createThreadOperation(
    runId: string,
    fields: ThreadOperationFields,
  ): Promise<Admission> {
    this.ids.add(runId);
    return super.createThreadOperation(runId, fields);
  }
}

/** The in-memory backend; its snapshot reads every id ever put, in-process. */
export function memoryBackend(): SnapshotBackend {
  const store = new TrackedMemoryStore();
  const everyRow = async () => {
    const rows: RunRecord[] = [];
    for (const id of [...store.ids].sort()) {
      const row = await store.get(id).catch(() => null);
      if (row !== null) rows.push(row);
    }
    return rows;
  };
  return {
    label: "MemoryRunStore",
    store,
    snapshot: everyRow,
    facts: (snapshot) =>
      (snapshot as RunRecord[]).map((row) => ({
        threadId: row.threadId,
        userId: row.userId,
        active: ACTIVE.has(row.status),
        inputTokens: BigInt(row.totalInputTokens),
        outputTokens: BigInt(row.totalOutputTokens),
        totalTokens: BigInt(row.totalTokens),
      })),
    async clear() {
      for (const id of store.ids) await store.delete(id).catch(() => undefined);
      store.ids.clear();
    },
    intact: async () => true,
    close: async () => {},
  };
}

// Long text and JSON columns are hashed, so a snapshot stays small while
// still changing with every byte; NULL hashes to NULL, so null ≠ "".
const SNAPSHOT_SQL =
  "SELECT run_id, thread_id, SHA2(assistant_id, 256) AS assistant_id, user_id, model_name, " +
  "status, multitask_strategy, SHA2(metadata, 256) AS metadata, SHA2(kwargs, 256) AS kwargs, " +
  "SHA2(error, 256) AS error, created_at, updated_at, total_input_tokens, total_output_tokens, " +
  "total_tokens, llm_call_count, lead_agent_tokens, subagent_tokens, middleware_tokens, " +
  "message_count, SHA2(last_ai_message, 256) AS last_ai_message, " +
  "SHA2(first_human_message, 256) AS first_human_message, operation_kind, stop_reason, " +
  "owner_worker_id, lease_expires_at, cancel_action, cancel_requested_at, idempotency_key, " +
  "follow_up_to_run_id, SHA2(token_usage_by_model, 256) AS token_usage_by_model, queued, " +
  "holds_slot FROM runs ORDER BY run_id";

/** The columns of a snapshot row that RowFacts reads (BIGINT counters arrive as strings). */
interface SnapshotRow {
  thread_id: Buffer | string;
  user_id: Buffer | string | null;
  status: string;
  total_input_tokens: string | number;
  total_output_tokens: string | number;
  total_tokens: string | number;
}

/** An id column (binary: it arrives as bytes) as text. */
const text = (value: Buffer | string): string =>
  typeof value === "string" ? value : value.toString("utf8");

/** The MySQL backend on a test database; its snapshot reads the runs table directly. */
export async function mysqlBackend(db: TestDatabase): Promise<SnapshotBackend> {
  const store = db.openStore();
  const sql = await createConnection({
    uri: db.url,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  return {
    label: "MysqlRunStore",
    store,
    async snapshot() {
      const [rows] = await sql.query(SNAPSHOT_SQL);
      return rows as SnapshotRow[];
    },
    facts: (snapshot) =>
      (snapshot as SnapshotRow[]).map((row) => ({
        threadId: text(row.thread_id),
        userId: row.user_id === null ? null : text(row.user_id),
        active: ACTIVE.has(row.status),
        inputTokens: BigInt(row.total_input_tokens),
        outputTokens: BigInt(row.total_output_tokens),
        totalTokens: BigInt(row.total_tokens),
      })),
    clear: () => db.truncate(),
    async intact() {
      const [tables] = await sql.query("SHOW TABLES");
      const names = (tables as Record<string, string>[]).map((row) => Object.values(row)[0]);
      if (!names.includes("runs")) return false;
      const [count] = await sql.query("SELECT COUNT(*) AS n FROM runs");
      return Number((count as { n: string }[])[0]?.n) >= 0;
    },
    async close() {
      await sql.end();
    },
  };
}
