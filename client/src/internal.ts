/**
 * @private The code the RunStore server shares with the SDK: field rules,
 * timestamps, JSON values, proto ↔ record mapping and the runstore.v1
 * generated code. Not part of the SDK's API: it changes with any release, so
 * whoever imports it pins @runstore/client exactly (as connect-es asks of
 * its own private subpaths).
 */

export { idempotencyConflictError, runIdTakenError, threadConflictError } from "./conflicts.js";
export * from "./coordination.js";
export * as pb from "./gen/runstore/v1/run_store_pb.js";
export { eachItem } from "./history.js";
export * from "./history-convert.js";
export * from "./json-object.js";
export * from "./proto-convert.js";
export { backoffMs } from "./retry.js";
export { RETRY_PUSHBACK_HEADER, refusedBeforeRunning, retryDelayOf } from "./retry-info.js";
export { COUNTER_FIELDS } from "./run-store.js";
export * from "./timestamp.js";
export * from "./validation.js";
