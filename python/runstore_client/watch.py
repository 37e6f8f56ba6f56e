"""GrpcRunStore.watch_runs: live changes (docs/contract.md, "Live changes").

``watch_runs`` is an async generator over WatchRuns calls. Each call's first
message is a heartbeat carrying the cursor the stream starts after; then
come the matching changes, and heartbeats while nothing matches. After
UNAVAILABLE, ABORTED (the stream fell behind the server's window) or a lost
connection it starts a new call from the last cursor it yielded, within the
store's retry policy (attempts counted since the last message received, its
backoff between them; with several replicas the next call goes round
robin), so the consumer sees one stream in which no change is lost or
repeated. Everything else (OutOfRangeError for a cursor the server's log no
longer holds or of another log, InvalidArgumentError, PERMISSION_DENIED) is
raised. The store's ``timeout`` does not apply: a watch runs until the
consumer stops. Leaving the loop closes the generator, which cancels the
call; ``async with contextlib.aclosing(store.watch_runs(...)) as events``
closes it at once rather than when the generator is collected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from .arguments import check_bool, check_text
from .connection import Connection, _closed_error
from .convert import run_from_proto, status_to_proto
from .coordination import kind_to_proto
from .errors import RunStoreError, UnavailableError, from_rpc_error
from .gen.runstore.v1 import run_store_pb2 as pb
from .history import _names
from .owner import AUTO, AutoUser, resolve_user_id
from .retry import _sleep, backoff
from .timestamps import format_timestamp
from .tracing import stream_span

__all__ = ["RUN_CHANGE_KINDS", "Heartbeat", "RunChangeEvent", "WatchEvent", "WatchMethods"]

#: What a change did to its row, in proto order.
RUN_CHANGE_KINDS: tuple[str, ...] = ("created", "updated", "deleted")

#: The codes after which a new call from the last cursor may mend the watch.
_RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


@dataclass(frozen=True)
class RunChangeEvent:
    """One committed change of one run, and the cursor to resume after it."""

    #: One of RUN_CHANGE_KINDS.
    kind: str
    #: The row after the change (for "deleted", the row as it was), as get() returns rows.
    run: dict[str, Any]
    #: The change's place in the store's change order: increasing, never reused.
    sequence: int
    #: When the change was recorded, in the records' fixed-width UTC form.
    changed_at: str
    #: The run matched the filter before this change and no longer does.
    left_filter: bool
    #: The sequence is not above the highest this generator already yielded
    #: (a change it delivered before). A correct server never sends one on the
    #: generator's own resumes; a consumer starting a new watch from an older
    #: cursor it stored tells changes it applied before by their sequence.
    repeated: bool
    #: Pass as ``cursor`` to a later watch_runs to resume after this change.
    cursor: str


@dataclass(frozen=True)
class Heartbeat:
    """A message without a change: the first of every call, then one while
    nothing matches, with a cursor past every change the server has seen."""

    cursor: str


#: What watch_runs yields.
WatchEvent = RunChangeEvent | Heartbeat


class WatchMethods(Connection):
    """GrpcRunStore.watch_runs."""

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
        """The changes of the runs matching every given filter, as they commit:
        ``async for event in store.watch_runs(thread_id=...)``. ``statuses``
        / ``operation_kinds``: any of (kinds default to runs only);
        ``active_only``: pending and running runs, and the change by which
        one leaves (``left_filter``); ``cursor``: start after an earlier
        event's cursor (None: from now). The filters are checked here,
        before anything is sent (InvalidArgumentError naming the field)."""
        request = pb.WatchRunsRequest(
            user_id=check_text("user_id", resolve_user_id(user_id)),
            thread_id=check_text("thread_id", thread_id),
            statuses=_names("statuses", statuses, status_to_proto),
            active_only=check_bool("active_only", active_only),
            operation_kinds=_names("operation_kinds", operation_kinds, kind_to_proto),
            cursor=check_text("cursor", cursor) or "",
        )
        return self._watch(request)

    async def _watch(self, request: pb.WatchRunsRequest) -> AsyncIterator[WatchEvent]:
        """Calls after calls from the last cursor yielded, while they fail resumably."""
        cursor = request.cursor
        highest: int | None = None
        failures = 0
        with stream_span("WatchRuns") as trace_metadata:
            while True:
                attempt = pb.WatchRunsRequest()
                attempt.CopyFrom(request)
                attempt.cursor = cursor
                call = self._open().WatchRuns(attempt, metadata=self._metadata + trace_metadata)
                failure: RunStoreError
                try:
                    async for message in call:
                        failures = 0
                        event = _event_of(message, highest)
                        if isinstance(event, RunChangeEvent) and not event.repeated:
                            highest = event.sequence
                        cursor = event.cursor
                        yield event
                    failure = UnavailableError(
                        grpc.StatusCode.UNAVAILABLE, "the server ended the watch stream"
                    )
                except grpc.aio.AioRpcError as error:
                    failure = await self._resumable(error)
                except asyncio.CancelledError:
                    # close() cancels the calls in flight; a cancellation of the
                    # consumer's own task stays a CancelledError.
                    task = asyncio.current_task()
                    if self._closed and (task is None or task.cancelling() == 0):
                        raise _closed_error() from None
                    raise
                finally:
                    call.cancel()
                failures += 1
                if failures >= self._retry.max_attempts:
                    raise failure
                if await _sleep(backoff(failures, self._retry), self._stopped):
                    raise _closed_error()

    async def _resumable(self, error: grpc.aio.AioRpcError) -> RunStoreError:
        """The error to raise once the attempts run out, when a new call may
        mend ``error``; raises at once (translated) when it may not."""
        if self._closed:
            raise _closed_error() from error
        refusal = await self._refusals.refusal(error)
        if refusal is not None:
            raise refusal from error
        if error.code() not in _RESUMABLE:
            raise from_rpc_error(error) from error
        return from_rpc_error(error)


def _event_of(message: pb.WatchRunsResponse, highest: int | None) -> WatchEvent:
    """A message as the event yielded; ``highest``: the highest sequence yielded so far."""
    if not message.cursor:
        raise _server_sent("a message without a cursor")
    if not message.HasField("change"):
        return Heartbeat(cursor=message.cursor)
    change = message.change
    if not 1 <= change.kind <= len(RUN_CHANGE_KINDS):
        raise _server_sent(f"a change of unknown kind {change.kind}")
    if not change.HasField("run") or not change.HasField("changed_at"):
        raise _server_sent("a change without its run or changed_at")
    return RunChangeEvent(
        kind=RUN_CHANGE_KINDS[change.kind - 1],
        run=run_from_proto(change.run),
        sequence=change.sequence,
        changed_at=format_timestamp(change.changed_at),
        left_filter=change.left_filter,
        repeated=highest is not None and change.sequence <= highest,
        cursor=message.cursor,
    )


def _server_sent(what: str) -> RunStoreError:
    return RunStoreError(grpc.StatusCode.INTERNAL, f"the server sent {what} in a WatchRuns stream")
