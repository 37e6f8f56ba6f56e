"""DeerFlowRunStore.watch_runs: GrpcRunStore's live changes (../watch.py)
with DeerFlow's conventions: rows as DeerFlow's SQL store returns them,
``changed_at`` in DeerFlow's timestamp form, an omitted ``user_id`` resolved
by DeerFlow's own resolver."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from ..client import GrpcRunStore
from ..owner import AUTO, AutoUser, resolve_user_id
from ..watch import RunChangeEvent, WatchEvent
from .rows import deerflow_row, deerflow_timestamp

__all__ = ["DeerFlowWatch"]


class DeerFlowWatch:
    """watch_runs of DeerFlowRunStore, over a GrpcRunStore (``self._grpc``)."""

    _grpc: GrpcRunStore

    def watch_runs(
        self,
        *,
        user_id: str | None | AutoUser = AUTO,
        thread_id: str | None = None,
        statuses: Sequence[str] = (),
        active_only: bool = False,
        operation_kinds: Sequence[str] = (),
        cursor: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """GrpcRunStore.watch_runs, each change's run a DeerFlow row."""
        events = self._grpc.watch_runs(
            user_id=resolve_user_id(user_id, method_name="DeerFlowRunStore.watch_runs"),
            thread_id=thread_id,
            statuses=statuses,
            active_only=active_only,
            operation_kinds=operation_kinds,
            cursor=cursor,
        )
        return _deerflow_events(events)


async def _deerflow_events(events: AsyncIterator[WatchEvent]) -> AsyncIterator[WatchEvent]:
    """The events with DeerFlow's rows; closing this closes the watch under it."""
    try:
        async for event in events:
            if isinstance(event, RunChangeEvent):
                event = dataclasses.replace(
                    event,
                    run=deerflow_row(event.run),
                    changed_at=deerflow_timestamp(event.changed_at) or "",
                )
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]
