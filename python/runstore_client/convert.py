"""Records and enums between the proto messages and the plain dicts of the
Python store interface (snake_case keys, ISO 8601 strings, None for unset).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import grpc

from .arguments import COUNTER_FIELDS
from .coordination import action_from_proto, kind_from_proto, usage_map_from_proto
from .errors import RunStoreError, invalid_argument
from .gen.runstore.v1 import run_store_pb2 as pb
from .json_values import struct_to_dict
from .timestamps import format_timestamp

__all__ = [
    "MULTITASK_STRATEGIES",
    "RUN_STATUSES",
    "run_from_proto",
    "status_from_proto",
    "status_to_proto",
    "strategy_to_proto",
    "usage_from_proto",
]

E = TypeVar("E")

_STATUS_TO_PROTO: dict[str, pb.RunStatus] = {
    "pending": pb.RUN_STATUS_PENDING,
    "running": pb.RUN_STATUS_RUNNING,
    "success": pb.RUN_STATUS_SUCCESS,
    "error": pb.RUN_STATUS_ERROR,
    "timeout": pb.RUN_STATUS_TIMEOUT,
    "interrupted": pb.RUN_STATUS_INTERRUPTED,
}

_STRATEGY_TO_PROTO: dict[str, pb.MultitaskStrategy] = {
    "reject": pb.MULTITASK_STRATEGY_REJECT,
    "interrupt": pb.MULTITASK_STRATEGY_INTERRUPT,
    "rollback": pb.MULTITASK_STRATEGY_ROLLBACK,
    "enqueue": pb.MULTITASK_STRATEGY_ENQUEUE,
}

_STATUS_FROM_PROTO = {value: name for name, value in _STATUS_TO_PROTO.items()}
_STRATEGY_FROM_PROTO = {value: name for name, value in _STRATEGY_TO_PROTO.items()}

#: Every status, in lifecycle order.
RUN_STATUSES: tuple[str, ...] = tuple(_STATUS_TO_PROTO)
#: Every multitask strategy; the first is the default.
MULTITASK_STRATEGIES: tuple[str, ...] = tuple(_STRATEGY_TO_PROTO)


def _enum_value(field: str, value: object, table: Mapping[str, E]) -> E:
    # A str Enum (e.g. a runtime's RunStatus) counts as its value.
    name = value.value if isinstance(value, Enum) else value
    if not isinstance(name, str) or name not in table:
        raise invalid_argument(field, f"must be one of {', '.join(table)}, got {value!r}")
    return table[name]


def status_to_proto(field: str, value: object) -> pb.RunStatus:
    """A status name as its RunStatus value; anything else is refused naming ``field``."""
    return _enum_value(field, value, _STATUS_TO_PROTO)


def status_from_proto(value: int) -> str | None:
    """A proto RunStatus as its name; None for UNSPECIFIED or an unknown value."""
    return _STATUS_FROM_PROTO.get(value)


def strategy_to_proto(field: str, value: object) -> pb.MultitaskStrategy:
    """A strategy name as its MultitaskStrategy value; anything else is refused."""
    return _enum_value(field, value, _STRATEGY_TO_PROTO)


def _bad_response(what: str) -> RunStoreError:
    """A server answer that breaks the contract: the client cannot map it."""
    return RunStoreError(grpc.StatusCode.INTERNAL, f"server answered {what}")


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _optional_timestamp(message: Any, field: str) -> str | None:
    return format_timestamp(getattr(message, field)) if message.HasField(field) else None


def run_from_proto(run: pb.Run) -> dict[str, Any]:
    """A wire Run as the record dict every method returns.

    Keys: run_id, thread_id, assistant_id, user_id, model_name, status,
    multitask_strategy, metadata, kwargs, error, created_at, updated_at, the
    eight counters, last_ai_message, first_human_message; and part 2's
    operation_kind, stop_reason, owner_worker_id, lease_expires_at,
    cancel_action, cancel_requested_at, idempotency_key, follow_up_to_run_id,
    token_usage_by_model ({model: {input_tokens, output_tokens, total_tokens,
    cache_read_tokens when recorded}}) and queued.
    """
    status = _STATUS_FROM_PROTO.get(run.status)
    strategy = _STRATEGY_FROM_PROTO.get(run.multitask_strategy)
    kind = kind_from_proto(run.operation_kind)
    if status is None:
        raise _bad_response(f"an unknown run status {run.status}")
    if strategy is None:
        raise _bad_response(f"an unknown multitask strategy {run.multitask_strategy}")
    if kind is None:
        raise _bad_response(f"an unknown operation kind {run.operation_kind}")
    if not run.HasField("created_at") or not run.HasField("updated_at"):
        raise _bad_response("a run without timestamps")
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": _optional(run, "assistant_id"),
        "user_id": _optional(run, "user_id"),
        "model_name": _optional(run, "model_name"),
        "status": status,
        "multitask_strategy": strategy,
        "metadata": struct_to_dict(run.metadata),
        "kwargs": struct_to_dict(run.kwargs),
        "error": _optional(run, "error"),
        "created_at": format_timestamp(run.created_at),
        "updated_at": format_timestamp(run.updated_at),
    }
    for name in COUNTER_FIELDS:
        record[name] = getattr(run, name)
    record["last_ai_message"] = _optional(run, "last_ai_message")
    record["first_human_message"] = _optional(run, "first_human_message")
    record.update(
        operation_kind=kind,
        stop_reason=_optional(run, "stop_reason"),
        owner_worker_id=_optional(run, "owner_worker_id"),
        lease_expires_at=_optional_timestamp(run, "lease_expires_at"),
        cancel_action=action_from_proto(run.cancel_action),
        cancel_requested_at=_optional_timestamp(run, "cancel_requested_at"),
        idempotency_key=_optional(run, "idempotency_key"),
        follow_up_to_run_id=_optional(run, "follow_up_to_run_id"),
        token_usage_by_model=usage_map_from_proto(run.token_usage_by_model),
        queued=run.queued,
    )
    return record


def usage_from_proto(response: pb.AggregateTokensByThreadResponse) -> dict[str, Any]:
    """The AggregateTokensByThread answer as the dict of the Python interface."""
    caller = response.by_caller
    return {
        "total_tokens": response.total_tokens,
        "total_input_tokens": response.total_input_tokens,
        "total_output_tokens": response.total_output_tokens,
        "total_runs": response.total_runs,
        "by_model": {
            model: {"tokens": usage.tokens, "runs": usage.runs}
            for model, usage in response.by_model.items()
        },
        "by_caller": {
            "lead_agent": caller.lead_agent,
            "subagent": caller.subagent,
            "middleware": caller.middleware,
        },
    }
