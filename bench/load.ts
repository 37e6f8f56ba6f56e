import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  RemoteRunStore,
  type RunStore,
  RunStoreService,
} from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { MemoryRunStore } from "../src/stores/memory-run-store.js";
import { createMysqlPool } from "../src/stores/mysql-pool.js";
import { MysqlRunStore } from "../src/stores/mysql-run-store.js";

// One load-generator process: runs one workload at one concurrency against
// one target for a fixed time and prints one JSON line of figures. The
// orchestrator (bench/run.ts) starts it, so load never runs in the server.

/** What the orchestrator asks for. */
export interface LoadSpec {
  /** "remote" (RemoteRunStore, gRPC), "grpc-js" (independent client), "memory" / "mysql" (in-process). */
  client: "remote" | "grpc-js" | "memory" | "mysql";
  /** RemoteRunStore's gRPC transport: "sdk" (what it builds itself, the default) or one to compare. */
  clientTransport?: ClientTransport;
  /**
   * Server address for remote / grpc-js (remote: several comma-separated,
   * one a replica, all handed to RemoteRunStore); database URL for mysql.
   */
  target: string;
  workload: "get" | "put" | "lifecycle" | "aggregate";
  concurrency: number;
  durationMs: number;
  /** In-process MysqlRunStore only: its pool, the size the server is given. */
  mysqlPoolSize?: number;
  /**
   * In-process MysqlRunStore only: false turns a Galera node's causality
   * checks off (wsrep_sync_wait = 0 after the store's own session setup), so
   * bench/galera.ts can show what they cost. The store never runs so.
   */
  causalReads?: boolean;
  /** Distinguishes ids between rounds sharing one server. */
  tag: string;
}

/** The gRPC transports RemoteRunStore can be measured over (`--client-transport`). */
export type ClientTransport = "sdk" | "connect";

/** What one run measured. */
export interface LoadResult {
  ops: number;
  rpcs: number;
  errors: number;
  seconds: number;
  /** CPU this load process used while measuring (user + system), microseconds. */
  cpuUs: number;
  /** Every operation's latency, in whole microseconds. */
  latenciesUs: number[];
}

/** The slice of RunStore the workloads use, over raw grpc-js for the independent client. */
type Ops = Pick<
  RunStore,
  | "put"
  | "get"
  | "updateStatus"
  | "updateRunProgress"
  | "updateRunCompletion"
  | "listByThread"
  | "aggregateTokensByThread"
>;

function grpcJsOps(target: string): Ops {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const call = (name: string, init: object): Promise<unknown> => {
    const method = RunStoreService.methods.find((m) => m.name === name);
    if (method === undefined) throw new Error(name);
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        `/${RunStoreService.typeName}/${name}`,
        (value: object) => Buffer.from(toBinary(input, create(input, value as never))),
        (bytes: Buffer) => fromBinary(output, bytes),
        init,
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
  };
  return {
    put: async (runId, fields) => {
      await call("Put", {
        runId,
        threadId: fields.threadId,
        status: pb.RunStatus.PENDING,
        metadata: fields.metadata ?? {},
      });
    },
    get: async (runId) => ((await call("Get", { runId })) as { run?: unknown }).run as never,
    updateStatus: async (runId) => {
      await call("UpdateStatus", { runId, status: pb.RunStatus.RUNNING });
      return true;
    },
    updateRunProgress: async (runId, p) => {
      await call("UpdateRunProgress", {
        runId,
        totalTokens: BigInt(p.totalTokens ?? 0),
        lastAiMessage: p.lastAiMessage ?? undefined,
      });
    },
    updateRunCompletion: async (runId, c) => {
      await call("UpdateRunCompletion", {
        runId,
        status: pb.RunStatus.SUCCESS,
        totalTokens: BigInt(c.totalTokens ?? 0),
      });
      return true;
    },
    listByThread: async (threadId, o) =>
      ((await call("ListByThread", { threadId, limit: o?.limit })) as { runs: never[] }).runs,
    aggregateTokensByThread: async (threadId) =>
      (await call("AggregateTokensByThread", { threadId })) as never,
  };
}

async function openOps(spec: LoadSpec): Promise<{ ops: Ops; close(): Promise<void> }> {
  switch (spec.client) {
    case "remote": {
      const kind = spec.clientTransport ?? "sdk";
      if (kind === "sdk") {
        const urls = spec.target.split(",");
        const store = new RemoteRunStore({
          baseUrl: urls.length === 1 ? spec.target : urls,
          retry: false,
        });
        return { ops: store, close: async () => store.close() };
      }
      // "connect": connect-node's gRPC transport for every call, on a session
      // manager built as RemoteRunStore builds its own.
      const sessionManager = new Http2SessionManager(spec.target, {
        pingIntervalMs: DEFAULT_KEEPALIVE_INTERVAL_MS,
      });
      const store = new RemoteRunStore({
        transport: createGrpcTransport({ baseUrl: spec.target, sessionManager }),
        retry: false,
      });
      return {
        ops: store,
        close: async () => {
          store.close();
          sessionManager.abort();
        },
      };
    }
    case "grpc-js":
      return { ops: grpcJsOps(spec.target.replace(/^http:\/\//, "")), close: async () => {} };
    case "memory":
      return { ops: new MemoryRunStore(), close: async () => {} };
    case "mysql": {
      const options = { url: spec.target, poolSize: spec.mysqlPoolSize ?? 64 };
      const store =
        spec.causalReads === false ? uncheckedStore(options) : MysqlRunStore.open(options);
      return { ops: store, close: () => store.close() };
    }
  }
}

/** MysqlRunStore.open's store with wsrep_sync_wait = 0 set after its session setup. */
function uncheckedStore(options: { url: string; poolSize: number }): MysqlRunStore {
  const pool = createMysqlPool(options);
  pool.on("connection", (connection) => {
    // Unknown on MySQL: the error leaves the connection as it was.
    connection.query("SET SESSION wsrep_sync_wait = 0", () => {});
  });
  return new MysqlRunStore(
    pool.promise(),
    {},
    createMysqlPool(options, { connectionLimit: 1 }).promise(),
  );
}

const METADATA = { source: "bench", labels: { team: "agents", tier: "prod" }, attempt: 1 };

/** Seeds what a workload reads, then returns one operation and how many RPCs it makes. */
async function prepare(
  ops: Ops,
  spec: LoadSpec,
): Promise<{ op: (i: number, worker: number) => Promise<void>; rpcs: number }> {
  const tag = spec.tag;
  switch (spec.workload) {
    case "get": {
      const ids = Array.from({ length: 1000 }, (_, i) => `${tag}-g${i}`);
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(
          ids
            .slice(i, i + 50)
            .map((id) =>
              ops.put(id, { threadId: `${tag}-gt${id.length % 10}`, metadata: METADATA }),
            ),
        );
      }
      return {
        rpcs: 1,
        op: async (i) => {
          await ops.get(ids[(i * 7919) % ids.length] as string);
        },
      };
    }
    case "put":
      return {
        rpcs: 1,
        op: async (i, w) => {
          await ops.put(`${tag}-p${w}-${i}`, { threadId: `${tag}-pt${w}`, metadata: METADATA });
        },
      };
    case "lifecycle":
      return {
        rpcs: 10,
        op: async (i, w) => {
          const runId = `${tag}-l${w}-${i}`;
          const threadId = `${tag}-lt${w}`;
          await ops.put(runId, { threadId, metadata: METADATA });
          await ops.updateStatus(runId, "running");
          for (let k = 1; k <= 5; k++) {
            await ops.updateRunProgress(runId, {
              totalTokens: k * 100,
              lastAiMessage: `step ${k}`,
            });
          }
          await ops.updateRunCompletion(runId, { status: "success", totalTokens: 600 });
          await ops.get(runId);
          await ops.listByThread(threadId, { limit: 10 });
        },
      };
    case "aggregate": {
      const threadId = `${tag}-agg`;
      for (let i = 0; i < 100; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, async (_, k) => {
            const runId = `${tag}-a${i + k}`;
            await ops.put(runId, { threadId, metadata: METADATA });
            await ops.updateRunCompletion(runId, { status: "success", totalTokens: 100 + k });
          }),
        );
      }
      return {
        rpcs: 1,
        op: async () => {
          await ops.aggregateTokensByThread(threadId);
        },
      };
    }
  }
}

/**
 * Runs the spec: seeds, then `ready()` resolves the start (the orchestrator
 * starts every load process at once, after all have seeded), then
 * closed-loop workers each wait for their previous operation.
 */
export async function runLoad(
  spec: LoadSpec,
  ready: () => Promise<void> = async () => {},
): Promise<LoadResult> {
  const { ops, close } = await openOps(spec);
  try {
    const { op, rpcs } = await prepare(ops, spec);
    await ready();
    const cpuBefore = process.cpuUsage();
    const latencies: number[] = [];
    let errors = 0;
    const began = performance.now();
    const end = began + spec.durationMs;
    await Promise.all(
      Array.from({ length: spec.concurrency }, async (_, worker) => {
        for (let i = 0; performance.now() < end; i++) {
          const t = performance.now();
          try {
            await op(i, worker);
            latencies.push(Math.round((performance.now() - t) * 1000));
          } catch {
            errors++;
          }
        }
      }),
    );
    const cpu = process.cpuUsage(cpuBefore);
    return {
      cpuUs: cpu.user + cpu.system,
      ops: latencies.length,
      rpcs: latencies.length * rpcs,
      errors,
      seconds: (performance.now() - began) / 1000,
      latenciesUs: latencies,
    };
  } finally {
    await close();
  }
}

// As a process: the spec is argv[2]; prints "ready" once seeded, starts on
// the first line of stdin, prints the result as one JSON line.
if (process.argv[2] !== undefined) {
  const spec = JSON.parse(process.argv[2]) as LoadSpec;
  const go = () =>
    new Promise<void>((resolve) => {
      process.stdout.write("ready\n");
      process.stdin.once("data", () => resolve());
    });
  runLoad(spec, go).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
