/**
 * @runstore/client: the RunStore interface and record types, RemoteRunStore,
 * the helpers every store shares, and the generated code: runstore.v1 as
 * `pb` (its enum names match the record types' names), and the standard gRPC
 * health and reflection services as `pbHealth`, `pbReflectionV1(alpha)`.
 */

export * from "./errors.js";

import "./text-encoding.js";

export * as pbHealth from "./gen/grpc/health/v1/health_pb.js";
export * as pbReflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
export * as pbReflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";
export * as pb from "./gen/runstore/v1/run_store_pb.js";
export { RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
export * from "./grpc-framing.js";
export * from "./json-object.js";
export * from "./proto-convert.js";
export * from "./remote-run-store.js";
export * from "./retry.js";
export * from "./run-store.js";
export * from "./timestamp.js";
export * from "./validation.js";
