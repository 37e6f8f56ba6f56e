import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { pb } from "@runstore/client/internal";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import * as pbReflectionV1 from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import * as pbReflectionV1alpha from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { HealthMonitor } from "../../src/health.js";
import { routes } from "../../src/routes.js";
import { RunStoreServiceImpl } from "../../src/service.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";

// Server reflection against a real HTTP/2 server on port 0: first through
// `buf curl`, an independent client written in Go, then through a raw
// bidi stream that checks every answer exactly.

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const execFileAsync = promisify(execFile);

const SERVICES = [
  "runstore.v1.RunStoreService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];
const RUN_STORE_FILES = [
  "runstore/v1/run_store.proto",
  "google/protobuf/duration.proto",
  "google/protobuf/struct.proto",
  "google/protobuf/timestamp.proto",
  "google/protobuf/wrappers.proto",
];

let server: http2.Http2Server;
let url: string;
const sessions = new Set<http2.ServerHttp2Session>();
/** Services the server was called on, in order: shows which reflection version a client used. */
const called: string[] = [];

beforeAll(async () => {
  server = http2.createServer(
    connectNodeAdapter({
      // The server's own route table: RunStoreService, health and reflection.
      routes: routes(new RunStoreServiceImpl(new MemoryRunStore()), idleHealth()),
      interceptors: [
        (next) => (request) => {
          called.push(request.service.typeName);
          return next(request);
        },
      ],
    }),
  );
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    for (const session of sessions) session.close();
  });
});

beforeEach(() => {
  called.length = 0;
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(BUF, ["curl", "--http2-prior-knowledge", ...args], {
    timeout: 15_000,
  });
  return stdout;
}

describe.each([
  { protocol: "grpc-v1", service: "grpc.reflection.v1.ServerReflection" },
  { protocol: "grpc-v1alpha", service: "grpc.reflection.v1alpha.ServerReflection" },
])("buf curl with --reflect-protocol $protocol", ({ protocol, service }) => {
  it("lists every advertised service", async () => {
    const stdout = await bufCurl("--reflect-protocol", protocol, "--list-services", url);
    expect(stdout.trim().split("\n")).toEqual([...SERVICES].sort());
    expect(new Set(called)).toEqual(new Set([service]));
  });

  it("lists every method", async () => {
    const stdout = await bufCurl("--reflect-protocol", protocol, "--list-methods", url);
    expect(stdout.trim().split("\n")).toEqual([
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/List",
      "grpc.health.v1.Health/Watch",
      "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      "runstore.v1.RunStoreService/AggregateTokensByThread",
      "runstore.v1.RunStoreService/ClaimForTakeover",
      "runstore.v1.RunStoreService/ClaimNextRun",
      "runstore.v1.RunStoreService/CreateThreadOperation",
      "runstore.v1.RunStoreService/Delete",
      "runstore.v1.RunStoreService/DeleteThread",
      "runstore.v1.RunStoreService/FinalizeIfNotCancelled",
      "runstore.v1.RunStoreService/Get",
      "runstore.v1.RunStoreService/GetManyByThread",
      "runstore.v1.RunStoreService/GetRunStats",
      "runstore.v1.RunStoreService/ListByThread",
      "runstore.v1.RunStoreService/ListEditRegenerateRuns",
      "runstore.v1.RunStoreService/ListInflight",
      "runstore.v1.RunStoreService/ListInflightWithExpiredLease",
      "runstore.v1.RunStoreService/ListPending",
      "runstore.v1.RunStoreService/ListSuccessfulRegenerateSources",
      "runstore.v1.RunStoreService/ListThreads",
      "runstore.v1.RunStoreService/Put",
      "runstore.v1.RunStoreService/RenewLease",
      "runstore.v1.RunStoreService/RequestCancel",
      "runstore.v1.RunStoreService/SearchRuns",
      "runstore.v1.RunStoreService/StartRun",
      "runstore.v1.RunStoreService/UpdateModelName",
      "runstore.v1.RunStoreService/UpdateRunCompletion",
      "runstore.v1.RunStoreService/UpdateRunProgress",
      "runstore.v1.RunStoreService/UpdateStatus",
      "runstore.v1.RunStoreService/WatchRuns",
    ]);
    expect(new Set(called)).toEqual(new Set([service]));
  });

  it("calls Put then Get with no --schema, over Connect and over gRPC", async () => {
    const runId = `run-${protocol}`;
    const put = await bufCurl(
      "--reflect-protocol",
      protocol,
      "-d",
      JSON.stringify({ run_id: runId, thread_id: "t1" }),
      `${url}/runstore.v1.RunStoreService/Put`,
    );
    expect(JSON.parse(put)).toEqual({});
    const get = await bufCurl(
      "--reflect-protocol",
      protocol,
      "--protocol",
      "grpc",
      "-d",
      JSON.stringify({ run_id: runId }),
      `${url}/runstore.v1.RunStoreService/Get`,
    );
    const { run } = JSON.parse(get);
    expect(run).toEqual({
      runId,
      threadId: "t1",
      status: "RUN_STATUS_PENDING",
      multitaskStrategy: "MULTITASK_STRATEGY_REJECT",
      operationKind: "OPERATION_KIND_RUN",
      metadata: {},
      kwargs: {},
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      updatedAt: run.createdAt,
    });
    expect(new Set(called)).toEqual(new Set([service, "runstore.v1.RunStoreService"]));
  });

  it("takes our NOT_FOUND to mean no such service: exit code 1, one clear line", async () => {
    const error = await bufCurl(
      "--reflect-protocol",
      protocol,
      `${url}/runstore.v1.NoSuchService/Get`,
    ).then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr).toBe(
      'Failure: failed to find service named "runstore.v1.NoSuchService" in schema\n',
    );
  });
});

/** A request both versions accept: the two schemas differ only in package name. */
type RequestInit = {
  host?: string;
  messageRequest:
    | {
        case:
          | "fileByFilename"
          | "fileContainingSymbol"
          | "allExtensionNumbersOfType"
          | "listServices";
        value: string;
      }
    | {
        case: "fileContainingExtension";
        value: { containingType: string; extensionNumber: number };
      }
    | { case: undefined; value?: undefined };
};
type Response =
  | pbReflectionV1.ServerReflectionResponse
  | pbReflectionV1alpha.ServerReflectionResponse;

describe.each([
  { version: "v1" as const, typeName: "grpc.reflection.v1.ServerReflectionResponse" },
  { version: "v1alpha" as const, typeName: "grpc.reflection.v1alpha.ServerReflectionResponse" },
])("ServerReflectionInfo $version over gRPC", ({ version, typeName }) => {
  function stream(requests: AsyncIterable<RequestInit>): AsyncIterable<Response> {
    const transport = createGrpcTransport({ baseUrl: url });
    return version === "v1"
      ? createClient(pbReflectionV1.ServerReflection, transport).serverReflectionInfo(requests)
      : createClient(pbReflectionV1alpha.ServerReflection, transport).serverReflectionInfo(
          requests,
        );
  }

  async function ask(...requests: RequestInit[]): Promise<Response[]> {
    const responses: Response[] = [];
    for await (const response of stream(toAsync(requests))) responses.push(response);
    expect(responses.map((r) => r.$typeName)).toEqual(requests.map(() => typeName));
    return responses;
  }

  async function askOne(request: RequestInit): Promise<Response> {
    const [response] = await ask(request);
    if (!response) throw new Error("no response");
    return response;
  }

  function files(response: Response): FileDescriptorProto[] {
    if (response.messageResponse.case !== "fileDescriptorResponse") {
      throw new Error(`expected files, got ${response.messageResponse.case}`);
    }
    return response.messageResponse.value.fileDescriptorProto.map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
  }

  const symbol = (value: string): RequestInit => ({
    host: "reflection.test",
    messageRequest: { case: "fileContainingSymbol", value },
  });

  it("list_services names every advertised service and both reflection services", async () => {
    const response = await askOne({
      host: "reflection.test",
      messageRequest: { case: "listServices", value: "*" },
    });
    expect(response.validHost).toBe("reflection.test");
    expect(response.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
    expect(response.messageResponse.case).toBe("listServicesResponse");
    expect(
      response.messageResponse.case === "listServicesResponse" &&
        response.messageResponse.value.service.map((s) => s.name),
    ).toEqual(SERVICES);
  });

  it("file_containing_symbol answers the file and all its dependencies in one response", async () => {
    const response = await askOne(symbol("runstore.v1.RunStoreService"));
    expect(response.validHost).toBe("reflection.test");
    expect(response.originalRequest?.messageRequest).toEqual({
      case: "fileContainingSymbol",
      value: "runstore.v1.RunStoreService",
    });
    const decoded = files(response);
    expect(decoded.map((f) => f.name)).toEqual(RUN_STORE_FILES);
    const [runStore] = decoded;
    expect(runStore?.package).toBe("runstore.v1");
    expect(runStore?.dependency).toEqual(RUN_STORE_FILES.slice(1));
    expect(runStore?.service.map((s) => s.name)).toEqual(["RunStoreService"]);
    // Self-contained: the answer alone rebuilds the service and its types.
    const registry = createFileRegistry(decoded[0] as FileDescriptorProto, (name) =>
      decoded.find((f) => f.name === name),
    );
    const service = registry.getService("runstore.v1.RunStoreService");
    expect(service?.methods.map((m) => m.name)).toEqual(
      pb.RunStoreService.methods.map((m) => m.name),
    );
    expect(registry.getMessage("runstore.v1.Run")?.field.createdAt?.message?.typeName).toBe(
      "google.protobuf.Timestamp",
    );
  });

  it.each([
    ["runstore.v1.RunStoreService.Get", RUN_STORE_FILES],
    ["runstore.v1.PutRequest", RUN_STORE_FILES],
    ["runstore.v1.PutRequest.run_id", RUN_STORE_FILES],
    ["runstore.v1.RunStatus", RUN_STORE_FILES],
    ["runstore.v1.RUN_STATUS_PENDING", RUN_STORE_FILES],
    ["google.protobuf.Timestamp", ["google/protobuf/timestamp.proto"]],
    ["google.protobuf.Struct.FieldsEntry", ["google/protobuf/struct.proto"]],
    ["grpc.health.v1.HealthCheckResponse.ServingStatus", ["grpc/health/v1/health.proto"]],
    ["grpc.health.v1.HealthCheckResponse.SERVING", ["grpc/health/v1/health.proto"]],
    ["grpc.reflection.v1.ServerReflection", ["grpc/reflection/v1/reflection.proto"]],
    [
      "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
      ["grpc/reflection/v1alpha/reflection.proto"],
    ],
  ])("file_containing_symbol %s", async (name, expected) => {
    expect(files(await askOne(symbol(name))).map((f) => f.name)).toEqual(expected);
  });

  it("file_by_filename answers the file and its dependencies", async () => {
    const response = await askOne({
      messageRequest: { case: "fileByFilename", value: "runstore/v1/run_store.proto" },
    });
    expect(response.validHost).toBe("");
    expect(files(response).map((f) => f.name)).toEqual(RUN_STORE_FILES);
    const wrappers = await askOne({
      messageRequest: { case: "fileByFilename", value: "google/protobuf/wrappers.proto" },
    });
    expect(files(wrappers).map((f) => f.name)).toEqual(["google/protobuf/wrappers.proto"]);
  });

  it.each<[string, RequestInit["messageRequest"], string]>([
    [
      "an unknown symbol",
      { case: "fileContainingSymbol", value: "runstore.v1.Nope" },
      'symbol "runstore.v1.Nope" not found',
    ],
    [
      "an unknown file",
      { case: "fileByFilename", value: "runstore/v1/nope.proto" },
      'file "runstore/v1/nope.proto" not found',
    ],
    [
      "an extension (none are declared)",
      {
        case: "fileContainingExtension",
        value: { containingType: "runstore.v1.Run", extensionNumber: 100 },
      },
      'extension 100 of "runstore.v1.Run" not found',
    ],
    [
      "extension numbers of an unknown type",
      { case: "allExtensionNumbersOfType", value: "runstore.v1.Nope" },
      'type "runstore.v1.Nope" not found',
    ],
  ])("%s gets a NOT_FOUND error response", async (_, messageRequest, errorMessage) => {
    const response = await askOne({ host: "h", messageRequest });
    expect(response.validHost).toBe("h");
    expect(response.originalRequest?.messageRequest.case).toBe(messageRequest.case);
    expect(response.messageResponse.case).toBe("errorResponse");
    expect(response.messageResponse.value).toMatchObject({
      errorCode: Code.NotFound,
      errorMessage,
    });
  });

  it("an empty request gets an INVALID_ARGUMENT error response", async () => {
    const response = await askOne({ messageRequest: { case: undefined } });
    expect(response.messageResponse.case).toBe("errorResponse");
    expect(response.messageResponse.value).toMatchObject({
      errorCode: Code.InvalidArgument,
      errorMessage: "empty reflection request",
    });
  });

  it("all_extension_numbers_of_type answers an empty list for a known message", async () => {
    const response = await askOne({
      messageRequest: { case: "allExtensionNumbersOfType", value: "runstore.v1.Run" },
    });
    expect(response.messageResponse.case).toBe("allExtensionNumbersResponse");
    expect(response.messageResponse.value).toMatchObject({
      baseTypeName: "runstore.v1.Run",
      extensionNumber: [],
    });
  });

  it("answers several requests on one stream in order, an error not ending the stream", async () => {
    const responses = await ask(
      { messageRequest: { case: "listServices", value: "" } },
      symbol("runstore.v1.Nope"),
      symbol("grpc.health.v1.Health"),
      { messageRequest: { case: "fileByFilename", value: "google/protobuf/struct.proto" } },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "runstore.v1.Run" } },
    );
    expect(responses.map((r) => r.messageResponse.case)).toEqual([
      "listServicesResponse",
      "errorResponse",
      "fileDescriptorResponse",
      "fileDescriptorResponse",
      "allExtensionNumbersResponse",
    ]);
    expect(responses.map((r) => r.originalRequest?.messageRequest.value)).toEqual([
      "",
      "runstore.v1.Nope",
      "grpc.health.v1.Health",
      "google/protobuf/struct.proto",
      "runstore.v1.Run",
    ]);
    expect(files(responses[2] as Response).map((f) => f.name)).toEqual([
      "grpc/health/v1/health.proto",
    ]);
  });

  it("answers each request before the client sends the next (a real conversation)", async () => {
    const names = ["runstore.v1.Run", "grpc.health.v1.Health", "google.protobuf.Timestamp"];
    let answered = () => {};
    async function* requests() {
      for (const name of names) {
        const next = new Promise<void>((resolve) => {
          answered = resolve;
        });
        yield symbol(name);
        await next;
      }
    }
    const firstFiles: string[] = [];
    for await (const response of stream(requests())) {
      firstFiles.push(files(response)[0]?.name ?? "");
      answered();
    }
    expect(firstFiles).toEqual([
      "runstore/v1/run_store.proto",
      "grpc/health/v1/health.proto",
      "google/protobuf/timestamp.proto",
    ]);
  });
});

it("leaves the routes it is mounted beside untouched", async () => {
  const client = createClient(pb.RunStoreService, createGrpcTransport({ baseUrl: url }));
  await client.put({ runId: "beside", threadId: "t" });
  expect((await client.get({ runId: "beside" })).run?.threadId).toBe("t");
  expect(called).toEqual(["runstore.v1.RunStoreService", "runstore.v1.RunStoreService"]);
});

/** Health that is never probed: reflection only needs the service to be there. */
function idleHealth(): HealthMonitor {
  return new HealthMonitor(async () => {}, 60_000);
}

async function* toAsync<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}
