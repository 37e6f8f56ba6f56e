/**
 * @runstore/client: the RunStore interface and its record types, and
 * RemoteRunStore, which implements it over the RunStoreService wire protocol
 * (gRPC, gRPC-Web or Connect). The behaviour of every method is
 * docs/contract.md in the RunStore repository.
 *
 * Everything else in this package is internal to RunStore (the subpath
 * `@runstore/client/internal`, shared with the server) and may change in any
 * release.
 */

export { Code, ConnectError } from "@connectrpc/connect";
export { idempotencyConflict, type ThreadConflictInfo, threadConflict } from "./conflicts.js";
export type { FailoverOptions } from "./endpoints.js";
export { isTransientError } from "./errors.js";
export { RunStoreService } from "./gen/runstore/v1/run_store_pb.js";
export {
  type DayStats,
  type DeleteThreadOptions,
  type MetadataFilter,
  type Page,
  type PageRequest,
  type RunSearch,
  type RunStats,
  type RunStatsOptions,
  THREAD_STATUSES,
  type ThreadStatus,
  type ThreadSummary,
  type TokenTotals,
} from "./history.js";
export {
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_REQUEST_BYTES,
  type RemoteCallOptions,
  type RemoteProtocol,
  RemoteRunStore,
  type RemoteRunStoreOptions,
  type RemoteTlsOptions,
} from "./remote-run-store.js";
export {
  type AttemptOptions,
  DEFAULT_RETRY_POLICY,
  type RetryOptions,
  type RetryPolicy,
  retryPolicy,
  withRetry,
} from "./retry.js";
export {
  type Admission,
  CANCEL_ACTIONS,
  type CancelAction,
  type ExpiredLeaseOptions,
  type Lease,
  type LeaseRenewal,
  type ListByThreadOptions,
  type ModelTokenUsage,
  type ModelUsage,
  MULTITASK_STRATEGIES,
  type MultitaskStrategy,
  OPERATION_KINDS,
  type OperationKind,
  type OwnerOptions,
  type PutFields,
  type RecoveryOptions,
  RUN_STATUSES,
  type RunCompletion,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  type RunStore,
  type StatusFinalization,
  type TakeoverOptions,
  type ThreadOperationFields,
  type ThreadTokenUsage,
  type TimestampInput,
  type TokenCounters,
  type UpdateStatusOptions,
} from "./run-store.js";
export { keepByteOrderMarks } from "./text-encoding.js";
export { nowTimestamp } from "./timestamp.js";
export {
  RUN_CHANGE_KINDS,
  type RunChangeEvent,
  type RunChangeKind,
  type RunWatchEvent,
  type WatchRunsFilter,
} from "./watch.js";
