"""GrpcRunStore's part 2: coordination between workers (docs/contract.md).

Each method is one RPC, so each is one atomic step on the server. Answers
are in wire form, like part 1's: records as dicts, the others as dicts with
snake_case keys. A lease may be given as ``lease`` (an instant, a timedelta
for the store's clock, or {"expires_at" | "duration_ms"}) or, with DeerFlow's
keyword, as ``lease_expires_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .arguments import check_model_name, check_required_text, check_text
from .connection import Connection
from .convert import run_from_proto, status_to_proto, strategy_to_proto
from .coordination import (
    DEFAULT_GRACE_SECONDS,
    LeaseInput,
    action_from_proto,
    action_to_proto,
    check_grace_seconds,
    kind_to_proto,
    lease_to_proto,
)
from .errors import invalid_argument
from .gen.runstore.v1 import run_store_pb2 as pb
from .history import walk_runs
from .json_values import json_object, struct_from_dict
from .owner import AUTO, AutoUser, resolve_user_id
from .timestamps import timestamp_to_proto

__all__ = ["CoordinationMethods"]


def _lease(lease: LeaseInput | None, lease_expires_at: LeaseInput | None, *, required: bool) -> Any:
    """The lease given by either keyword (not both); None when neither and not required."""
    if lease is not None and lease_expires_at is not None:
        raise invalid_argument("lease", "give lease or lease_expires_at, not both")
    if lease is not None:
        return lease_to_proto("lease", lease)
    if lease_expires_at is not None:
        return lease_to_proto("lease_expires_at", lease_expires_at)
    if required:
        raise invalid_argument("lease", "is required")
    return None


def _run_ids(value: object) -> list[str]:
    """A collection of run ids as sent: a list or tuple in its order, a set
    sorted; duplicates and the count limit are the server's rules."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise invalid_argument(
            "run_ids", f"must be a collection of run ids, got {type(value).__name__}"
        )
    ids = [check_required_text("run_ids", run_id) for run_id in value]
    return ids if isinstance(value, (list, tuple)) else sorted(ids)


class CoordinationMethods(Connection):
    """The part-2 methods of GrpcRunStore."""

    async def create_thread_operation(
        self,
        run_id: str,
        *,
        thread_id: str,
        owner_worker_id: str,
        lease: LeaseInput | None = None,
        lease_expires_at: LeaseInput | None = None,
        operation_kind: str = "run",
        multitask_strategy: str = "reject",
        assistant_id: str | None = None,
        user_id: str | None | AutoUser = AUTO,
        model_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        created_at: str | datetime | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        idempotency_key: str | None = None,
        follow_up_to_run_id: str | None = None,
    ) -> dict[str, Any]:
        """Admits a new operation on the thread in one atomic step under its
        multitask strategy: ``{"run": new row, "taken_over": [rows]}``.

        Raises ThreadConflictError when the thread is busy (reject, or a live
        lease under interrupt / rollback), IdempotencyConflictError (with the
        existing row) when the key is held, AlreadyExistsError when the
        run_id is taken by a different operation. A retry of an admission
        whose answer was lost answers the stored row.
        """
        request = pb.CreateThreadOperationRequest(
            run_id=check_required_text("run_id", run_id),
            thread_id=check_required_text("thread_id", thread_id),
            owner_worker_id=check_required_text("owner_worker_id", owner_worker_id),
            lease=_lease(lease, lease_expires_at, required=False),
            operation_kind=kind_to_proto("operation_kind", operation_kind),
            multitask_strategy=strategy_to_proto("multitask_strategy", multitask_strategy),
            assistant_id=check_text("assistant_id", assistant_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
            model_name=check_model_name(model_name),
            metadata=struct_from_dict(json_object("metadata", metadata)),
            kwargs=struct_from_dict(json_object("kwargs", kwargs)),
            created_at=None if created_at is None else timestamp_to_proto(created_at, "created_at"),
            grace_seconds=check_grace_seconds("grace_seconds", grace_seconds),
            idempotency_key=check_text("idempotency_key", idempotency_key),
            follow_up_to_run_id=check_text("follow_up_to_run_id", follow_up_to_run_id),
        )
        response: pb.CreateThreadOperationResponse = await self._invoke(
            "CreateThreadOperation", request
        )
        return {
            "run": run_from_proto(response.run),
            "taken_over": [run_from_proto(run) for run in response.taken_over],
        }

    async def start_run(self, run_id: str) -> bool:
        """pending → running: True when the row was pending; False when it is
        missing or no longer pending (a cancelled or taken-over run stays so).

        One attempt, never retried: after UNAVAILABLE, ``get`` the row (running
        and owned by you means it started)."""
        request = pb.StartRunRequest(run_id=check_required_text("run_id", run_id))
        response: pb.StartRunResponse = await self._invoke("StartRun", request)
        return response.started

    async def renew_lease(
        self,
        run_id: str,
        *,
        owner_worker_id: str,
        lease: LeaseInput | None = None,
        lease_expires_at: LeaseInput | None = None,
    ) -> dict[str, Any]:
        """Extends the lease of an active run the caller owns, and reads the
        recorded cancel request in the same step: ``{"renewed": bool,
        "cancel_action": "interrupt" | "rollback" | None}``."""
        response = await self._renew(run_id, owner_worker_id, lease, lease_expires_at)
        return {
            "renewed": response.renewed,
            "cancel_action": action_from_proto(response.cancel_action),
        }

    async def update_lease(
        self,
        run_id: str,
        *,
        owner_worker_id: str,
        lease: LeaseInput | None = None,
        lease_expires_at: LeaseInput | None = None,
    ) -> bool:
        """renew_lease answering only whether it applied."""
        response = await self._renew(run_id, owner_worker_id, lease, lease_expires_at)
        return response.renewed

    async def _renew(
        self,
        run_id: str,
        owner_worker_id: str,
        lease: LeaseInput | None,
        lease_expires_at: LeaseInput | None,
    ) -> pb.RenewLeaseResponse:
        request = pb.RenewLeaseRequest(
            run_id=check_required_text("run_id", run_id),
            owner_worker_id=check_required_text("owner_worker_id", owner_worker_id),
            lease=_lease(lease, lease_expires_at, required=True),
        )
        response: pb.RenewLeaseResponse = await self._invoke("RenewLease", request)
        return response

    async def request_cancel(self, run_id: str, *, action: str) -> str | None:
        """Records the first cancel request (interrupt or rollback) of an active
        run and answers the recorded action; None for a missing or finished run."""
        request = pb.RequestCancelRequest(
            run_id=check_required_text("run_id", run_id), action=action_to_proto("action", action)
        )
        response: pb.RequestCancelResponse = await self._invoke("RequestCancel", request)
        return action_from_proto(response.cancel_action)

    async def finalize_if_not_cancelled(
        self,
        run_id: str,
        *,
        status: str,
        error: str | None = None,
        stop_reason: str | None = None,
    ) -> dict[str, Any]:
        """Ends an active run unless a cancel is recorded, in one atomic step:
        ``{"finalized": bool, "cancel_action": the recorded action or None}``.

        One attempt, never retried: after UNAVAILABLE, ``get`` the row (your
        target status means it was finalized)."""
        request = pb.FinalizeIfNotCancelledRequest(
            run_id=check_required_text("run_id", run_id),
            status=status_to_proto("status", status),
            error=check_text("error", error),
            stop_reason=check_text("stop_reason", stop_reason),
        )
        response: pb.FinalizeIfNotCancelledResponse = await self._invoke(
            "FinalizeIfNotCancelled", request
        )
        return {
            "finalized": response.finalized,
            "cancel_action": action_from_proto(response.cancel_action),
        }

    async def claim_for_takeover(
        self,
        run_id: str,
        *,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        error: str,
        stop_reason: str | None = None,
    ) -> bool:
        """Marks an active run whose lease expired past grace (or has none) as
        error; of several concurrent claimers exactly one gets True.

        One attempt, never retried: after UNAVAILABLE, ``get`` the row (status
        error with your own ``error`` text, naming the worker, means you won)."""
        request = pb.ClaimForTakeoverRequest(
            run_id=check_required_text("run_id", run_id),
            grace_seconds=check_grace_seconds("grace_seconds", grace_seconds),
            error=check_required_text("error", error),
            stop_reason=check_text("stop_reason", stop_reason),
        )
        response: pb.ClaimForTakeoverResponse = await self._invoke("ClaimForTakeover", request)
        return response.claimed

    async def list_inflight_with_expired_lease(
        self,
        *,
        before: str | datetime | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
    ) -> list[dict[str, Any]]:
        """Active, unqueued rows of every kind created at or before ``before``
        (default now) whose lease expired past grace or is None, oldest first;
        read in pages of WALK_PAGE_SIZE."""
        request = pb.ListInflightWithExpiredLeaseRequest(
            before=None if before is None else timestamp_to_proto(before, "before"),
            grace_seconds=check_grace_seconds("grace_seconds", grace_seconds),
        )
        return await walk_runs(self._invoke, "ListInflightWithExpiredLease", request)

    async def claim_next_run(
        self,
        *,
        owner_worker_id: str,
        lease: LeaseInput | None = None,
        lease_expires_at: LeaseInput | None = None,
        thread_id: str | None = None,
    ) -> dict[str, Any] | None:
        """The oldest queued run on a free thread (of ``thread_id`` when
        given), now running, owned by the caller with the lease; None: none.

        One attempt, never retried: a repeat would claim a second run. After
        UNAVAILABLE a run may be running under your id unseen; its lease
        expires and a sweep takes it over."""
        request = pb.ClaimNextRunRequest(
            owner_worker_id=check_required_text("owner_worker_id", owner_worker_id),
            lease=_lease(lease, lease_expires_at, required=True),
            thread_id=check_text("thread_id", thread_id),
        )
        response: pb.ClaimNextRunResponse = await self._invoke("ClaimNextRun", request)
        return run_from_proto(response.run) if response.HasField("run") else None

    async def delete_thread_operation(self, run_id: str, *, user_id: str | None) -> None:
        """delete() with the owner recorded at admission (None: no filter), so
        releasing a thread's slot never depends on the caller's context."""
        request = pb.DeleteRequest(
            run_id=check_required_text("run_id", run_id), user_id=check_text("user_id", user_id)
        )
        await self._invoke("Delete", request)

    async def get_many_by_thread(
        self,
        thread_id: str,
        run_ids: Iterable[str],
        *,
        user_id: str | None | AutoUser = AUTO,
    ) -> dict[str, dict[str, Any]]:
        """The visible runs (operation kind run) of the thread among ``run_ids``
        (at most 10000), keyed by run_id; an empty collection answers {}."""
        request = pb.GetManyByThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            run_ids=_run_ids(run_ids),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        response: pb.GetManyByThreadResponse = await self._invoke("GetManyByThread", request)
        return {run_id: run_from_proto(response.runs[run_id]) for run_id in sorted(response.runs)}

    async def list_successful_regenerate_sources(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO
    ) -> list[str]:
        """The distinct non-empty ``metadata.regenerate_from_run_id`` values of
        the thread's visible success runs, sorted; the whole thread, no limit."""
        request = pb.ListSuccessfulRegenerateSourcesRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        response: pb.ListSuccessfulRegenerateSourcesResponse = await self._invoke(
            "ListSuccessfulRegenerateSources", request
        )
        return list(response.run_ids)

    async def list_edit_regenerate_runs(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO
    ) -> list[dict[str, Any]]:
        """The thread's visible runs whose ``metadata.replay_kind`` is "edit" and
        whose ``metadata.regenerate_from_run_id`` is a non-empty string, oldest first."""
        request = pb.ListEditRegenerateRunsRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
        )
        response: pb.ListEditRegenerateRunsResponse = await self._invoke(
            "ListEditRegenerateRuns", request
        )
        return [run_from_proto(run) for run in response.runs]
