import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type RemoteProtocol,
  RemoteRunStore,
  type RemoteRunStoreOptions,
  type RunStore,
} from "@runstore/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { deferred } from "../support/deferred.js";
import { failureOf } from "../support/failure.js";
import { FlakyStore, unavailable } from "../support/flaky-store.js";

/**
 * The store method each part-1 RPC reaches (the drop-in lists walk pages, so
 * listPending and listInflight reach the stores' page methods).
 */
const STORE_METHODS = [
  "put",
  "get",
  "listByThread",
  "updateStatus",
  "delete",
  "updateModelName",
  "updateRunCompletion",
  "updateRunProgress",
  "listPendingPage",
  "listInflightPage",
  "aggregateTokensByThread",
] as const satisfies readonly (keyof RunStore)[];

type StoreMethod = (typeof STORE_METHODS)[number];

const RUN = "run-1";
const THREAD = "thread-1";

interface Harness {
  backend: FlakyStore<StoreMethod>;
  store: RemoteRunStore;
  server: RunningServer;
}

const opened: Harness[] = [];

/** A real server on port 0 over a FlakyStore holding one running run, and a client. */
async function open(options: Omit<RemoteRunStoreOptions, "baseUrl"> = {}): Promise<Harness> {
  const backend = new FlakyStore(STORE_METHODS);
  await backend.put(RUN, { threadId: THREAD, status: "running", modelName: "m1" });
  const server = await startServer({ store: backend, port: 0, onInternalError: () => {} });
  const store = new RemoteRunStore({ baseUrl: server.url, ...options });
  const harness = { backend, store, server };
  opened.push(harness);
  return harness;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const { store, server } of opened.splice(0)) {
    store.close();
    await server.close();
  }
});

/** One call of each RPC against the seeded run, and what it must return. */
const CALLS: Record<StoreMethod, [(s: RemoteRunStore) => Promise<unknown>, unknown]> = {
  put: [(s) => s.put("run-2", { threadId: THREAD }), undefined],
  get: [(s) => s.get(RUN).then((r) => [r?.runId, r?.status, r?.modelName]), [RUN, "running", "m1"]],
  listByThread: [(s) => s.listByThread(THREAD).then((rs) => rs.map((r) => r.runId)), [RUN]],
  updateStatus: [(s) => s.updateStatus(RUN, "running"), true],
  delete: [(s) => s.delete("missing-run"), undefined],
  updateModelName: [(s) => s.updateModelName(RUN, "m2"), undefined],
  updateRunCompletion: [(s) => s.updateRunCompletion(RUN, { status: "success" }), true],
  updateRunProgress: [(s) => s.updateRunProgress(RUN, { messageCount: 3 }), undefined],
  listPendingPage: [(s) => s.listPending().then((rs) => rs.map((r) => r.runId)), []],
  listInflightPage: [(s) => s.listInflight().then((rs) => rs.map((r) => r.runId)), [RUN]],
  aggregateTokensByThread: [
    (s) => s.aggregateTokensByThread(THREAD, { includeActive: true }).then((u) => u.totalRuns),
    1,
  ],
};

describe("RemoteRunStore retries UNAVAILABLE", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
    it(`${protocol}: two UNAVAILABLE answers, then the result on the third attempt`, async () => {
      const { backend, store } = await open({ protocol });
      backend.fail("get", 2);
      const run = await store.get(RUN);
      expect(backend.calls("get")).toBe(3);
      expect(run?.runId).toBe(RUN);
      expect(run?.threadId).toBe(THREAD);
      expect(run?.status).toBe("running");
    });
  }

  for (const method of STORE_METHODS) {
    it(`retries ${method} (every RPC is idempotent)`, async () => {
      const { backend, store } = await open();
      const before = backend.calls(method);
      backend.fail(method, 1);
      const [call, expected] = CALLS[method];
      expect(await call(store)).toEqual(expected);
      expect(backend.calls(method) - before).toBe(2);
    });
  }

  it("gives up after the default 4 attempts with the last UNAVAILABLE", async () => {
    const { backend, store } = await open();
    backend.fail("get", Number.POSITIVE_INFINITY);
    const error = await failureOf(store.get(RUN));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("database unavailable");
    expect(backend.calls("get")).toBe(4);
  });

  it("respects maxAttempts", async () => {
    const { backend, store } = await open({ retry: { maxAttempts: 2, initialBackoffMs: 1 } });
    backend.fail("listByThread", Number.POSITIVE_INFINITY);
    const error = await failureOf(store.listByThread(THREAD));
    expect(error.code).toBe(Code.Unavailable);
    expect(backend.calls("listByThread")).toBe(2);
  });

  it("succeeds on the last allowed attempt", async () => {
    const { backend, store } = await open({ retry: { maxAttempts: 3, initialBackoffMs: 1 } });
    backend.fail("updateStatus", 2);
    expect(await store.updateStatus(RUN, "success")).toBe(true);
    expect(backend.calls("updateStatus")).toBe(3);
  });

  it("retry: false makes exactly one attempt", async () => {
    const { backend, store } = await open({ retry: false });
    backend.fail("get", 1);
    const error = await failureOf(store.get(RUN));
    expect(error.code).toBe(Code.Unavailable);
    expect(backend.calls("get")).toBe(1);
  });

  it("retries a connection the server refused, through the transport's interceptors", async () => {
    const server = await startServer({ store: new MemoryRunStore(), port: 0 });
    await server.close();
    let attempts = 0;
    const count: Interceptor = (next) => (req) => {
      attempts++;
      return next(req);
    };
    const store = new RemoteRunStore({
      baseUrl: server.url,
      interceptors: [count],
      retry: { maxAttempts: 3, initialBackoffMs: 1 },
    });
    try {
      const error = await failureOf(store.get(RUN));
      expect(error.code).toBe(Code.Unavailable);
      expect(attempts).toBe(3);
    } finally {
      store.close();
    }
  });
});

describe("RemoteRunStore never retries other codes", () => {
  const cases: [string, StoreMethod, () => unknown, Code][] = [
    [
      "INVALID_ARGUMENT",
      "get",
      () => new ConnectError("bad", Code.InvalidArgument),
      Code.InvalidArgument,
    ],
    [
      "UNAUTHENTICATED",
      "get",
      () => new ConnectError("who?", Code.Unauthenticated),
      Code.Unauthenticated,
    ],
    [
      "PERMISSION_DENIED",
      "put",
      () => new ConnectError("no", Code.PermissionDenied),
      Code.PermissionDenied,
    ],
    [
      "RESOURCE_EXHAUSTED",
      "put",
      () => new ConnectError("full", Code.ResourceExhausted),
      Code.ResourceExhausted,
    ],
    ["ABORTED", "updateStatus", () => new ConnectError("conflict", Code.Aborted), Code.Aborted],
    [
      "DEADLINE_EXCEEDED",
      "get",
      () => new ConnectError("slow", Code.DeadlineExceeded),
      Code.DeadlineExceeded,
    ],
    ["INTERNAL (an unexpected error)", "get", () => new Error("boom"), Code.Internal],
  ];
  for (const [name, method, error, code] of cases) {
    it(`${name}: one attempt`, async () => {
      const { backend, store } = await open();
      const before = backend.calls(method);
      backend.fail(method, Number.POSITIVE_INFINITY, { error });
      const failure = await failureOf(CALLS[method][0](store));
      expect(failure.code).toBe(code);
      expect(backend.calls(method) - before).toBe(1);
    });
  }

  it("INVALID_ARGUMENT from the store's own validation: one attempt", async () => {
    const { backend, store } = await open();
    const error = await failureOf(store.get(""));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(backend.calls("get")).toBe(1);
  });
});

describe("the deadline bounds every attempt and sleep together", () => {
  // A store that is never available and a policy that would retry for
  // hours: the call ending with attempts left means the deadline ended it.
  const patient = { maxAttempts: 1_000_000, initialBackoffMs: 20, maxBackoffMs: 50 };

  it("per-call timeoutMs", async () => {
    const { backend, store } = await open({ retry: patient });
    backend.fail("get", Number.POSITIVE_INFINITY);
    const error = await failureOf(store.get(RUN, undefined, { timeoutMs: 300 }));
    expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(error.code);
    expect(backend.calls("get")).toBeGreaterThan(1);
    expect(backend.calls("get")).toBeLessThan(patient.maxAttempts);
  });

  it("the store's default timeoutMs", async () => {
    const { backend, store } = await open({ retry: patient, timeoutMs: 300 });
    backend.fail("listInflightPage", Number.POSITIVE_INFINITY);
    const error = await failureOf(store.listInflight());
    expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(error.code);
    expect(backend.calls("listInflightPage")).toBeGreaterThan(1);
    expect(backend.calls("listInflightPage")).toBeLessThan(patient.maxAttempts);
  });

  it("a per-call timeoutMs overrides the default", async () => {
    const { backend, store } = await open({
      retry: { maxAttempts: 3, initialBackoffMs: 1 },
      timeoutMs: 1,
    });
    backend.fail("get", 2);
    const run = await store.get(RUN, undefined, { timeoutMs: 10_000 });
    expect(run?.runId).toBe(RUN);
    expect(backend.calls("get")).toBe(3);
  });
});

describe("an aborted signal stops retrying", () => {
  it("during the backoff sleep: CANCELED at once, no further attempt", async () => {
    // Backoff bound 60 s and a fixed jitter of one half: the sleep is 30 s,
    // beyond the test's timeout, so only the abort can end the call. The
    // jitter is drawn just before the sleep starts: the abort follows it.
    const sleeping = deferred();
    vi.spyOn(Math, "random").mockImplementation(() => {
      sleeping.resolve();
      return 0.5;
    });
    const { backend, store } = await open({
      retry: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 },
    });
    const controller = new AbortController();
    backend.fail("get", Number.POSITIVE_INFINITY);
    const call = failureOf(store.get(RUN, undefined, { signal: controller.signal }));
    await sleeping.promise;
    controller.abort();
    const error = await call;
    expect(error.code).toBe(Code.Canceled);
    expect(backend.calls("get")).toBe(1);
  });

  it("during an attempt: CANCELED, no further attempt", async () => {
    const { backend, store } = await open();
    const controller = new AbortController();
    backend.fail("get", Number.POSITIVE_INFINITY, {
      error: () => {
        controller.abort();
        return unavailable();
      },
    });
    const error = await failureOf(store.get(RUN, undefined, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(backend.calls("get")).toBe(1);
  });

  it("already aborted: CANCELED without reaching the server", async () => {
    const { backend, store } = await open();
    const error = await failureOf(store.get(RUN, undefined, { signal: AbortSignal.abort() }));
    expect(error.code).toBe(Code.Canceled);
    expect(backend.calls("get")).toBe(0);
  });
});

describe("timeouts the wire can carry", () => {
  it("a fractional or huge timeoutMs is sent as whole milliseconds within 8 digits", async () => {
    for (const protocol of ["grpc", "connect"] as RemoteProtocol[]) {
      const { store } = await open({ protocol });
      expect((await store.get(RUN, {}, { timeoutMs: 1500.5 }))?.runId).toBe(RUN);
      expect((await store.get(RUN, {}, { timeoutMs: 1e12 }))?.runId).toBe(RUN);
    }
  });
});
