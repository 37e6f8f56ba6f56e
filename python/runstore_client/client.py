"""GrpcRunStore: the Python RunStore interface over the RunStore gRPC service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .arguments import (
    COUNTER_FIELDS,
    check_bool,
    check_counter,
    check_limit,
    check_model_name,
    check_required_text,
    check_text,
)
from .base import choose_base
from .coordination import kind_to_proto, usage_map_to_proto
from .coordination_methods import CoordinationMethods
from .convert import run_from_proto, status_to_proto, strategy_to_proto, usage_from_proto
from .gen.runstore.v1 import run_store_pb2 as pb
from .history import WALK_PAGE_SIZE, walk_runs
from .history_methods import HistoryMethods
from .json_values import json_object, struct_from_dict
from .owner import AUTO, AutoUser, resolve_user_id
from .timestamps import timestamp_to_proto
from .watch import WatchMethods

__all__ = ["GrpcRunStore", "TimestampInput"]

#: An instant as callers hand it: ISO 8601 with any offset or none (UTC), or a datetime.
TimestampInput = str | datetime


class GrpcRunStore(  # type: ignore[misc]
    CoordinationMethods, HistoryMethods, WatchMethods, choose_base()
):
    """A RunStore whose rows live in a RunStore server, reached over gRPC.

    It has the methods and keyword arguments of the Python store interface
    (DeerFlow's ``RunStore`` as the seed runtime has it), so a runtime swaps
    its in-process store for this one without changing a call, and every
    method of part 2 (coordination between workers) with DeerFlow's names.
    Records come back as plain dicts with snake_case keys, timestamps as
    fixed-width UTC strings (``2026-01-01T00:00:00.000000Z``), metadata /
    kwargs as dicts; part 2's answers are dicts in the same wire form.
    (``runstore_client.deerflow.DeerFlowRunStore`` answers in the types and
    shapes of DeerFlow's current store instead.)

    An omitted ``user_id`` is AUTO: the current user of DeerFlow's request
    context when there is one, else no user (see owner.py); None is no user.

    Errors are RunStoreError subclasses carrying the gRPC status code; bad
    input is InvalidArgumentError naming the field, whether this client or
    the server refused it; conflicts are ThreadConflictError /
    IdempotencyConflictError with their details. UNAVAILABLE is retried (see
    ``retry``) within the call's timeout, nothing else is, and not by the four
    calls whose answer is not idempotent (start_run, claim_next_run,
    finalize_if_not_cancelled, claim_for_takeover: one attempt each).
    ``watch_runs`` follows the server's changes (watch.py). Use it
    as ``async with GrpcRunStore(...) as store`` or call ``await store.close()``.
    """

    # The constructor (target, token, tls, timeout, retry, …) is Connection's.

    async def put(
        self,
        run_id: str,
        *,
        thread_id: str,
        assistant_id: str | None = None,
        user_id: str | None | AutoUser = AUTO,
        model_name: str | None = None,
        status: str | None = "pending",
        multitask_strategy: str = "reject",
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        error: str | None = None,
        created_at: TimestampInput | None = None,
        operation_kind: str = "run",
        stop_reason: str | None = None,
        owner_worker_id: str | None = None,
        lease_expires_at: TimestampInput | None = None,
        idempotency_key: str | None = None,
        follow_up_to_run_id: str | None = None,
    ) -> None:
        """Upsert: inserts the run, or overwrites its descriptive fields
        (created_at, the eight counters, both messages, the cancel request and
        the usage per model are kept; an omitted optional becomes None / {}).
        ``status=None`` stores pending; a non-string ``model_name`` is stored
        as ``str(model_name)``. An ``idempotency_key`` another run holds
        raises IdempotencyConflictError and changes nothing."""
        request = pb.PutRequest(
            run_id=check_required_text("run_id", run_id),
            thread_id=check_required_text("thread_id", thread_id),
            assistant_id=check_text("assistant_id", assistant_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
            model_name=check_model_name(model_name),
            status=status_to_proto("status", "pending" if status is None else status),
            multitask_strategy=strategy_to_proto("multitask_strategy", multitask_strategy),
            metadata=struct_from_dict(json_object("metadata", metadata)),
            kwargs=struct_from_dict(json_object("kwargs", kwargs)),
            error=check_text("error", error),
            created_at=_optional_timestamp(created_at, "created_at"),
            operation_kind=kind_to_proto("operation_kind", operation_kind),
            stop_reason=check_text("stop_reason", stop_reason),
            owner_worker_id=check_text("owner_worker_id", owner_worker_id),
            lease_expires_at=_optional_timestamp(lease_expires_at, "lease_expires_at"),
            idempotency_key=check_text("idempotency_key", idempotency_key),
            follow_up_to_run_id=check_text("follow_up_to_run_id", follow_up_to_run_id),
        )
        await self._invoke("Put", request)

    async def get(
        self, run_id: str, *, user_id: str | None | AutoUser = AUTO
    ) -> dict[str, Any] | None:
        """The run, or None when it is missing or not visible to ``user_id``."""
        request = pb.GetRequest(
            run_id=check_required_text("run_id", run_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        response: pb.GetResponse = await self._invoke("Get", request)
        return run_from_proto(response.run) if response.HasField("run") else None

    async def list_by_thread(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The thread's runs visible to ``user_id``, newest first, at most
        ``limit``; past WALK_PAGE_SIZE rows, read in pages of that many."""
        filters = pb.ListByThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        unpaged = pb.ListByThreadRequest(limit=check_limit("limit", limit))
        unpaged.MergeFrom(filters)
        if unpaged.limit <= WALK_PAGE_SIZE:  # up to a page, part 1's call on any server
            response: pb.ListByThreadResponse = await self._invoke("ListByThread", unpaged)
            return [run_from_proto(run) for run in response.runs]
        return await walk_runs(
            self._invoke, "ListByThread", filters, unpaged=unpaged, limit=unpaged.limit
        )

    async def update_status(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        stop_reason: str | None = None,
        guarded: bool = False,
    ) -> bool | None:
        """Sets the status (and error / stop_reason, when given): True when the
        run was written, False when not, None when the server cannot tell.
        ``guarded``: only while the status is pending, running or interrupted."""
        request = pb.UpdateStatusRequest(
            run_id=check_required_text("run_id", run_id),
            status=status_to_proto("status", status),
            error=check_text("error", error),
            stop_reason=check_text("stop_reason", stop_reason),
            guarded=check_bool("guarded", guarded),
        )
        response: pb.UpdateStatusResponse = await self._invoke("UpdateStatus", request)
        return response.updated.value if response.HasField("updated") else None

    async def delete(self, run_id: str, *, user_id: str | None | AutoUser = AUTO) -> None:
        """Removes the run; a no-op when it is missing or not visible to ``user_id``."""
        request = pb.DeleteRequest(
            run_id=check_required_text("run_id", run_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        await self._invoke("Delete", request)

    async def update_model_name(self, run_id: str, model_name: str | None) -> None:
        """Sets the (trimmed, cut to 128) model name; a no-op when the run is missing."""
        request = pb.UpdateModelNameRequest(
            run_id=check_required_text("run_id", run_id),
            model_name=check_model_name(model_name),
        )
        await self._invoke("UpdateModelName", request)

    async def update_run_completion(
        self,
        run_id: str,
        *,
        status: str,
        total_input_tokens: int = 0,
        total_output_tokens: int = 0,
        total_tokens: int = 0,
        llm_call_count: int = 0,
        lead_agent_tokens: int = 0,
        subagent_tokens: int = 0,
        middleware_tokens: int = 0,
        message_count: int = 0,
        last_ai_message: str | None = None,
        first_human_message: str | None = None,
        error: str | None = None,
        token_usage_by_model: dict[str, dict[str, int]] | None = None,
        guarded: bool = False,
    ) -> bool | None:
        """Records the run's end: status, all eight counters and the usage per
        model (None stores {}) always; the messages (cut to 2000) and error
        only when given. ``guarded``: only while the status is pending,
        running or the target (error may also replace interrupted). True /
        False / None as update_status."""
        counters = (
            total_input_tokens,
            total_output_tokens,
            total_tokens,
            llm_call_count,
            lead_agent_tokens,
            subagent_tokens,
            middleware_tokens,
            message_count,
        )
        usage = {} if token_usage_by_model is None else token_usage_by_model
        request = pb.UpdateRunCompletionRequest(
            run_id=check_required_text("run_id", run_id),
            status=status_to_proto("status", status),
            last_ai_message=check_text("last_ai_message", last_ai_message),
            first_human_message=check_text("first_human_message", first_human_message),
            error=check_text("error", error),
            token_usage_by_model=usage_map_to_proto("token_usage_by_model", usage),
            guarded=check_bool("guarded", guarded),
            **{name: check_counter(name, v) for name, v in zip(COUNTER_FIELDS, counters)},
        )
        response: pb.UpdateRunCompletionResponse = await self._invoke(
            "UpdateRunCompletion", request
        )
        return response.updated.value if response.HasField("updated") else None

    async def update_run_progress(
        self,
        run_id: str,
        *,
        total_input_tokens: int | None = None,
        total_output_tokens: int | None = None,
        total_tokens: int | None = None,
        llm_call_count: int | None = None,
        lead_agent_tokens: int | None = None,
        subagent_tokens: int | None = None,
        middleware_tokens: int | None = None,
        message_count: int | None = None,
        last_ai_message: str | None = None,
        first_human_message: str | None = None,
        token_usage_by_model: dict[str, dict[str, int]] | None = None,
    ) -> None:
        """A best-effort snapshot of a running run: writes only the fields
        given (0 and {} are given), only while the run's status is running."""
        counters = (
            total_input_tokens,
            total_output_tokens,
            total_tokens,
            llm_call_count,
            lead_agent_tokens,
            subagent_tokens,
            middleware_tokens,
            message_count,
        )
        usage = (
            None
            if token_usage_by_model is None
            else pb.ModelUsageMap(
                models=usage_map_to_proto("token_usage_by_model", token_usage_by_model)
            )
        )
        request = pb.UpdateRunProgressRequest(
            run_id=check_required_text("run_id", run_id),
            last_ai_message=check_text("last_ai_message", last_ai_message),
            first_human_message=check_text("first_human_message", first_human_message),
            token_usage_by_model=usage,
            **{
                name: check_counter(name, v)
                for name, v in zip(COUNTER_FIELDS, counters)
                if v is not None
            },
        )
        await self._invoke("UpdateRunProgress", request)

    async def list_pending(self, *, before: TimestampInput | None = None) -> list[dict[str, Any]]:
        """Pending runs created at or before ``before`` (default now), oldest
        first, all users; read in pages of WALK_PAGE_SIZE."""
        request = pb.ListPendingRequest(before=_optional_timestamp(before, "before"))
        return await walk_runs(self._invoke, "ListPending", request)

    async def list_inflight(self, *, before: TimestampInput | None = None) -> list[dict[str, Any]]:
        """Pending and running runs created at or before ``before``, oldest
        first, all users; read in pages of WALK_PAGE_SIZE."""
        request = pb.ListInflightRequest(before=_optional_timestamp(before, "before"))
        return await walk_runs(self._invoke, "ListInflight", request)

    async def aggregate_tokens_by_thread(
        self, thread_id: str, *, include_active: bool = False
    ) -> dict[str, Any]:
        """Token usage over the thread's success / error runs (running too with
        ``include_active``): total_tokens, total_input_tokens,
        total_output_tokens, total_runs, by_model, by_caller."""
        request = pb.AggregateTokensByThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            include_active=check_bool("include_active", include_active),
        )
        response: pb.AggregateTokensByThreadResponse = await self._invoke(
            "AggregateTokensByThread", request
        )
        return usage_from_proto(response)


def _optional_timestamp(value: TimestampInput | None, field: str) -> Any:
    return None if value is None else timestamp_to_proto(value, field)
