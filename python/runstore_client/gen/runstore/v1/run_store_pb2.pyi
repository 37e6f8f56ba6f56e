from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
MULTITASK_STRATEGY_ENQUEUE: MultitaskStrategy
MULTITASK_STRATEGY_INTERRUPT: MultitaskStrategy
MULTITASK_STRATEGY_REJECT: MultitaskStrategy
MULTITASK_STRATEGY_ROLLBACK: MultitaskStrategy
MULTITASK_STRATEGY_UNSPECIFIED: MultitaskStrategy
RUN_STATUS_ERROR: RunStatus
RUN_STATUS_INTERRUPTED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCESS: RunStatus
RUN_STATUS_TIMEOUT: RunStatus
RUN_STATUS_UNSPECIFIED: RunStatus

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

class ListByThreadRequest(_message.Message):
    __slots__ = ["limit", "thread_id", "user_id"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    thread_id: str
    user_id: str
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListByThreadResponse(_message.Message):
    __slots__ = ["runs"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class ListInflightRequest(_message.Message):
    __slots__ = ["before"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    def __init__(self, before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListInflightResponse(_message.Message):
    __slots__ = ["runs"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class ListPendingRequest(_message.Message):
    __slots__ = ["before"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    def __init__(self, before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPendingResponse(_message.Message):
    __slots__ = ["runs"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class ModelTokenUsage(_message.Message):
    __slots__ = ["runs", "tokens"]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    runs: int
    tokens: int
    def __init__(self, tokens: _Optional[int] = ..., runs: _Optional[int] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ["assistant_id", "created_at", "error", "kwargs", "metadata", "model_name", "multitask_strategy", "run_id", "status", "thread_id", "user_id"]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    created_at: _timestamp_pb2.Timestamp
    error: str
    kwargs: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    model_name: str
    multitask_strategy: MultitaskStrategy
    run_id: str
    status: RunStatus
    thread_id: str
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kwargs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Run(_message.Message):
    __slots__ = ["assistant_id", "created_at", "error", "first_human_message", "kwargs", "last_ai_message", "lead_agent_tokens", "llm_call_count", "message_count", "metadata", "middleware_tokens", "model_name", "multitask_strategy", "run_id", "status", "subagent_tokens", "thread_id", "total_input_tokens", "total_output_tokens", "total_tokens", "updated_at", "user_id"]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    created_at: _timestamp_pb2.Timestamp
    error: str
    first_human_message: str
    kwargs: _struct_pb2.Struct
    last_ai_message: str
    lead_agent_tokens: int
    llm_call_count: int
    message_count: int
    metadata: _struct_pb2.Struct
    middleware_tokens: int
    model_name: str
    multitask_strategy: MultitaskStrategy
    run_id: str
    status: RunStatus
    subagent_tokens: int
    thread_id: str
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    updated_at: _timestamp_pb2.Timestamp
    user_id: str
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., kwargs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ...) -> None: ...

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
    __slots__ = ["error", "first_human_message", "last_ai_message", "lead_agent_tokens", "llm_call_count", "message_count", "middleware_tokens", "run_id", "status", "subagent_tokens", "total_input_tokens", "total_output_tokens", "total_tokens"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    error: str
    first_human_message: str
    last_ai_message: str
    lead_agent_tokens: int
    llm_call_count: int
    message_count: int
    middleware_tokens: int
    run_id: str
    status: RunStatus
    subagent_tokens: int
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class UpdateRunCompletionResponse(_message.Message):
    __slots__ = ["updated"]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: _wrappers_pb2.BoolValue
    def __init__(self, updated: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class UpdateRunProgressRequest(_message.Message):
    __slots__ = ["first_human_message", "last_ai_message", "lead_agent_tokens", "llm_call_count", "message_count", "middleware_tokens", "run_id", "subagent_tokens", "total_input_tokens", "total_output_tokens", "total_tokens"]
    FIRST_HUMAN_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_AI_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIDDLEWARE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBAGENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
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
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    def __init__(self, run_id: _Optional[str] = ..., total_input_tokens: _Optional[int] = ..., total_output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., llm_call_count: _Optional[int] = ..., lead_agent_tokens: _Optional[int] = ..., subagent_tokens: _Optional[int] = ..., middleware_tokens: _Optional[int] = ..., message_count: _Optional[int] = ..., last_ai_message: _Optional[str] = ..., first_human_message: _Optional[str] = ...) -> None: ...

class UpdateRunProgressResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class UpdateStatusRequest(_message.Message):
    __slots__ = ["error", "run_id", "status"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    error: str
    run_id: str
    status: RunStatus
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., error: _Optional[str] = ...) -> None: ...

class UpdateStatusResponse(_message.Message):
    __slots__ = ["updated"]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: _wrappers_pb2.BoolValue
    def __init__(self, updated: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ...) -> None: ...

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class MultitaskStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
