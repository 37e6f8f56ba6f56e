import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  type Admission,
  idempotencyConflict,
  type RemoteProtocol,
  RemoteRunStore,
  type RunStore,
  type ThreadOperationFields,
} from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { afterEach, describe, expect, it } from "vitest";
import { SINGLE_ATTEMPT_RPCS } from "../../client/src/retry.js";
import { MAX_INLINE_ROW_BYTES } from "../../src/bounded-details.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { failureOf } from "../support/failure.js";
import { FlakyStore } from "../support/flaky-store.js";

// Which part-2 calls RemoteRunStore retries on UNAVAILABLE. Four answer a
// repeat differently from their first attempt when that attempt applied
// (startRun false, claimNextRun a second run, finalizeIfNotCancelled
// finalized false, claimForTakeover false), so they are made once; every
// other call is retried. The backend counts each call that reached it.
// And the read-back of a referenced idempotency conflict: a row that no
// longer holds the key is not the conflict's row.

/** The part-2 methods these tests make fail. */
const METHODS = [
  "get",
  "createThreadOperation",
  "startRun",
  "renewLease",
  "requestCancel",
  "finalizeIfNotCancelled",
  "claimForTakeover",
  "listInflightWithExpiredLeasePage",
  "claimNextRun",
  "getManyByThread",
] as const satisfies readonly (keyof RunStore)[];

type Method = (typeof METHODS)[number];

/** The backend: the store behind the server, failing on request. */
type Backend = FlakyStore<Method>;

const THREAD = "thread-1";
const WORKER = "worker-1";
const LEASE = { durationMs: 60_000 };
const EXPIRED = { expiresAt: "2000-01-01T00:00:00.000000Z" };

interface Harness {
  backend: Backend;
  store: RemoteRunStore;
  server: RunningServer;
}

/** Every client and server a test opened, closed after it. */
const opened: { store: RemoteRunStore; server: RunningServer }[] = [];

/** A real server on port 0 over a FlakyStore, and a client allowed 4 quick attempts. */
async function open(protocol: RemoteProtocol = "grpc"): Promise<Harness> {
  const backend = new FlakyStore(METHODS);
  const server = await startServer({ store: backend, port: 0, onInternalError: () => {} });
  const store = new RemoteRunStore({
    baseUrl: server.url,
    protocol,
    retry: { maxAttempts: 4, initialBackoffMs: 1, maxBackoffMs: 1 },
  });
  const harness = { backend, store, server };
  opened.push(harness);
  return harness;
}

afterEach(async () => {
  for (const { store, server } of opened.splice(0)) {
    store.close();
    await server.close();
  }
});

/** Admits `runId` on its own thread, owned by WORKER, pending (or queued with "enqueue"). */
async function admit(
  backend: Backend,
  runId: string,
  options: { lease?: typeof LEASE | typeof EXPIRED; enqueue?: boolean } = {},
): Promise<void> {
  await backend.createThreadOperation(runId, {
    threadId: `${THREAD}-${runId}`,
    ownerWorkerId: WORKER,
    lease: options.lease ?? LEASE,
    multitaskStrategy: options.enqueue ? "enqueue" : "reject",
  });
}

/** The four calls made once, each against a row it would change, and the row's state after. */
const SINGLE_ATTEMPT: Record<
  "startRun" | "claimNextRun" | "finalizeIfNotCancelled" | "claimForTakeover",
  {
    seed: (backend: Backend) => Promise<void>;
    call: (store: RemoteRunStore) => Promise<unknown>;
    applied: [string, string];
  }
> = {
  startRun: {
    seed: (b) => admit(b, "run-1"),
    call: (s) => s.startRun("run-1"),
    applied: ["run-1", "running"],
  },
  claimNextRun: {
    seed: (b) => admit(b, "run-1", { enqueue: true }),
    call: (s) => s.claimNextRun(WORKER, LEASE),
    applied: ["run-1", "running"],
  },
  finalizeIfNotCancelled: {
    seed: async (b) => {
      await admit(b, "run-1");
      await b.startRun("run-1");
    },
    call: (s) => s.finalizeIfNotCancelled("run-1", "success"),
    applied: ["run-1", "success"],
  },
  claimForTakeover: {
    seed: async (b) => {
      await admit(b, "run-1", { lease: EXPIRED });
      await b.startRun("run-1");
    },
    call: (s) => s.claimForTakeover("run-1", { error: "taken over by worker-2", graceSeconds: 0 }),
    applied: ["run-1", "error"],
  },
};

describe("RemoteRunStore makes the four calls whose answer is not idempotent once", () => {
  for (const [method, { seed, call, applied }] of Object.entries(SINGLE_ATTEMPT)) {
    const name = method as keyof typeof SINGLE_ATTEMPT;

    for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
      it(`${protocol}: ${name} is attempted exactly once on UNAVAILABLE`, async () => {
        const { backend, store } = await open(protocol);
        await seed(backend);
        backend.fail(name, 1);
        const error = await failureOf(call(store));
        expect(error.code).toBe(Code.Unavailable);
        expect(error.rawMessage).toBe("database unavailable");
        expect(backend.calls(name)).toBe(1);
      });
    }

    it(`${name}: when the answer is lost the caller reads the outcome with get (retried)`, async () => {
      const { backend, store } = await open();
      await seed(backend);
      backend.fail(name, 1, { afterWork: true });
      backend.fail("get", 1);
      expect((await failureOf(call(store))).code).toBe(Code.Unavailable);
      expect(backend.calls(name)).toBe(1);
      const row = await store.get(applied[0]);
      expect(backend.calls("get")).toBe(2);
      expect([row?.runId, row?.status]).toEqual(applied);
    });
  }

  it("claimNextRun after a lost answer: the run it claimed is running under the caller's id", async () => {
    const { backend, store } = await open();
    await admit(backend, "run-1", { enqueue: true });
    await admit(backend, "run-2", { enqueue: true });
    backend.fail("claimNextRun", 1, { afterWork: true });
    expect((await failureOf(store.claimNextRun(WORKER, LEASE))).code).toBe(Code.Unavailable);
    expect(backend.calls("claimNextRun")).toBe(1);
    const [first, second] = [await store.get("run-1"), await store.get("run-2")];
    expect([first?.status, first?.ownerWorkerId, first?.queued]).toEqual([
      "running",
      WORKER,
      false,
    ]);
    expect([second?.status, second?.queued]).toEqual(["pending", true]);
  });
});

describe("RemoteRunStore retries the other part-2 calls on UNAVAILABLE", () => {
  const CALLS: Record<
    Exclude<Method, keyof typeof SINGLE_ATTEMPT>,
    [(s: RemoteRunStore) => Promise<unknown>, unknown]
  > = {
    get: [(s) => s.get("run-1").then((r) => r?.status), "pending"],
    createThreadOperation: [
      (s) =>
        s
          .createThreadOperation("run-2", { threadId: "thread-2", ownerWorkerId: WORKER })
          .then(({ run, takenOver }) => [run.runId, run.status, takenOver]),
      ["run-2", "pending", []],
    ],
    renewLease: [
      (s) => s.renewLease("run-1", WORKER, LEASE),
      { renewed: true, cancelAction: null },
    ],
    requestCancel: [(s) => s.requestCancel("run-1", "interrupt"), "interrupt"],
    // The drop-in list walks pages: its RPC reaches the page method.
    listInflightWithExpiredLeasePage: [(s) => s.listInflightWithExpiredLease(), []],
    getManyByThread: [
      (s) => s.getManyByThread(`${THREAD}-run-1`, ["run-1"]).then((m) => Object.keys(m)),
      ["run-1"],
    ],
  };

  for (const [method, [call, expected]] of Object.entries(CALLS)) {
    const name = method as keyof typeof CALLS;
    it(`retries ${name}`, async () => {
      const { backend, store } = await open();
      await admit(backend, "run-1");
      const before = backend.calls(name);
      backend.fail(name, 1);
      expect(await call(store)).toEqual(expected);
      expect(backend.calls(name) - before).toBe(2);
    });
  }
});

describe("SINGLE_ATTEMPT_RPCS", () => {
  it("is exactly the RPCs the proto gives no idempotency level", () => {
    const unmarked = pb.RunStoreService.methods
      .filter((m) => m.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN)
      .map((m) => m.localName);
    expect(unmarked.sort()).toEqual([...SINGLE_ATTEMPT_RPCS].sort());
    expect(unmarked.sort()).toEqual([
      "claimForTakeover",
      "claimNextRun",
      "finalizeIfNotCancelled",
      "startRun",
    ]);
  });
});

/**
 * A MemoryRunStore that, when an admission fails on an idempotency key,
 * moves the key holder to another key before the failure is answered: the
 * row a client reads back afterwards no longer holds the key.
 */
class RekeyingStore extends MemoryRunStore {
  override async createThreadOperation(
    runId: string,
    fields: ThreadOperationFields,
  ): Promise<Admission> {
    try {
      return await super.createThreadOperation(runId, fields);
    } catch (error) {
      const holder = idempotencyConflict(error);
      if (holder !== null) {
        await this.put(holder.runId, { threadId: holder.threadId, idempotencyKey: "key-moved" });
      }
      throw error;
    }
  }
}

describe("an idempotency conflict on a row too large for a trailer", () => {
  it("is answered without the row when the row read back no longer holds the key", async () => {
    const backend = new RekeyingStore();
    const server = await startServer({ store: backend, port: 0, onInternalError: () => {} });
    const store = new RemoteRunStore({ baseUrl: server.url });
    opened.push({ store, server });
    await store.createThreadOperation("run-big", {
      threadId: "thread-big",
      ownerWorkerId: WORKER,
      metadata: { blob: "x".repeat(2 * MAX_INLINE_ROW_BYTES) },
      idempotencyKey: "key-big",
    });
    const error = await failureOf(
      store.createThreadOperation("run-big-2", {
        threadId: "thread-big-2",
        ownerWorkerId: WORKER,
        idempotencyKey: "key-big",
      }),
    );
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.rawMessage).toBe("idempotency_key is held by run run-big");
    expect(error.details).toEqual([]);
    expect(idempotencyConflict(error)).toBeNull();
    expect((await store.get("run-big"))?.idempotencyKey).toBe("key-moved");
  });
});
