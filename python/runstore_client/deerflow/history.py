"""DeerFlowRunStore's history methods (docs/contract.md, "History").

GrpcRunStore's history methods with DeerFlow's conventions: rows as
DeerFlow's SQL store returns them, thread summaries with DeerFlow's
timestamps, an omitted ``user_id`` resolved by DeerFlow's own resolver, and
the thread delete under the name DeerFlow's store gives it, delete_by_thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ..client import GrpcRunStore
from ..coordination import DEFAULT_GRACE_SECONDS
from ..history import Page, RunStats, ThreadSummary, each_item
from ..owner import AUTO, AutoUser, resolve_user_id
from .rows import deerflow_row, deerflow_timestamp

__all__ = ["DeerFlowHistory"]

Row = dict[str, Any]
Instant = str | datetime
Names = list[str] | tuple[str, ...] | None
Metadata = dict[str, str | int | float | bool] | None


def _user(user_id: object, method: str) -> Any:
    return resolve_user_id(user_id, method_name=f"DeerFlowRunStore.{method}")


def _rows(page: Page[Row]) -> Page[Row]:
    return {**page, "items": [deerflow_row(record) for record in page["items"]]}


def _threads(page: Page[ThreadSummary]) -> Page[ThreadSummary]:
    items: list[ThreadSummary] = [
        {
            **thread,
            "latest_run_updated_at": deerflow_timestamp(thread["latest_run_updated_at"]) or "",
            "last_activity_at": deerflow_timestamp(thread["last_activity_at"]) or "",
        }
        for thread in page["items"]
    ]
    return {**page, "items": items}


class DeerFlowHistory:
    """The history methods of DeerFlowRunStore, over a GrpcRunStore (``self._grpc``)."""

    _grpc: GrpcRunStore

    async def list_by_thread_page(
        self,
        thread_id: str,
        *,
        user_id: str | None | AutoUser = AUTO,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Row]:
        """A page of list_by_thread's rows, newest first."""
        user = _user(user_id, "list_by_thread_page")
        return _rows(
            await self._grpc.list_by_thread_page(
                thread_id, user_id=user, page_size=page_size, page_token=page_token
            )
        )

    async def list_pending_page(
        self,
        *,
        before: Instant | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Row]:
        page = await self._grpc.list_pending_page(
            before=before, page_size=page_size, page_token=page_token
        )
        return _rows(page)

    async def list_inflight_page(
        self,
        *,
        before: Instant | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Row]:
        page = await self._grpc.list_inflight_page(
            before=before, page_size=page_size, page_token=page_token
        )
        return _rows(page)

    async def list_inflight_with_expired_lease_page(
        self,
        *,
        before: Instant | None = None,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Row]:
        page = await self._grpc.list_inflight_with_expired_lease_page(
            before=before, grace_seconds=grace_seconds, page_size=page_size, page_token=page_token
        )
        return _rows(page)

    async def search_runs_page(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        thread_id: str | None = None,
        statuses: Names = None,
        assistant_id: str | None = None,
        model_name: str | None = None,
        operation_kinds: Names = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
        metadata: Metadata = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Row]:
        """GrpcRunStore.search_runs_page with DeerFlow's rows."""
        page = await self._grpc.search_runs_page(
            user_id=_user(user_id, "search_runs_page"),
            thread_id=thread_id,
            statuses=statuses,
            assistant_id=assistant_id,
            model_name=model_name,
            operation_kinds=operation_kinds,
            created_after=created_after,
            created_before=created_before,
            metadata=metadata,
            page_size=page_size,
            page_token=page_token,
        )
        return _rows(page)

    def search_runs(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        thread_id: str | None = None,
        statuses: Names = None,
        assistant_id: str | None = None,
        model_name: str | None = None,
        operation_kinds: Names = None,
        created_after: Instant | None = None,
        created_before: Instant | None = None,
        metadata: Metadata = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Row]:
        """Every matching run, newest first, a page at a time:
        ``async for row in store.search_runs(...)``."""
        filters: dict[str, Any] = {
            "user_id": _user(user_id, "search_runs"),
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
        return await self._grpc.get_run_stats(
            user_id=_user(user_id, "get_run_stats"),
            created_after=created_after,
            created_before=created_before,
            utc_offset=utc_offset,
        )

    async def list_threads_page(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[ThreadSummary]:
        """GrpcRunStore.list_threads_page with DeerFlow's timestamps."""
        page = await self._grpc.list_threads_page(
            user_id=_user(user_id, "list_threads_page"), page_size=page_size, page_token=page_token
        )
        return _threads(page)

    def list_threads(
        self, *, user_id: str | None | AutoUser = AUTO, page_size: int | None = None
    ) -> AsyncIterator[ThreadSummary]:
        user = _user(user_id, "list_threads")
        return each_item(
            lambda token: self.list_threads_page(
                user_id=user, page_size=page_size, page_token=token
            )
        )

    async def delete_by_thread(
        self, thread_id: str, *, user_id: str | None | AutoUser = AUTO, force: bool = False
    ) -> int:
        """GrpcRunStore.delete_thread under DeerFlow's name: the number of rows
        removed. Unlike DeerFlow's SQL store it refuses (FailedPreconditionError)
        while an operation is active on the thread, unless ``force``."""
        user = _user(user_id, "delete_by_thread")
        return await self._grpc.delete_thread(thread_id, user_id=user, force=force)
