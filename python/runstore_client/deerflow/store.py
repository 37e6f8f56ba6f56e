"""DeerFlowRunStore: a drop-in for DeerFlow's current RunStore, over gRPC."""

from __future__ import annotations

import warnings
from abc import ABCMeta
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

from ..base import deerflow_run_store
from ..client import GrpcRunStore
from ..coordination import DEFAULT_GRACE_SECONDS, LeaseInput
from ..errors import (
    AbortedError,
    AlreadyExistsError,
    IdempotencyConflictError,
    ThreadConflictError,
)
from ..options import (
    DEFAULT_CALL_QUEUE_TIMEOUT,
    DEFAULT_KEEPALIVE_SECONDS,
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_QUEUED_CALLS,
    DEFAULT_MAX_REQUEST_BYTES,
    TlsOptions,
)
from ..owner import AUTO, AutoUser, resolve_user_id
from ..retry import RetryPolicy
from .history import DeerFlowHistory
from .rows import deerflow_row
from .watch import DeerFlowWatch
from .types import (
    LeaseRenewal,
    idempotency_conflict,
    make_finalization,
    run_id_taken,
    thread_conflict,
)

__all__ = ["DeerFlowRunStore"]

Row = dict[str, Any]
Instant = str | datetime


def _rows(records: list[Row]) -> list[Row]:
    return [deerflow_row(record) for record in records]


def _user(user_id: object, method: str) -> Any:
    """``user_id`` resolved as DeerFlow's SQL store resolves it (owner.py):
    with DeerFlow importable, AUTO and no current user raise DeerFlow's
    RuntimeError, naming this method."""
    return resolve_user_id(user_id, method_name=f"DeerFlowRunStore.{method}")


class _DeerFlowMethods:
    """The methods and keyword arguments of DeerFlow's ``RunStore``
    (``runtime/runs/store/base.py``, 2026-08-22, f1f4af99b), as its SQL store
    implements them, over a GrpcRunStore (``self._grpc``)."""

    _grpc: GrpcRunStore

    async def put(
        self,
        run_id: str,
        *,
        thread_id: str,
        assistant_id: str | None = None,
        user_id: str | None | AutoUser = AUTO,
        model_name: str | None = None,
        status: str | None = "pending",
        operation_kind: str = "run",
        multitask_strategy: str = "reject",
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        error: str | None = None,
        stop_reason: str | None = None,
        created_at: Instant | None = None,
        follow_up_to_run_id: str | None = None,
        owner_worker_id: str | None = None,
        lease_expires_at: Instant | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Upsert (see GrpcRunStore.put); a held idempotency key raises RunIdempotencyConflict."""
        owner = _user(user_id, "put")
        try:
            await self._grpc.put(
                run_id,
                thread_id=thread_id,
                assistant_id=assistant_id,
                user_id=owner,
                model_name=model_name,
                status=status,
                operation_kind=operation_kind,
                multitask_strategy=multitask_strategy,
                metadata=metadata,
                kwargs=kwargs,
                error=error,
                stop_reason=stop_reason,
                created_at=created_at,
                follow_up_to_run_id=follow_up_to_run_id,
                owner_worker_id=owner_worker_id,
                lease_expires_at=lease_expires_at,
                idempotency_key=idempotency_key,
            )
        except IdempotencyConflictError as error_:
            raise idempotency_conflict(deerflow_row(error_.existing), error_.details) from error_

    async def get(self, run_id: str, *, user_id: str | None | AutoUser = AUTO) -> Row | None:
        record = await self._grpc.get(run_id, user_id=_user(user_id, "get"))
        return None if record is None else deerflow_row(record)

    async def list_by_thread(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO, limit: int = 100
    ) -> list[Row]:
        user = _user(user_id, "list_by_thread")
        return _rows(await self._grpc.list_by_thread(thread_id, user_id=user, limit=limit))

    async def list_successful_regenerate_sources(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO
    ) -> set[str]:
        user = _user(user_id, "list_successful_regenerate_sources")
        return set(await self._grpc.list_successful_regenerate_sources(thread_id, user_id=user))

    async def list_edit_regenerate_runs(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO
    ) -> list[Row]:
        user = _user(user_id, "list_edit_regenerate_runs")
        return _rows(await self._grpc.list_edit_regenerate_runs(thread_id, user_id=user))

    async def get_many_by_thread(
        self, thread_id: str, run_ids: Iterable[str], *, user_id: str | None | AutoUser = AUTO
    ) -> dict[str, Row]:
        """As DeerFlow's: no run ids answers {} before the user is resolved
        (the empty request goes without a user filter, and finds nothing)."""
        user = _user(user_id, "get_many_by_thread") if run_ids else None
        records = await self._grpc.get_many_by_thread(thread_id, run_ids, user_id=user)
        return {run_id: deerflow_row(record) for run_id, record in records.items()}

    async def update_status(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        stop_reason: str | None = None,
        guarded: bool = True,
    ) -> bool | None:
        """Guarded, as DeerFlow's SQL store: applies only while the status is
        pending, running or interrupted; False when nothing was written.
        ``guarded=False`` is part 1's unguarded write (not DeerFlow's)."""
        return await self._grpc.update_status(
            run_id, status, error=error, stop_reason=stop_reason, guarded=guarded
        )

    async def start_run(self, run_id: str) -> bool:
        return await self._grpc.start_run(run_id)

    async def delete(self, run_id: str, *, user_id: str | None | AutoUser = AUTO) -> None:
        await self._grpc.delete(run_id, user_id=_user(user_id, "delete"))

    async def delete_thread_operation(self, run_id: str, *, user_id: str | None) -> None:
        await self._grpc.delete_thread_operation(run_id, user_id=user_id)

    async def update_model_name(self, run_id: str, model_name: str | None) -> None:
        await self._grpc.update_model_name(run_id, model_name)

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
        token_usage_by_model: dict[str, dict[str, int]] | None = None,
        message_count: int = 0,
        last_ai_message: str | None = None,
        first_human_message: str | None = None,
        error: str | None = None,
        guarded: bool = True,
    ) -> bool | None:
        """Guarded, as DeerFlow's SQL store: never replaces a different terminal
        status (error may replace interrupted); False when nothing was written.
        ``guarded=False`` is part 1's unguarded write (not DeerFlow's)."""
        return await self._grpc.update_run_completion(
            run_id,
            status=status,
            total_input_tokens=total_input_tokens,
            total_output_tokens=total_output_tokens,
            total_tokens=total_tokens,
            llm_call_count=llm_call_count,
            lead_agent_tokens=lead_agent_tokens,
            subagent_tokens=subagent_tokens,
            middleware_tokens=middleware_tokens,
            token_usage_by_model=token_usage_by_model,
            message_count=message_count,
            last_ai_message=last_ai_message,
            first_human_message=first_human_message,
            error=error,
            guarded=guarded,
        )

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
        token_usage_by_model: dict[str, dict[str, int]] | None = None,
        message_count: int | None = None,
        last_ai_message: str | None = None,
        first_human_message: str | None = None,
    ) -> None:
        await self._grpc.update_run_progress(
            run_id,
            total_input_tokens=total_input_tokens,
            total_output_tokens=total_output_tokens,
            total_tokens=total_tokens,
            llm_call_count=llm_call_count,
            lead_agent_tokens=lead_agent_tokens,
            subagent_tokens=subagent_tokens,
            middleware_tokens=middleware_tokens,
            token_usage_by_model=token_usage_by_model,
            message_count=message_count,
            last_ai_message=last_ai_message,
            first_human_message=first_human_message,
        )

    async def list_pending(self, *, before: Instant | None = None) -> list[Row]:
        return _rows(await self._grpc.list_pending(before=before))

    async def list_inflight(self, *, before: Instant | None = None) -> list[Row]:
        return _rows(await self._grpc.list_inflight(before=before))

    async def aggregate_tokens_by_thread(
        self, thread_id: str, *, include_active: bool = False
    ) -> dict[str, Any]:
        return await self._grpc.aggregate_tokens_by_thread(thread_id, include_active=include_active)

    async def update_lease(
        self, run_id: str, *, owner_worker_id: str, lease_expires_at: LeaseInput
    ) -> bool:
        return await self._grpc.update_lease(
            run_id, owner_worker_id=owner_worker_id, lease=lease_expires_at
        )

    async def renew_lease(
        self, run_id: str, *, owner_worker_id: str, lease_expires_at: LeaseInput
    ) -> Any:
        """LeaseRenewal(renewed, cancel_action), read in the same atomic step."""
        answer = await self._grpc.renew_lease(
            run_id, owner_worker_id=owner_worker_id, lease=lease_expires_at
        )
        return LeaseRenewal(renewed=answer["renewed"], cancel_action=answer["cancel_action"])

    async def request_cancel(self, run_id: str, *, action: str) -> str | None:
        return await self._grpc.request_cancel(run_id, action=action)

    async def finalize_if_not_cancelled(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        stop_reason: str | None = None,
    ) -> Any:
        """StatusFinalization(finalized, cancel_action): exactly one of completion and cancel wins."""
        answer = await self._grpc.finalize_if_not_cancelled(
            run_id, status=status, error=error, stop_reason=stop_reason
        )
        return make_finalization(answer["finalized"], answer["cancel_action"])

    async def claim_for_takeover(
        self, run_id: str, *, grace_seconds: int, error: str, stop_reason: str | None = None
    ) -> bool:
        return await self._grpc.claim_for_takeover(
            run_id, grace_seconds=grace_seconds, error=error, stop_reason=stop_reason
        )

    async def list_inflight_with_expired_lease(
        self, *, before: Instant | None = None, grace_seconds: int = DEFAULT_GRACE_SECONDS
    ) -> list[Row]:
        return _rows(
            await self._grpc.list_inflight_with_expired_lease(
                before=before, grace_seconds=grace_seconds
            )
        )

    async def create_thread_operation_atomic(
        self,
        run_id: str,
        *,
        thread_id: str,
        owner_worker_id: str,
        lease_expires_at: LeaseInput | None,
        operation_kind: str = "run",
        multitask_strategy: str = "reject",
        assistant_id: str | None = None,
        user_id: str | None | AutoUser = None,
        model_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        created_at: Instant | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        idempotency_key: str | None = None,
        follow_up_to_run_id: str | None = None,
    ) -> tuple[Row, list[Row]]:
        """Admission in one atomic step: ``(new_row, taken_over_rows)``.

        A busy thread raises the thread conflict, a run_id taken by a
        different operation RunIdTakenError (both ``sqlstate == "23505"``, and
        DeerFlow's ConflictError when importable); a held idempotency key
        raises RunIdempotencyConflict carrying the existing row. As in
        DeerFlow's SQL store, a ``user_id`` of None means the current user
        (with DeerFlow importable and no current user, its RuntimeError).
        """
        owner = _user(AUTO if user_id is None else user_id, "create_thread_operation_atomic")
        try:
            admission = await self._grpc.create_thread_operation(
                run_id,
                thread_id=thread_id,
                owner_worker_id=owner_worker_id,
                lease=lease_expires_at,
                operation_kind=operation_kind,
                multitask_strategy=multitask_strategy,
                assistant_id=assistant_id,
                user_id=owner,
                model_name=model_name,
                metadata=metadata,
                kwargs=kwargs,
                created_at=created_at,
                grace_seconds=grace_seconds,
                idempotency_key=idempotency_key,
                follow_up_to_run_id=follow_up_to_run_id,
            )
        except IdempotencyConflictError as error:
            raise idempotency_conflict(deerflow_row(error.existing), error.details) from error
        except AlreadyExistsError as error:
            raise run_id_taken(error.details) from error
        except AbortedError as error:
            source = error if isinstance(error, ThreadConflictError) else None
            raise thread_conflict(source, error.details) from error
        return deerflow_row(admission["run"]), _rows(admission["taken_over"])

    async def create_run_atomic(
        self,
        run_id: str,
        *,
        thread_id: str,
        owner_worker_id: str,
        lease_expires_at: LeaseInput | None,
        multitask_strategy: str = "reject",
        assistant_id: str | None = None,
        user_id: str | None | AutoUser = None,
        model_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        created_at: Instant | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
    ) -> tuple[Row, list[Row]]:
        """DeerFlow's deprecated alias: create_thread_operation_atomic of a run."""
        return await self.create_thread_operation_atomic(
            run_id,
            thread_id=thread_id,
            owner_worker_id=owner_worker_id,
            lease_expires_at=lease_expires_at,
            multitask_strategy=multitask_strategy,
            assistant_id=assistant_id,
            user_id=user_id,
            model_name=model_name,
            metadata=metadata,
            kwargs=kwargs,
            created_at=created_at,
            grace_seconds=grace_seconds,
        )

    async def claim_next_run(
        self,
        *,
        owner_worker_id: str,
        lease_expires_at: LeaseInput,
        thread_id: str | None = None,
    ) -> Row | None:
        """Ours (DeerFlow refuses enqueue): the oldest queued run on a free
        thread, now running and owned by the caller; None when there is none."""
        record = await self._grpc.claim_next_run(
            owner_worker_id=owner_worker_id, lease=lease_expires_at, thread_id=thread_id
        )
        return None if record is None else deerflow_row(record)


#: Every method DeerFlowRunStore implements.
DEERFLOW_METHODS: frozenset[str] = frozenset(
    name
    for methods in (_DeerFlowMethods, DeerFlowHistory)
    for name in vars(methods)
    if not name.startswith("_")
)


def _choose_base() -> type:
    """DeerFlow's RunStore when importable and every abstract method of it is
    implemented here; ``object`` otherwise (then registered, see below)."""
    abc_class = deerflow_run_store()
    if abc_class is None:
        return object
    missing = sorted(set(getattr(abc_class, "__abstractmethods__", ())) - DEERFLOW_METHODS)
    if not missing:
        return abc_class
    warnings.warn(
        f"{abc_class.__module__}.RunStore declares abstract methods that DeerFlowRunStore "
        f"does not implement ({', '.join(missing)}); DeerFlowRunStore is registered as a "
        "virtual subclass and does not inherit its defaults",
        RuntimeWarning,
        stacklevel=2,
    )
    return object


class DeerFlowRunStore(  # type: ignore[misc]
    _DeerFlowMethods, DeerFlowHistory, DeerFlowWatch, _choose_base()
):
    """A drop-in for DeerFlow's RunStore (as of 2026-08-22, f1f4af99b) whose
    rows live in a RunStore server, reached over gRPC.

    Constructed like GrpcRunStore (target, token, tls, timeout, retry, …).
    Every method and keyword argument of DeerFlow's ``RunStore``, with its
    result shapes: rows as DeerFlow's SQL store returns them (dicts, ISO
    timestamps ending ``+00:00``, the same keys), ``LeaseRenewal``,
    ``StatusFinalization``, the ``(new_row, taken_over_rows)`` tuple, a set
    from list_successful_regenerate_sources; update_status and
    update_run_completion guarded as DeerFlow's are. A busy thread, or a
    run_id taken by a different operation, at admission raises an error
    DeerFlow's unique-violation check recognises (``sqlstate == "23505"``);
    a held idempotency key raises ``RunIdempotencyConflict`` carrying the
    existing row. Beyond DeerFlow's interface: claim_next_run and the
    history methods (deerflow/history.py; a thread's rows go with
    delete_by_thread, DeerFlow's name) and watch_runs (deerflow/watch.py).

    When ``deerflow`` is importable the class is a subclass of its RunStore
    ABC and answers with DeerFlow's own types; otherwise with equivalents
    of ours (runstore_client.deerflow.types). An omitted ``user_id`` is the
    current user of DeerFlow's request context, resolved by DeerFlow's own
    resolver (which raises when no user is set); without DeerFlow, no user
    (owner.py).
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        token: str | None = None,
        tls: TlsOptions | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | Literal[False] | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS,
        channel_options: Sequence[tuple[str, Any]] = (),
        max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS,
        max_queued_calls: int | None = DEFAULT_MAX_QUEUED_CALLS,
        call_queue_timeout: float | None = DEFAULT_CALL_QUEUE_TIMEOUT,
    ) -> None:
        """The options of GrpcRunStore; the connection opens on the first call."""
        self._grpc = GrpcRunStore(
            target,
            token=token,
            tls=tls,
            timeout=timeout,
            retry=retry,
            max_request_bytes=max_request_bytes,
            keepalive_seconds=keepalive_seconds,
            channel_options=channel_options,
            max_concurrent_calls=max_concurrent_calls,
            max_queued_calls=max_queued_calls,
            call_queue_timeout=call_queue_timeout,
        )

    async def close(self) -> None:
        """Closes the connection; calls in flight end with CANCELLED."""
        await self._grpc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


_ABC = deerflow_run_store()
if isinstance(_ABC, ABCMeta) and not issubclass(DeerFlowRunStore, _ABC):
    # isinstance(store, RunStore) holds even when the ABC asks for more.
    _ABC.register(DeerFlowRunStore)
