import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
// proto-loader's own protobuf runtime: what a grpc-js caller decodes error details with.
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// An independent client, as a polyglot caller would write it: @grpc/grpc-js
// with the .proto loaded at run time, none of our generated code.

const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
type RawClient = grpc.Client & Record<string, (req: unknown, cb: Callback) => void>;

function loadClient(url: string): RawClient {
  const definition = protoLoader.loadSync("runstore/v1/run_store.proto", {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    runstore: {
      v1: { RunStoreService: new (target: string, creds: grpc.ChannelCredentials) => RawClient };
    };
  };
  return new loaded.runstore.v1.RunStoreService(
    url.replace("http://", ""),
    grpc.credentials.createInsecure(),
  );
}

/** run_store.proto and google.rpc.Status, as a grpc-js caller would decode status details. */
const DETAIL_TYPES = protobuf.loadSync(`${PROTO_DIR}/runstore/v1/run_store.proto`);
const STATUS = protobuf.Root.fromJSON({
  nested: {
    Status: {
      fields: {
        code: { type: "int32", id: 1 },
        message: { type: "string", id: 2 },
        details: { rule: "repeated", type: "Any", id: 3 },
      },
    },
    Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
  },
}).lookupType("Status");

/**
 * The google.rpc.Status of a failed call (grpc-status-details-bin): its
 * message verbatim (grpc-js leaves %3A and the like of grpc-message
 * undecoded) and its typed details as [type name, message].
 */
function statusOf(error: grpc.ServiceError): {
  message: string;
  details: [string, Record<string, unknown>][];
} {
  const [bin] = error.metadata.get("grpc-status-details-bin") as Buffer[];
  expect(bin, "grpc-status-details-bin").toBeDefined();
  const status = STATUS.toObject(STATUS.decode(bin as Buffer)) as {
    code: number;
    message: string;
    details?: { type_url: string; value: Uint8Array }[];
  };
  expect(status.code).toBe(error.code);
  const details = (status.details ?? []).map(
    ({ type_url, value }): [string, Record<string, unknown>] => {
      const name = type_url.replace("type.googleapis.com/", "");
      const type = DETAIL_TYPES.lookupType(name);
      return [name, type.toObject(type.decode(value), { longs: String, enums: String })];
    },
  );
  return { message: status.message, details };
}

let server: RunningServer;
let client: RawClient;

function call(method: string, request: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    client[method]?.(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function failure(method: string, request: unknown): Promise<grpc.ServiceError> {
  const error = await call(method, request).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  expect(error, `${method} should fail`).toBeDefined();
  return error as grpc.ServiceError;
}

beforeAll(async () => {
  server = await startServer({ store: new MemoryRunStore(), port: 0 });
  client = loadClient(server.url);
});

afterAll(async () => {
  client.close();
  await server.close();
});

describe("@grpc/grpc-js client with the .proto loaded at run time", () => {
  it("Put and Get: optional-field presence survives the wire (unset ≠ empty string)", async () => {
    await call("Put", {
      run_id: "r1",
      thread_id: "t1",
      assistant_id: "",
      user_id: "alice",
      status: "RUN_STATUS_RUNNING",
      multitask_strategy: "MULTITASK_STRATEGY_ENQUEUE",
      // protobufjs spells the well-known Struct types in camelCase even with keepCase.
      metadata: { fields: { source: { stringValue: "grpc-js" }, n: { numberValue: 2 } } },
      created_at: { seconds: "1767225600", nanos: 123456789 },
    });
    const { run } = (await call("Get", { run_id: "r1" })) as { run: Record<string, unknown> };
    expect(run).toMatchObject({
      run_id: "r1",
      thread_id: "t1",
      assistant_id: "",
      _assistant_id: "assistant_id",
      user_id: "alice",
      status: "RUN_STATUS_RUNNING",
      multitask_strategy: "MULTITASK_STRATEGY_ENQUEUE",
      metadata: {
        fields: {
          source: { stringValue: "grpc-js", kind: "stringValue" },
          n: { numberValue: 2, kind: "numberValue" },
        },
      },
      created_at: { seconds: "1767225600", nanos: 123456000 },
    });
    for (const absent of ["model_name", "error", "last_ai_message", "first_human_message"]) {
      expect(run[absent], absent).toBeUndefined();
      expect(run[`_${absent}`], `_${absent}`).toBeUndefined();
    }
  });

  it("Get: an unset run for a missing or invisible run", async () => {
    expect((await call("Get", { run_id: "missing" })).run).toBeUndefined();
    expect((await call("Get", { run_id: "r1", user_id: "bob" })).run).toBeUndefined();
  });

  it("UpdateStatus and UpdateRunCompletion: BoolValue true and false", async () => {
    const t = await call("UpdateStatus", {
      run_id: "r1",
      status: "RUN_STATUS_RUNNING",
      error: "e1",
    });
    expect(t.updated).toEqual({ value: true });
    const f = await call("UpdateStatus", { run_id: "missing", status: "RUN_STATUS_RUNNING" });
    // A set BoolValue whose value is false: the wrapper is present, its field at default.
    expect(f.updated).toEqual({});
    expect(
      (await call("UpdateRunCompletion", { run_id: "missing", status: "RUN_STATUS_SUCCESS" }))
        .updated,
    ).toEqual({});
  });

  it("BoolValue's third state: unset when the store cannot tell", async () => {
    /** A store that, like DeerFlow's base class, cannot tell whether an update matched. */
    class CannotTell extends MemoryRunStore {
      override async updateStatus(): Promise<boolean> {
        return null as unknown as boolean;
      }
    }
    const other = await startServer({ store: new CannotTell(), port: 0 });
    const otherClient = loadClient(other.url);
    try {
      const response = await new Promise<Record<string, unknown>>((resolve, reject) =>
        otherClient.UpdateStatus?.({ run_id: "r1", status: "RUN_STATUS_RUNNING" }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
      expect(response.updated).toBeUndefined();
      expect("updated" in response).toBe(false);
    } finally {
      otherClient.close();
      await other.close();
    }
  });

  it("UpdateRunProgress: an optional int64 of 0 is present and written", async () => {
    await call("UpdateRunProgress", { run_id: "r1", total_tokens: "7", llm_call_count: "2" });
    await call("UpdateRunProgress", {
      run_id: "r1",
      total_tokens: "0",
      last_ai_message: "partial",
    });
    const { run } = (await call("Get", { run_id: "r1" })) as { run: Record<string, unknown> };
    expect(run.llm_call_count).toBe("2");
    expect(run.total_tokens).toBeUndefined(); // 0 is the proto3 default: not sent
    expect(run.last_ai_message).toBe("partial");
  });

  it("UpdateModelName, ListByThread, ListPending, ListInflight, Delete", async () => {
    await call("UpdateModelName", { run_id: "r1", model_name: "  gpt-4o  " });
    await call("Put", { run_id: "r2", thread_id: "t1", created_at: { seconds: "1767225601" } });
    const listed = await call("ListByThread", { thread_id: "t1", limit: 10 });
    expect(
      (listed.runs as { run_id: string; model_name?: string }[]).map((r) => [
        r.run_id,
        r.model_name,
      ]),
    ).toEqual([
      ["r2", undefined],
      ["r1", "gpt-4o"],
    ]);
    const before = { seconds: "1767225601" };
    expect(
      ((await call("ListPending", { before })).runs as { run_id: string }[]).map((r) => r.run_id),
    ).toEqual(["r2"]);
    expect(
      ((await call("ListInflight", { before })).runs as { run_id: string }[]).map((r) => r.run_id),
    ).toEqual(["r1", "r2"]);
    await call("Delete", { run_id: "r2", user_id: "alice" });
    await call("Delete", { run_id: "r2" });
    expect((await call("Get", { run_id: "r2" })).run).toBeUndefined();
  });

  it("UpdateRunCompletion and AggregateTokensByThread: map and nested message", async () => {
    await call("UpdateRunCompletion", {
      run_id: "r1",
      status: "RUN_STATUS_SUCCESS",
      total_tokens: "100",
      total_input_tokens: "60",
      total_output_tokens: "40",
      lead_agent_tokens: "90",
      subagent_tokens: "10",
    });
    const usage = await call("AggregateTokensByThread", { thread_id: "t1" });
    expect(usage).toEqual({
      total_tokens: "100",
      total_input_tokens: "60",
      total_output_tokens: "40",
      total_runs: "1",
      by_model: { "gpt-4o": { tokens: "100", runs: "1" } },
      by_caller: { lead_agent: "90", subagent: "10" },
    });
  });

  it("part 2: admission, renewal and cancel round-trip; Lease's oneof and enum names survive", async () => {
    const admitted = await call("CreateThreadOperation", {
      run_id: "c1",
      thread_id: "tc",
      owner_worker_id: "w1",
      lease: { duration: { seconds: "60" } },
      idempotency_key: "kc",
    });
    expect(admitted.run).toMatchObject({
      run_id: "c1",
      status: "RUN_STATUS_PENDING",
      operation_kind: "OPERATION_KIND_RUN",
      owner_worker_id: "w1",
      idempotency_key: "kc",
    });
    expect((admitted.run as { lease_expires_at?: unknown }).lease_expires_at).toBeDefined();
    expect(admitted.taken_over).toBeUndefined(); // empty repeated, defaults: false
    expect(await call("StartRun", { run_id: "c1" })).toEqual({ started: true });
    expect(
      await call("RequestCancel", { run_id: "c1", action: "CANCEL_ACTION_INTERRUPT" }),
    ).toEqual({ cancel_action: "CANCEL_ACTION_INTERRUPT" });
    expect(
      await call("RenewLease", {
        run_id: "c1",
        owner_worker_id: "w1",
        lease: { expires_at: { seconds: "4102444800" } },
      }),
    ).toEqual({ renewed: true, cancel_action: "CANCEL_ACTION_INTERRUPT" });
    expect(
      await call("FinalizeIfNotCancelled", { run_id: "c1", status: "RUN_STATUS_SUCCESS" }),
    ).toEqual({
      cancel_action: "CANCEL_ACTION_INTERRUPT",
    });
  });

  it("part 2: conflicts carry typed details in grpc-status-details-bin", async () => {
    await call("CreateThreadOperation", {
      run_id: "c2",
      thread_id: "td",
      owner_worker_id: "w1",
      idempotency_key: "kd",
    });
    const busy = await failure("CreateThreadOperation", {
      run_id: "c3",
      thread_id: "td",
      owner_worker_id: "w2",
    });
    expect(busy.code).toBe(grpc.status.ABORTED);
    expect(statusOf(busy)).toEqual({
      message: "thread_id td is busy: run c2 is active",
      details: [["runstore.v1.ThreadConflict", { threadId: "td", conflictingRunId: "c2" }]],
    });

    const held = await failure("CreateThreadOperation", {
      run_id: "c4",
      thread_id: "te",
      owner_worker_id: "w2",
      idempotency_key: "kd",
    });
    expect(held.code).toBe(grpc.status.ALREADY_EXISTS);
    const [[name, detail] = ["", {}]] = statusOf(held).details;
    expect(name).toBe("runstore.v1.IdempotencyConflict");
    expect(detail.existing).toMatchObject({
      runId: "c2",
      threadId: "td",
      status: "RUN_STATUS_PENDING",
      ownerWorkerId: "w1",
      idempotencyKey: "kd",
    });

    const taken = await failure("CreateThreadOperation", {
      run_id: "c2",
      thread_id: "td",
      owner_worker_id: "w2",
    });
    expect(taken.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(taken.metadata.get("grpc-status-details-bin")).toEqual([]);
  });

  it("bad input is INVALID_ARGUMENT (code 3) naming the field", async () => {
    const cases: [string, unknown, string][] = [
      ["Put", { run_id: "", thread_id: "t1" }, "run_id"],
      ["Put", { run_id: "r9", thread_id: "x".repeat(65) }, "thread_id"],
      ["Get", { run_id: "r1", user_id: "" }, "user_id"],
      ["ListByThread", { thread_id: "t1", limit: -1 }, "limit"],
      ["UpdateStatus", { run_id: "r1" }, "status"],
      [
        "UpdateRunCompletion",
        { run_id: "r1", status: "RUN_STATUS_SUCCESS", total_tokens: "-1" },
        "total_tokens",
      ],
      ["ListPending", { before: { seconds: "-99999999999" } }, "before"],
      ["AggregateTokensByThread", { thread_id: "" }, "thread_id"],
      ["RenewLease", { run_id: "r1", owner_worker_id: "w1" }, "lease"],
      ["RequestCancel", { run_id: "r1" }, "action"],
      ["ClaimForTakeover", { run_id: "r1", grace_seconds: "-1" }, "grace_seconds"],
    ];
    for (const [method, request, field] of cases) {
      const error = await failure(method, request);
      expect(error.code, `${method} ${field}`).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.details).toContain(field);
    }
    expect((await call("Get", { run_id: "r9" })).run).toBeUndefined();
  });
});
