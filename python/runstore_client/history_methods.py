"""GrpcRunStore's history, accounting and retention (docs/contract.md, "History").

One RPC a method; the ``*_page`` methods answer one keyset page
(``{"items", "next_page_token", "has_more"}``: pass ``next_page_token`` as
``page_token`` for the next), ``search_runs`` and ``list_threads`` are async
generators that fetch the next page when the caller reaches it. Every one is
retried on UNAVAILABLE like the other idempotent calls; the timeout applies
to each page's request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from .arguments import check_bool, check_required_text, check_text
from .connection import Connection
from .coordination import DEFAULT_GRACE_SECONDS, check_grace_seconds
from .gen.runstore.v1 import run_store_pb2 as pb
from .history import (
    Page,
    each_item,
    RunStats,
    ThreadSummary,
    page_fields,
    run_page,
    search_request,
    stats_from_proto,
    thread_page,
)
from .owner import AUTO, AutoUser, resolve_user_id
from .timestamps import timestamp_to_proto

__all__ = ["HistoryMethods"]

Instant = str | datetime
Record = dict[str, Any]


def _instant(value: Instant | None, field: str) -> Any:
    return None if value is None else timestamp_to_proto(value, field)


class HistoryMethods(Connection):
    """The history methods of GrpcRunStore."""

    async def list_by_thread_page(
        self,
        thread_id: str,
        *,
        user_id: str | None | AutoUser = AUTO,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Record]:
        """A page of list_by_thread's rows, newest first (page_size 1-1000, default 100)."""
        request = pb.ListByThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
            **page_fields(page_size, page_token),
        )
        return run_page(await self._invoke("ListByThread", request))

    async def list_pending_page(
        self,
        *,
        before: Instant | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Record]:
        """A page of list_pending's rows, oldest first; ``before`` unset is the
        first page's now, kept by the token."""
        request = pb.ListPendingRequest(
            before=_instant(before, "before"), **page_fields(page_size, page_token)
        )
        return run_page(await self._invoke("ListPending", request))

    async def list_inflight_page(
        self,
        *,
        before: Instant | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Record]:
        """A page of list_inflight's rows, oldest first."""
        request = pb.ListInflightRequest(
            before=_instant(before, "before"), **page_fields(page_size, page_token)
        )
        return run_page(await self._invoke("ListInflight", request))

    async def list_inflight_with_expired_lease_page(
        self,
        *,
        before: Instant | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Record]:
        """A page of list_inflight_with_expired_lease's rows, oldest first."""
        request = pb.ListInflightWithExpiredLeaseRequest(
            before=_instant(before, "before"),
            grace_seconds=check_grace_seconds("grace_seconds", grace_seconds),
            **page_fields(page_size, page_token),
        )
        return run_page(await self._invoke("ListInflightWithExpiredLease", request))

    async def search_runs_page(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        thread_id: str | None = None,
        statuses: list[str] | tuple[str, ...] | None = None,
        assistant_id: str | None = None,
        model_name: str | None = None,
        operation_kinds: list[str] | tuple[str, ...] | None = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Record]:
        """A page of the runs matching every given filter, across threads,
        newest first. ``statuses`` / ``operation_kinds``: any of (kinds
        default to runs only); ``created_after`` inclusive, ``created_before``
        exclusive; ``metadata``: top-level keys equal to these values (at most 16)."""
        request = search_request(
            user_id=resolve_user_id(user_id),
            thread_id=thread_id,
            statuses=statuses,
            assistant_id=assistant_id,
            model_name=model_name,
            operation_kinds=operation_kinds,
            created_after=created_after,
            created_before=created_before,
            metadata=metadata,
        )
        for name, value in page_fields(page_size, page_token).items():
            setattr(request, name, value)
        return run_page(await self._invoke("SearchRuns", request))

    def search_runs(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        thread_id: str | None = None,
        statuses: list[str] | tuple[str, ...] | None = None,
        assistant_id: str | None = None,
        model_name: str | None = None,
        operation_kinds: list[str] | tuple[str, ...] | None = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Record]:
        """Every run search_runs_page finds, newest first, fetched a page at a
        time as the caller reaches it: ``async for run in store.search_runs(...)``."""
        filters: dict[str, Any] = {
            "user_id": resolve_user_id(user_id),
            "thread_id": thread_id,
            "statuses": statuses,
            "assistant_id": assistant_id,
            "model_name": model_name,
            "operation_kinds": operation_kinds,
            "created_after": created_after,
            "created_before": created_before,
            "metadata": metadata,
        }
        return each_item(
            lambda token: self.search_runs_page(**filters, page_size=page_size, page_token=token)
        )

    async def get_run_stats(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
        utc_offset: str | None = None,
    ) -> RunStats:
        """Counts and token totals of the runs (kind run) in all and per local
        day; ``utc_offset`` "+HH:MM" / "-HH:MM" (default "+00:00") sets where a day starts."""
        request = pb.GetRunStatsRequest(
            user_id=check_text("user_id", resolve_user_id(user_id)),
            created_after=_instant(created_after, "created_after"),
            created_before=_instant(created_before, "created_before"),
            utc_offset=check_text("utc_offset", utc_offset) or "",
        )
        return stats_from_proto(await self._invoke("GetRunStats", request))

    async def list_threads_page(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ThreadSummary]:
        """A page of the threads with visible runs, most recent activity first."""
        request = pb.ListThreadsRequest(
            user_id=check_text("user_id", resolve_user_id(user_id)),
            **page_fields(page_size, page_token),
        )
        return thread_page(await self._invoke("ListThreads", request))

    def list_threads(
        self, *, user_id: str | None | AutoUser = AUTO, page_size: int | None = None
    ) -> AsyncIterator[ThreadSummary]:
        """Every thread list_threads_page finds, fetched a page at a time. A
        thread whose activity changes during the walk moves: it may come
        twice or not at all."""
        user = resolve_user_id(user_id)
        return each_item(
            lambda token: self.list_threads_page(
                user_id=user, page_size=page_size, page_token=token
            )
        )

    async def delete_thread(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO, force: bool = False
    ) -> int:
        """Removes the thread's rows of every kind (only ``user_id``'s when
        set) in bounded batches; answers how many this call removed. Refused
        with FailedPreconditionError while an operation is pending or running
        on the thread, unless ``force``. Retried on UNAVAILABLE: after a
        retry the count leaves out rows a lost attempt removed."""
        request = pb.DeleteThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", resolve_user_id(user_id)),
            force=check_bool("force", force),
        )
        response: pb.DeleteThreadResponse = await self._invoke("DeleteThread", request)
        return response.deleted_runs
