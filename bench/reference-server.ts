import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { RunStoreService } from "@runstore/client";
import { RunStoreServiceImpl } from "../src/service.js";
import { MemoryRunStore } from "../src/stores/memory-run-store.js";

// The transport peer of the benchmark: the same RunStoreServiceImpl over a
// MemoryRunStore, served by @grpc/grpc-js instead of connect-node, so the
// two servers differ only in their HTTP/2 + gRPC stack. Prints its port.

const impl = new RunStoreServiceImpl(new MemoryRunStore());
const server = new grpc.Server();
const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
const handlers: grpc.UntypedServiceImplementation = {};

for (const method of RunStoreService.methods) {
  const input: DescMessage = method.input;
  const output: DescMessage = method.output;
  definition[method.name] = {
    path: `/${RunStoreService.typeName}/${method.name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: unknown) => Buffer.from(toBinary(input, value as never)),
    requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
    responseSerialize: (value: unknown) => Buffer.from(toBinary(output, value as never)),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
  };
  const fn = (impl as unknown as Record<string, (req: unknown) => Promise<object>>)[
    method.localName
  ];
  handlers[method.name] = (
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) => {
    fn?.call(impl, call.request).then(
      (init) => callback(null, create(output, init as never)),
      (error: { code?: number; rawMessage?: string; message?: string }) =>
        callback({
          code: error.code ?? grpc.status.INTERNAL,
          details: error.rawMessage ?? error.message,
        }),
    );
  };
}

server.addService(definition as grpc.ServiceDefinition, handlers);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening ${port}`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
