/**
 * @runstore/client: the RunStore interface and record types, RemoteRunStore,
 * the helpers every store shares, and the generated runstore.v1 code (whole,
 * as `pb`, since its enum names match the record types' names).
 */
export * as pb from "./gen/runstore/v1/run_store_pb.js";
export { RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
export * from "./json-object.js";
export * from "./proto-convert.js";
export * from "./remote-run-store.js";
export * from "./run-store.js";
export * from "./timestamp.js";
export * from "./validation.js";
