from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CANCEL_ACTION_INTERRUPT: CancelAction
CANCEL_ACTION_ROLLBACK: CancelAction
CANCEL_ACTION_UNSPECIFIED: CancelAction
DESCRIPTOR: _descriptor.FileDescriptor
MULTITASK_STRATEGY_ENQUEUE: MultitaskStrategy
MULTITASK_STRATEGY_INTERRUPT: MultitaskStrategy
MULTITASK_STRATEGY_REJECT: MultitaskStrategy
MULTITASK_STRATEGY_ROLLBACK: MultitaskStrategy
MULTITASK_STRATEGY_UNSPECIFIED: MultitaskStrategy
OPERATION_KIND_ARTIFACT_WRITE: OperationKind
OPERATION_KIND_CHECKPOINT_WRITE: OperationKind
OPERATION_KIND_DELETE: OperationKind
OPERATION_KIND_RUN: OperationKind
OPERATION_KIND_UNSPECIFIED: OperationKind
RUN_CHANGE_KIND_CREATED: RunChangeKind
RUN_CHANGE_KIND_DELETED: RunChangeKind
RUN_CHANGE_KIND_UNSPECIFIED: RunChangeKind
RUN_CHANGE_KIND_UPDATED: RunChangeKind
RUN_STATUS_ERROR: RunStatus
RUN_STATUS_INTERRUPTED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCESS: RunStatus
RUN_STATUS_TIMEOUT: RunStatus
RUN_STATUS_UNSPECIFIED: RunStatus
THREAD_STATUS_BUSY: ThreadStatus
THREAD_STATUS_ERROR: ThreadStatus
THREAD_STATUS_IDLE: ThreadStatus
THREAD_STATUS_INTERRUPTED: ThreadStatus
THREAD_STATUS_UNSPECIFIED: ThreadStatus

class AggregateTokensByThreadRequest(_message.Message):
    __slots__ = ["include_active", "thread_id"]
    INCLUDE_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    include_active: bool
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ..., include_active: bool = ...) -> None: ...

class AggregateTokensByThreadResponse(_message.Message):
    __slots__ = ["by_caller", "by_model", "total_input_tokens", "total_output_tokens", "total_runs", "total_tokens"]
    class ByModelEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModelTokenUsage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModelTokenUsage, _Mapping]] = ...) -> None: ...
    BY_CALLER_FIELD_NUMBER: _ClassVar[int]
    BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RUNS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    by_caller: CallerTokenUsage
    by_model: _containers.MessageMap[str, ModelTokenUsage]
    total_input_tokens: int
    total_output_tokens: int
    total_runs: int
    total_tokens: int
    def __init__(self, total_tokens: _Optional[int] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_runs: _Optional[int] = ..., by_model: _Optional[_Mapping[str, ModelTokenUsage]] = ..., by_caller: _Optional[_Union[CallerTokenUsage, _Mapping]] = ...) -> None: ...

class CallerTokenUsage(_message.Message):
    __slots__ = ["lead_agent", "middleware", "subagent"]
    LEAD_AGENT_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_FIELD_NUMBER: _ClassVar[int]
    lead_agent: int
    middleware: int
    subagent: int
    def __init__(self, lead_agent: _Optional[int] = ..., subagent: _Optional[int] = ..., middleware: _Optional[int] = ...) -> None: ...

class ClaimForTakeoverRequest(_message.Message):
    __slots__ = ["error", "grace_seconds", "run_id", "stop_reason"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    error: str
    grace_seconds: int
    run_id: str
    stop_reason: str
    def __init__(self, run_id: _Optional[str] = ..., grace_seconds: _Optional[int] = ..., error: _Optional[str] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class ClaimForTakeoverResponse(_message.Message):
    __slots__ = ["claimed"]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    claimed: bool
    def __init__(self, claimed: bool = ...) -> None: ...

class ClaimNextRunRequest(_message.Message):
    __slots__ = ["lease", "owner_worker_id", "thread_id"]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    lease: Lease
    owner_worker_id: str
    thread_id: str
    def __init__(self, owner_worker_id: _Optional[str] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ..., thread_id: _Optional[str] = ...) -> None: ...

class ClaimNextRunResponse(_message.Message):
    __slots__ = ["run"]
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class CreateThreadOperationRequest(_message.Message):
    __slots__ = ["assistant_id", "created_at", "follow_up_to_run_id", "grace_seconds", "idempotency_key", "kwargs", "lease", "metadata", "model_name", "multitask_strategy", "operation_kind", "owner_worker_id", "run_id", "thread_id", "user_id"]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_TO_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    created_at: _timestamp_pb2.Timestamp
    follow_up_to_run_id: str
    grace_seconds: int
    idempotency_key: str
    kwargs: _struct_pb2.Struct
    lease: Lease
    metadata: _struct_pb2.Struct
    model_name: str
    multitask_strategy: MultitaskStrategy
    operation_kind: OperationKind
    owner_worker_id: str
    run_id: str
    thread_id: str
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., owner_worker_id: _Optional[str] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ..., operation_kind: _Optional[_Union[OperationKind, str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., assistant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model_name: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kwargs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., grace_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., follow_up_to_run_id: _Optional[str] = ...) -> None: ...

class CreateThreadOperationResponse(_message.Message):
    __slots__ = ["run", "taken_over"]
    RUN_FIELD_NUMBER: _ClassVar[int]
    TAKEN_OVER_FIELD_NUMBER: _ClassVar[int]
    run: Run
    taken_over: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., taken_over: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class DayStats(_message.Message):
    __slots__ = ["by_model", "date", "tokens"]
    class ByModelEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: TokenTotals
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[TokenTotals, _Mapping]] = ...) -> None: ...
    BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    by_model: _containers.MessageMap[str, TokenTotals]
    date: str
    tokens: TokenTotals
    def __init__(self, date: _Optional[str] = ..., tokens: _Optional[_Union[TokenTotals, _Mapping]] = ..., by_model: _Optional[_Mapping[str, TokenTotals]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ["run_id", "user_id"]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteThreadRequest(_message.Message):
    __slots__ = ["force", "thread_id", "user_id"]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    force: bool
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ..., force: bool = ...) -> None: ...

class DeleteThreadResponse(_message.Message):
    __slots__ = ["deleted_runs"]
    DELETED_RUNS_FIELD_NUMBER: _ClassVar[int]
    deleted_runs: int
    def __init__(self, deleted_runs: _Optional[int] = ...) -> None: ...

class FinalizeIfNotCancelledRequest(_message.Message):
    __slots__ = ["error", "run_id", "status", "stop_reason"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    error: str
    run_id: str
    status: RunStatus
    stop_reason: str
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., error: _Optional[str] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class FinalizeIfNotCancelledResponse(_message.Message):
    __slots__ = ["cancel_action", "finalized"]
    CANCEL_ACTION_FIELD_NUMBER: _ClassVar[int]
    FINALIZED_FIELD_NUMBER: _ClassVar[int]
    cancel_action: CancelAction
    finalized: bool
    def __init__(self, finalized: bool = ..., cancel_action: _Optional[_Union[CancelAction, str]] = ...) -> None: ...

class GetManyByThreadRequest(_message.Message):
    __slots__ = ["run_ids", "thread_id", "user_id"]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., run_ids: _Optional[_Iterable[str]] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetManyByThreadResponse(_message.Message):
    __slots__ = ["runs"]
    class RunsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Run
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.MessageMap[str, Run]
    def __init__(self, runs: _Optional[_Mapping[str, Run]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ["run_id", "user_id"]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ["run"]
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class GetRunStatsRequest(_message.Message):
    __slots__ = ["created_after", "created_before", "user_id", "utc_offset"]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UTC_OFFSET_FIELD_NUMBER: _ClassVar[int]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    user_id: str
    utc_offset: str
    def __init__(self, user_id: _Optional[str] = ..., created_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., utc_offset: _Optional[str] = ...) -> None: ...

class GetRunStatsResponse(_message.Message):
    __slots__ = ["active_runs", "by_model", "by_status", "days", "failed_runs", "tokens", "total_runs"]
    class ByModelEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: TokenTotals
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[TokenTotals, _Mapping]] = ...) -> None: ...
    ACTIVE_RUNS_FIELD_NUMBER: _ClassVar[int]
    BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    FAILED_RUNS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RUNS_FIELD_NUMBER: _ClassVar[int]
    active_runs: int
    by_model: _containers.MessageMap[str, TokenTotals]
    by_status: _containers.RepeatedCompositeFieldContainer[StatusCount]
    days: _containers.RepeatedCompositeFieldContainer[DayStats]
    failed_runs: int
    tokens: TokenTotals
    total_runs: int
    def __init__(self, total_runs: _Optional[int] = ..., by_status: _Optional[_Iterable[_Union[StatusCount, _Mapping]]] = ..., active_runs: _Optional[int] = ..., failed_runs: _Optional[int] = ..., tokens: _Optional[_Union[TokenTotals, _Mapping]] = ..., by_model: _Optional[_Mapping[str, TokenTotals]] = ..., days: _Optional[_Iterable[_Union[DayStats, _Mapping]]] = ...) -> None: ...

class IdempotencyConflict(_message.Message):
    __slots__ = ["existing"]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    existing: Run
    def __init__(self, existing: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ["duration", "expires_at"]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    duration: _duration_pb2.Duration
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListByThreadRequest(_message.Message):
    __slots__ = ["limit", "page_size", "page_token", "thread_id", "user_id"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_size: int
    page_token: str
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListByThreadResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "runs"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class ListEditRegenerateRunsRequest(_message.Message):
    __slots__ = ["thread_id", "user_id"]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListEditRegenerateRunsResponse(_message.Message):
    __slots__ = ["runs"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class ListInflightRequest(_message.Message):
    __slots__ = ["before", "page_size", "page_token"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInflightResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "runs"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class ListInflightWithExpiredLeaseRequest(_message.Message):
    __slots__ = ["before", "grace_seconds", "page_size", "page_token"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    grace_seconds: int
    page_size: int
    page_token: str
    def __init__(self, before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., grace_seconds: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInflightWithExpiredLeaseResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "runs"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class ListPendingRequest(_message.Message):
    __slots__ = ["before", "page_size", "page_token"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPendingResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "runs"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class ListSuccessfulRegenerateSourcesRequest(_message.Message):
    __slots__ = ["thread_id", "user_id"]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListSuccessfulRegenerateSourcesResponse(_message.Message):
    __slots__ = ["run_ids"]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListThreadsRequest(_message.Message):
    __slots__ = ["page_size", "page_token", "user_id"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    user_id: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListThreadsResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "threads"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    threads: _containers.RepeatedCompositeFieldContainer[ThreadSummary]
    def __init__(self, threads: _Optional[_Iterable[_Union[ThreadSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class ModelTokenUsage(_message.Message):
    __slots__ = ["runs", "tokens"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    runs: int
    tokens: int
    def __init__(self, tokens: _Optional[int] = ..., runs: _Optional[int] = ...) -> None: ...

class ModelUsage(_message.Message):
    __slots__ = ["cache_read_tokens", "input_tokens", "output_tokens", "total_tokens"]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    cache_read_tokens: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ...) -> None: ...

class ModelUsageMap(_message.Message):
    __slots__ = ["models"]
    class ModelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModelUsage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModelUsage, _Mapping]] = ...) -> None: ...
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.MessageMap[str, ModelUsage]
    def __init__(self, models: _Optional[_Mapping[str, ModelUsage]] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ["assistant_id", "created_at", "error", "follow_up_to_run_id", "idempotency_key", "kwargs", "lease_expires_at", "metadata", "model_name", "multitask_strategy", "operation_kind", "owner_worker_id", "run_id", "status", "stop_reason", "thread_id", "user_id"]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_TO_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    created_at: _timestamp_pb2.Timestamp
    error: str
    follow_up_to_run_id: str
    idempotency_key: str
    kwargs: _struct_pb2.Struct
    lease_expires_at: _timestamp_pb2.Timestamp
    metadata: _struct_pb2.Struct
    model_name: str
    multitask_strategy: MultitaskStrategy
    operation_kind: OperationKind
    owner_worker_id: str
    run_id: str
    status: RunStatus
    stop_reason: str
    thread_id: str
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kwargs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., operation_kind: _Optional[_Union[OperationKind, str]] = ..., stop_reason: _Optional[str] = ..., owner_worker_id: _Optional[str] = ..., lease_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., follow_up_to_run_id: _Optional[str] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ["lease", "owner_worker_id", "run_id"]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    lease: Lease
    owner_worker_id: str
    run_id: str
    def __init__(self, run_id: _Optional[str] = ..., owner_worker_id: _Optional[str] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ...) -> None: ...

class RenewLeaseResponse(_message.Message):
    __slots__ = ["cancel_action", "renewed"]
    CANCEL_ACTION_FIELD_NUMBER: _ClassVar[int]
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    cancel_action: CancelAction
    renewed: bool
    def __init__(self, renewed: bool = ..., cancel_action: _Optional[_Union[CancelAction, str]] = ...) -> None: ...

class RequestCancelRequest(_message.Message):
    __slots__ = ["action", "run_id"]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    action: CancelAction
    run_id: str
    def __init__(self, run_id: _Optional[str] = ..., action: _Optional[_Union[CancelAction, str]] = ...) -> None: ...

class RequestCancelResponse(_message.Message):
    __slots__ = ["cancel_action"]
    CANCEL_ACTION_FIELD_NUMBER: _ClassVar[int]
    cancel_action: CancelAction
    def __init__(self, cancel_action: _Optional[_Union[CancelAction, str]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ["assistant_id", "cancel_action", "cancel_requested_at", "created_at", "error", "first_human_message", "follow_up_to_run_id", "idempotency_key", "kwargs", "last_ai_message", "lead_agent_tokens", "lease_expires_at", "llm_call_count", "message_count", "metadata", "middleware_tokens", "model_name", "multitask_strategy", "operation_kind", "owner_worker_id", "queued", "run_id", "status", "stop_reason", "subagent_tokens", "thread_id", "token_usage_by_model", "total_input_tokens", "total_output_tokens", "total_tokens", "updated_at", "user_id"]
    class TokenUsageByModelEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModelUsage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModelUsage, _Mapping]] = ...) -> None: ...
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ACTION_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_TO_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_USAGE_BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    cancel_action: CancelAction
    cancel_requested_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    error: str
    first_human_message: str
    follow_up_to_run_id: str
    idempotency_key: str
    kwargs: _struct_pb2.Struct
    last_ai_message: str
    lead_agent_tokens: int
    lease_expires_at: _timestamp_pb2.Timestamp
    llm_call_count: int
    message_count: int
    metadata: _struct_pb2.Struct
    middleware_tokens: int
    model_name: str
    multitask_strategy: MultitaskStrategy
    operation_kind: OperationKind
    owner_worker_id: str
    queued: bool
    run_id: str
    status: RunStatus
    stop_reason: str
    subagent_tokens: int
    thread_id: str
    token_usage_by_model: _containers.MessageMap[str, ModelUsage]
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    updated_at: _timestamp_pb2.Timestamp
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kwargs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ..., operation_kind: _Optional[_Union[OperationKind, str]] = ..., stop_reason: _Optional[str] = ..., owner_worker_id: _Optional[str] = ..., lease_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_action: _Optional[_Union[CancelAction, str]] = ..., cancel_requested_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., follow_up_to_run_id: _Optional[str] = ..., token_usage_by_model: _Optional[_Mapping[str, ModelUsage]] = ..., queued: bool = ...) -> None: ...

class RunChange(_message.Message):
    __slots__ = ["changed_at", "kind", "left_filter", "run", "sequence"]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEFT_FILTER_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    changed_at: _timestamp_pb2.Timestamp
    kind: RunChangeKind
    left_filter: bool
    run: Run
    sequence: int
    def __init__(self, kind: _Optional[_Union[RunChangeKind, str]] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., sequence: _Optional[int] = ..., changed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., left_filter: bool = ...) -> None: ...

class SearchRunsRequest(_message.Message):
    __slots__ = ["assistant_id", "created_after", "created_before", "metadata", "model_name", "operation_kinds", "page_size", "page_token", "statuses", "thread_id", "user_id"]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_KINDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    metadata: _struct_pb2.Struct
    model_name: str
    operation_kinds: _containers.RepeatedScalarFieldContainer[OperationKind]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[RunStatus]
    thread_id: str
    user_id: str
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[RunStatus, str]]] = ..., assistant_id: _Optional[str] = ..., model_name: _Optional[str] = ..., operation_kinds: _Optional[_Iterable[_Union[OperationKind, str]]] = ..., created_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchRunsResponse(_message.Message):
    __slots__ = ["has_more", "next_page_token", "runs"]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    has_more: bool
    next_page_token: str
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., has_more: bool = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ["run_id"]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ["started"]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    started: bool
    def __init__(self, started: bool = ...) -> None: ...

class StatusCount(_message.Message):
    __slots__ = ["runs", "status"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    runs: int
    status: RunStatus
    def __init__(self, status: _Optional[_Union[RunStatus, str]] = ..., runs: _Optional[int] = ...) -> None: ...

class ThreadConflict(_message.Message):
    __slots__ = ["conflicting_run_id", "thread_id"]
    CONFLICTING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    conflicting_run_id: str
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ..., conflicting_run_id: _Optional[str] = ...) -> None: ...

class ThreadSummary(_message.Message):
    __slots__ = ["last_activity_at", "latest_run_id", "latest_run_status", "latest_run_updated_at", "run_count", "status", "thread_id", "total_tokens"]
    LAST_ACTIVITY_AT_FIELD_NUMBER: _ClassVar[int]
    LATEST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LATEST_RUN_STATUS_FIELD_NUMBER: _ClassVar[int]
    LATEST_RUN_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    last_activity_at: _timestamp_pb2.Timestamp
    latest_run_id: str
    latest_run_status: RunStatus
    latest_run_updated_at: _timestamp_pb2.Timestamp
    run_count: int
    status: ThreadStatus
    thread_id: str
    total_tokens: int
    def __init__(self, thread_id: _Optional[str] = ..., run_count: _Optional[int] = ..., latest_run_id: _Optional[str] = ..., latest_run_status: _Optional[_Union[RunStatus, str]] = ..., latest_run_updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., total_tokens: _Optional[int] = ..., status: _Optional[_Union[ThreadStatus, str]] = ...) -> None: ...

class TokenTotals(_message.Message):
    __slots__ = ["cache_read_tokens", "input_tokens", "output_tokens", "runs", "total_tokens"]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    cache_read_tokens: int
    input_tokens: int
    output_tokens: int
    runs: int
    total_tokens: int
    def __init__(self, runs: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ...) -> None: ...

class UpdateModelNameRequest(_message.Message):
    __slots__ = ["model_name", "run_id"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    run_id: str
    def __init__(self, run_id: _Optional[str] = ..., model_name: _Optional[str] = ...) -> None: ...

class UpdateModelNameResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class UpdateRunCompletionRequest(_message.Message):
    __slots__ = ["error", "first_human_message", "guarded", "last_ai_message", "lead_agent_tokens", "llm_call_count", "message_count", "middleware_tokens", "run_id", "status", "subagent_tokens", "token_usage_by_model", "total_input_tokens", "total_output_tokens", "total_tokens"]
    class TokenUsageByModelEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModelUsage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModelUsage, _Mapping]] = ...) -> None: ...
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GUARDED_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_USAGE_BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    error: str
    first_human_message: str
    guarded: bool
    last_ai_message: str
    lead_agent_tokens: int
    llm_call_count: int
    message_count: int
    middleware_tokens: int
    run_id: str
    status: RunStatus
    subagent_tokens: int
    token_usage_by_model: _containers.MessageMap[str, ModelUsage]
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ..., error: _Optional[str] = ..., token_usage_by_model: _Optional[_Mapping[str, ModelUsage]] = ..., guarded: bool = ...) -> None: ...

class UpdateRunCompletionResponse(_message.Message):
    __slots__ = ["updated"]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: _wrappers_pb2.BoolValue
    def __init__(self, updated: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class UpdateRunProgressRequest(_message.Message):
    __slots__ = ["first_human_message", "last_ai_message", "lead_agent_tokens", "llm_call_count", "message_count", "middleware_tokens", "run_id", "subagent_tokens", "token_usage_by_model", "total_input_tokens", "total_output_tokens", "total_tokens"]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_USAGE_BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    first_human_message: str
    last_ai_message: str
    lead_agent_tokens: int
    llm_call_count: int
    message_count: int
    middleware_tokens: int
    run_id: str
    subagent_tokens: int
    token_usage_by_model: ModelUsageMap
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ..., token_usage_by_model: _Optional[_Union[ModelUsageMap, _Mapping]] = ...) -> None: ...

class UpdateRunProgressResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class UpdateStatusRequest(_message.Message):
    __slots__ = ["error", "guarded", "run_id", "status", "stop_reason"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    GUARDED_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    error: str
    guarded: bool
    run_id: str
    status: RunStatus
    stop_reason: str
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., error: _Optional[str] = ..., stop_reason: _Optional[str] = ..., guarded: bool = ...) -> None: ...

class UpdateStatusResponse(_message.Message):
    __slots__ = ["updated"]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: _wrappers_pb2.BoolValue
    def __init__(self, updated: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class WatchRunsRequest(_message.Message):
    __slots__ = ["active_only", "cursor", "operation_kinds", "statuses", "thread_id", "user_id"]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    OPERATION_KINDS_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    cursor: str
    operation_kinds: _containers.RepeatedScalarFieldContainer[OperationKind]
    statuses: _containers.RepeatedScalarFieldContainer[RunStatus]
    thread_id: str
    user_id: str
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[RunStatus, str]]] = ..., active_only: bool = ..., operation_kinds: _Optional[_Iterable[_Union[OperationKind, str]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class WatchRunsResponse(_message.Message):
    __slots__ = ["change", "cursor"]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    change: RunChange
    cursor: str
    def __init__(self, change: _Optional[_Union[RunChange, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class MultitaskStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class OperationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CancelAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ThreadStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RunChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
