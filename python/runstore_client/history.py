"""History, accounting and retention (docs/contract.md, "History"): the
result types of the history methods, their requests and answers on the wire,
and the page walk of the drop-in lists.

Answers are plain dicts like every record of GrpcRunStore, typed here as
TypedDicts: a page is ``{"items", "next_page_token", "has_more"}``, run
statistics and thread summaries are dicts with snake_case keys, timestamps in
the records' fixed-width UTC form.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypedDict, TypeVar

import grpc
from google.protobuf.message import Message

from .arguments import check_text
from .convert import run_from_proto, status_from_proto, status_to_proto
from .coordination import kind_to_proto
from .errors import RunStoreError, invalid_argument
from .gen.runstore.v1 import run_store_pb2 as pb
from .json_values import struct_from_dict
from .timestamps import format_timestamp, timestamp_to_proto

__all__ = [
    "THREAD_STATUSES",
    "WALK_PAGE_SIZE",
    "DayStats",
    "Page",
    "RunStats",
    "ThreadSummary",
    "TokenTotals",
    "each_item",
    "page_fields",
    "run_page",
    "search_request",
    "stats_from_proto",
    "thread_page",
    "walk_runs",
]

T = TypeVar("T")

#: Rows a page when a drop-in list walks pages. A run is typically 0.9-1.3 KB
#: on the wire, so a page is about 0.5-0.7 MiB, under 4 MiB (most gRPC
#: clients' default receive limit) for runs of up to ~8 KB; a page the server
#: refuses as over its response budget is asked again at half the size.
WALK_PAGE_SIZE = 500

#: The size sent for a page without one: the server's default, sent so that the first page pages.
_DEFAULT_PAGE_SIZE = 100
_INT32_MAX = 2**31 - 1

#: Thread statuses, in proto order.
THREAD_STATUSES: tuple[str, ...] = ("idle", "busy", "interrupted", "error")


class Page(TypedDict, Generic[T]):
    """One keyset page: its items, and the token of the next one."""

    items: list[T]
    #: None when has_more is False.
    next_page_token: str | None
    #: True when items after this page remained when it was read.
    has_more: bool


class TokenTotals(TypedDict):
    """Token counters summed over runs (cache_read_tokens from token_usage_by_model only)."""

    runs: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int


class DayStats(TypedDict):
    """One local day (in the request's UTC offset), ``date`` as YYYY-MM-DD."""

    date: str
    tokens: TokenTotals
    by_model: dict[str, TokenTotals]


class RunStats(TypedDict):
    """get_run_stats' answer: rows of kind run only, tokens of every status."""

    total_runs: int
    #: Statuses with runs only, in lifecycle order.
    by_status: dict[str, int]
    active_runs: int
    failed_runs: int
    tokens: TokenTotals
    by_model: dict[str, TokenTotals]
    #: Days that have runs, oldest first.
    days: list[DayStats]


class ThreadSummary(TypedDict):
    """One thread over its visible runs."""

    thread_id: str
    run_count: int
    latest_run_id: str
    latest_run_status: str
    latest_run_updated_at: str
    #: The latest updated_at over the visible runs: the listing's sort key.
    last_activity_at: str
    total_tokens: int
    #: One of THREAD_STATUSES.
    status: str


def page_fields(page_size: object, page_token: object) -> dict[str, Any]:
    """A page's request fields: the size always (so the first page pages),
    the token or "". The range 1-1000 is the server's rule and wording."""
    if page_size is None:
        size = _DEFAULT_PAGE_SIZE
    elif isinstance(page_size, int) and not isinstance(page_size, bool):
        size = int(page_size)
    else:
        size = _INT32_MAX + 1  # refused below, as the wire cannot carry it
    if abs(size) > _INT32_MAX:
        raise invalid_argument("page_size", "must be an integer from 1 to 1000")
    return {"page_size": size, "page_token": check_text("page_token", page_token) or ""}


def _page(items: list[T], response: Any) -> Page[T]:
    if response.has_more and not response.next_page_token:
        raise RunStoreError(
            grpc.StatusCode.INTERNAL, "server answered has_more without a next_page_token"
        )
    token = response.next_page_token if response.has_more else None
    return {"items": items, "next_page_token": token, "has_more": response.has_more}


def run_page(response: Any) -> Page[dict[str, Any]]:
    """A list answer (runs, next_page_token, has_more) as a page of records."""
    return _page([run_from_proto(run) for run in response.runs], response)


def thread_page(response: pb.ListThreadsResponse) -> Page[ThreadSummary]:
    """A ListThreads answer as a page of summaries."""
    return _page([_thread_from_proto(thread) for thread in response.threads], response)


def _names(field: str, value: object, convert: Callable[[str, object], Any]) -> list[Any]:
    """A list of enum names as proto values; a string or non-iterable is refused."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise invalid_argument(field, "must be a list")
    return [convert(f"{field}[{i}]", name) for i, name in enumerate(value)]


def _metadata_filter(value: object) -> Any:
    """Top-level keys and their scalar values, as a Struct; the key count is the server's rule."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid_argument("metadata", "must be an object of top-level keys and values")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        name = check_text("metadata key", key)
        scalar = isinstance(item, (str, bool)) or (
            isinstance(item, (int, float)) and math.isfinite(item)
        )
        if name is None or not scalar:
            raise invalid_argument(f"metadata.{key}", "must be a string, number or bool")
        checked[name] = check_text(f"metadata.{key}", item) if isinstance(item, str) else item
    return struct_from_dict(checked)


def _instant(value: object, field: str) -> Any:
    return None if value is None else timestamp_to_proto(value, field)


def search_request(
    *,
    user_id: object,
    thread_id: object,
    statuses: object,
    assistant_id: object,
    model_name: object,
    operation_kinds: object,
    created_after: object,
    created_before: object,
    metadata: object,
) -> pb.SearchRunsRequest:
    """A search as its request, without the page fields. Refused here is
    what the wire cannot carry; the filters' rules are the server's."""
    return pb.SearchRunsRequest(
        user_id=check_text("user_id", user_id),
        thread_id=check_text("thread_id", thread_id),
        statuses=_names("statuses", statuses, status_to_proto),
        assistant_id=check_text("assistant_id", assistant_id),
        model_name=check_text("model_name", model_name),
        operation_kinds=_names("operation_kinds", operation_kinds, kind_to_proto),
        created_after=_instant(created_after, "created_after"),
        created_before=_instant(created_before, "created_before"),
        metadata=_metadata_filter(metadata),
    )


def _totals(totals: pb.TokenTotals) -> TokenTotals:
    return {
        "runs": totals.runs,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
        "cache_read_tokens": totals.cache_read_tokens,
    }


def _by_model(entries: Mapping[str, pb.TokenTotals]) -> dict[str, TokenTotals]:
    return {model: _totals(entries[model]) for model in sorted(entries)}


def stats_from_proto(response: pb.GetRunStatsResponse) -> RunStats:
    """The GetRunStats answer as run statistics."""
    by_status: dict[str, int] = {}
    for entry in response.by_status:
        status = status_from_proto(entry.status)
        if status is None:
            raise RunStoreError(
                grpc.StatusCode.INTERNAL, f"server answered an unknown run status {entry.status}"
            )
        by_status[status] = entry.runs
    return {
        "total_runs": response.total_runs,
        "by_status": by_status,
        "active_runs": response.active_runs,
        "failed_runs": response.failed_runs,
        "tokens": _totals(response.tokens),
        "by_model": _by_model(response.by_model),
        "days": [
            {"date": day.date, "tokens": _totals(day.tokens), "by_model": _by_model(day.by_model)}
            for day in response.days
        ],
    }


def _thread_from_proto(thread: pb.ThreadSummary) -> ThreadSummary:
    latest = status_from_proto(thread.latest_run_status)
    known = 1 <= thread.status <= len(THREAD_STATUSES)
    if latest is None or not known:
        raise RunStoreError(grpc.StatusCode.INTERNAL, "server answered an unknown status")
    if not thread.HasField("latest_run_updated_at") or not thread.HasField("last_activity_at"):
        raise RunStoreError(grpc.StatusCode.INTERNAL, "server answered a thread without timestamps")
    return {
        "thread_id": thread.thread_id,
        "run_count": thread.run_count,
        "latest_run_id": thread.latest_run_id,
        "latest_run_status": latest,
        "latest_run_updated_at": format_timestamp(thread.latest_run_updated_at),
        "last_activity_at": format_timestamp(thread.last_activity_at),
        "total_tokens": thread.total_tokens,
        "status": THREAD_STATUSES[thread.status - 1],
    }


async def each_item(fetch_page: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """Every item of every page, fetching the next page (by its token) only
    when the caller reaches it."""
    token: str | None = None
    while True:
        page = await fetch_page(token)
        for item in page["items"]:
            yield item
        token = page["next_page_token"]
        if token is None:
            return


#: How a walk runs one RPC: GrpcRunStore's ``_invoke``.
Invoke = Callable[[str, Message], Awaitable[Any]]


async def walk_runs(
    invoke: Invoke,
    method: str,
    filters: Message,
    *,
    unpaged: Message | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Every row of the list ``method`` with ``filters``, WALK_PAGE_SIZE rows
    a page (at most ``limit``). A page refused as RESOURCE_EXHAUSTED is asked
    again at half the size. A server whose store cannot page (UNIMPLEMENTED
    on the first page) is asked once with ``unpaged`` (default: ``filters``
    alone, part 1's call); one that does not know the page fields (an older
    server) answers every row with has_more False, which ends the walk."""
    rows: list[dict[str, Any]] = []
    size, token = WALK_PAGE_SIZE, ""
    while limit is None or len(rows) < limit:
        page_size = size if limit is None else min(size, limit - len(rows))
        request = type(filters)()
        request.CopyFrom(filters)
        request.page_size, request.page_token = page_size, token  # type: ignore[attr-defined]
        try:
            response = await invoke(method, request)
        except RunStoreError as error:
            if error.code == grpc.StatusCode.UNIMPLEMENTED and token == "":
                answer = await invoke(method, filters if unpaged is None else unpaged)
                return [run_from_proto(run) for run in answer.runs]
            if error.code != grpc.StatusCode.RESOURCE_EXHAUSTED or page_size == 1:
                raise
            size = (page_size + 1) // 2
            continue
        page = run_page(response)
        rows.extend(page["items"])
        if page["next_page_token"] is None:
            break
        token = page["next_page_token"]
    return rows if limit is None else rows[:limit]
