import { createFileRegistry, type DescFile, type FileRegistry, toBinary } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as pbReflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
import * as pbReflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";

// gRPC server reflection, written by hand: no maintained package implements
// it for Connect servers. @grpc/reflection plugs into a grpc-js Server only,
// connect-go has grpcreflect, and connect-es has an open request for it
// (connectrpc/connect-es#507). v1 and v1alpha are the same messages
// under two package names, so the logic below is written once against the
// shape both share, and each version only adapts the stream.

type ReflectionRequest =
  | pbReflectionV1.ServerReflectionRequest
  | pbReflectionV1alpha.ServerReflectionRequest;

/** The `message_response` oneof, as plain values both versions accept. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Lets grpcurl, `buf curl`, grpcui and Postman discover the API without a
 * copy of the protos: serves grpc.reflection.v1 and v1alpha (older clients
 * only speak v1alpha). `files` are the files whose services are advertised;
 * their dependencies are found through the descriptors themselves.
 */
export function reflectionRoutes(files: DescFile[]): (router: ConnectRouter) => void {
  const answer = createAnswerer([
    ...files,
    pbReflectionV1.file_grpc_reflection_v1_reflection,
    pbReflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
  ]);
  return (router) =>
    router
      .service(pbReflectionV1.ServerReflection, {
        serverReflectionInfo: (requests) => respond(requests, answer),
      })
      .service(pbReflectionV1alpha.ServerReflection, {
        serverReflectionInfo: (requests) => respond(requests, answer),
      });
}

async function* respond<R extends ReflectionRequest>(
  requests: AsyncIterable<R>,
  answer: (request: ReflectionRequest) => Answer,
) {
  for await (const request of requests) {
    yield { validHost: request.host, originalRequest: request, messageResponse: answer(request) };
  }
}

function createAnswerer(advertised: DescFile[]): (request: ReflectionRequest) => Answer {
  // Each file is resolved against its own imports, then all are merged, so
  // the registry holds every transitive dependency too.
  const registry = createFileRegistry(
    ...advertised.map((file) =>
      createFileRegistry(file.proto, (name) =>
        file.dependencies.find((dep) => dep.proto.name === name),
      ),
    ),
  );
  const services = [...new Set(advertised.flatMap((file) => file.services.map((s) => s.typeName)))];
  const symbols = indexSymbols(registry);

  const fileAnswer = (file: DescFile): Answer => ({
    case: "fileDescriptorResponse",
    value: {
      fileDescriptorProto: withDependencies(file).map((f) =>
        toBinary(FileDescriptorProtoSchema, f.proto),
      ),
    },
  });
  const notFound = (errorMessage: string): Answer => ({
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage },
  });

  return (request) => {
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: services.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const file = registry.getFile(messageRequest.value);
        return file ? fileAnswer(file) : notFound(`file "${messageRequest.value}" not found`);
      }
      case "fileContainingSymbol": {
        const file = symbols.get(messageRequest.value);
        return file ? fileAnswer(file) : notFound(`symbol "${messageRequest.value}" not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = messageRequest.value;
        const extendee = registry.getMessage(containingType);
        const extension = extendee && registry.getExtensionFor(extendee, extensionNumber);
        return extension
          ? fileAnswer(extension.file)
          : notFound(`extension ${extensionNumber} of "${containingType}" not found`);
      }
      case "allExtensionNumbersOfType": {
        const typeName = messageRequest.value;
        if (!registry.getMessage(typeName)) return notFound(`type "${typeName}" not found`);
        const numbers: number[] = [];
        for (const desc of registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === typeName) {
            numbers.push(desc.number);
          }
        }
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: typeName, extensionNumber: numbers.sort((a, b) => a - b) },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" },
        };
    }
  };
}

/**
 * Every fully-qualified name a client may ask about, with its file. Walks the
 * FileDescriptorProtos rather than the registry's types so that it holds
 * everything protoc would resolve: map entries, fields, oneofs, methods, and
 * enum values, which protobuf scopes as siblings of their enum
 * (`runstore.v1.RUN_STATUS_PENDING`).
 */
function indexSymbols(registry: FileRegistry): Map<string, DescFile> {
  const symbols = new Map<string, DescFile>();
  for (const file of registry.files) {
    const add = (scope: string, name: string) => {
      const fullName = scope ? `${scope}.${name}` : name;
      symbols.set(fullName, file);
      return fullName;
    };
    const addEnum = (scope: string, desc: EnumDescriptorProto) => {
      add(scope, desc.name);
      for (const value of desc.value) add(scope, value.name);
    };
    const addMessage = (scope: string, desc: DescriptorProto) => {
      const name = add(scope, desc.name);
      for (const child of [...desc.field, ...desc.oneofDecl, ...desc.extension]) {
        add(name, child.name);
      }
      for (const nested of desc.nestedType) addMessage(name, nested);
      for (const nested of desc.enumType) addEnum(name, nested);
    };
    const { package: pkg, messageType, enumType, extension, service } = file.proto;
    for (const desc of messageType) addMessage(pkg, desc);
    for (const desc of enumType) addEnum(pkg, desc);
    for (const desc of extension) add(pkg, desc.name);
    for (const desc of service) {
      const name = add(pkg, desc.name);
      for (const method of desc.method) add(name, method.name);
    }
  }
  return symbols;
}

/**
 * The file first, then everything it imports, transitively and once each:
 * the client gets the whole closure in one answer and needs no second round
 * trip.
 */
function withDependencies(file: DescFile): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  visit(file);
  return [...seen.values()];
}
