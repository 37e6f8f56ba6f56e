"""GrpcRunStore: the Python RunStore interface over the RunStore gRPC service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import grpc
from google.protobuf.message import Message

from .arguments import (
    COUNTER_FIELDS,
    check_bool,
    check_counter,
    check_limit,
    check_required_text,
    check_text,
)
from .base import choose_base
from .convert import run_from_proto, status_to_proto, strategy_to_proto, usage_from_proto
from .errors import RunStoreError, from_rpc_error
from .gen.runstore.v1 import run_store_pb2 as pb
from .gen.runstore.v1 import run_store_pb2_grpc as pb_grpc
from .json_values import json_object, struct_from_dict
from .options import (
    DEFAULT_KEEPALIVE_SECONDS,
    DEFAULT_MAX_REQUEST_BYTES,
    TlsOptions,
    bearer_metadata,
    check_channel_limits,
    check_timeout,
    open_channel,
    split_target,
)
from .retry import RetryPolicy, call_with_retry, retry_policy
from .timestamps import timestamp_to_proto

__all__ = ["GrpcRunStore"]

#: An instant as callers hand it: ISO 8601 with any offset or none (UTC), or a datetime.
TimestampInput = str | datetime


class GrpcRunStore(choose_base()):  # type: ignore[misc]
    """A RunStore whose rows live in a RunStore server, reached over gRPC.

    It has exactly the methods and keyword arguments of the Python store
    interface (DeerFlow's ``RunStore``), so a runtime swaps its in-process
    store for this one without changing a call. Records come back as plain
    dicts with snake_case keys, timestamps as fixed-width UTC strings
    (``2026-01-01T00:00:00.000000Z``), metadata / kwargs as dicts.

    Errors are RunStoreError subclasses carrying the gRPC status code; bad
    input is InvalidArgumentError naming the field, whether this client or
    the server refused it. UNAVAILABLE is retried (see ``retry``) within
    the call's timeout. Use it as ``async with GrpcRunStore(...) as store``
    or call ``await store.close()`` when done.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: TlsOptions | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | Literal[False] | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Configures the store; the connection opens on the first call.

        - ``target``: "host:port", any gRPC target, or "http(s)://host:port".
        - ``token``: sent as ``authorization: Bearer <token>`` on every call.
        - ``tls``: TLS / mutual TLS settings; None means plaintext (unless
          the target is https://).
        - ``timeout``: seconds each call may take in all, retries and their
          sleeps included; None for no deadline.
        - ``retry``: the UNAVAILABLE retry policy; None for the default (4
          attempts, 50 ms doubling to 2 s, full jitter), False for one attempt.
        - ``max_request_bytes``: larger requests fail here with
          RESOURCE_EXHAUSTED instead of being sent (default 4 MiB, the
          server's default limit).
        - ``keepalive_seconds``: HTTP/2 PING interval; 0 turns PINGs off.
        - ``channel_options``: extra gRPC channel arguments, passed as given.
        """
        self._target, self._tls = split_target(target, tls)
        self._metadata = bearer_metadata(token)
        self._timeout = check_timeout(timeout)
        self._retry = retry_policy(retry)
        check_channel_limits(max_request_bytes, keepalive_seconds)
        self._max_request_bytes = max_request_bytes
        self._keepalive_seconds = keepalive_seconds
        self._channel_options = tuple(channel_options)
        self._channel: grpc.aio.Channel | None = None
        # The generated stub is untyped; _invoke reaches its methods by name.
        self._stub: Any = None
        self._closed = False
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------

    async def close(self) -> None:
        """Closes the connection. Calls in flight, or sleeping before a retry,
        end with a RunStoreError of code CANCELLED; later calls fail the same way.
        """
        self._closed = True
        if self._stopped is not None:
            self._stopped.set()
        channel, self._channel, self._stub = self._channel, None, None
        # A channel of another (finished) loop cannot be awaited here; it went with its loop.
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()

    async def __aenter__(self) -> GrpcRunStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the store interface -----------------------------------------------

    async def put(
        self,
        run_id: str,
        *,
        thread_id: str,
        assistant_id: str | None = None,
        user_id: str | None = None,
        model_name: str | None = None,
        status: str = "pending",
        multitask_strategy: str = "reject",
        metadata: dict[str, Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        error: str | None = None,
        created_at: TimestampInput | None = None,
    ) -> None:
        """Upsert: inserts the run, or overwrites its descriptive fields
        (created_at, the eight counters and both messages are kept; an
        omitted optional becomes None / {})."""
        request = pb.PutRequest(
            run_id=check_required_text("run_id", run_id),
            thread_id=check_required_text("thread_id", thread_id),
            assistant_id=check_text("assistant_id", assistant_id),
            user_id=check_text("user_id", user_id),
            model_name=check_text("model_name", model_name),
            status=status_to_proto("status", status),
            multitask_strategy=strategy_to_proto("multitask_strategy", multitask_strategy),
            metadata=struct_from_dict(json_object("metadata", metadata)),
            kwargs=struct_from_dict(json_object("kwargs", kwargs)),
            error=check_text("error", error),
            created_at=None if created_at is None else timestamp_to_proto(created_at, "created_at"),
        )
        await self._invoke("Put", request)

    async def get(self, run_id: str, *, user_id: str | None = None) -> dict[str, Any] | None:
        """The run, or None when it is missing or not visible to ``user_id``."""
        request = pb.GetRequest(
            run_id=check_required_text("run_id", run_id), user_id=check_text("user_id", user_id)
        )
        response: pb.GetResponse = await self._invoke("Get", request)
        return run_from_proto(response.run) if response.HasField("run") else None

    async def list_by_thread(
        self, thread_id: str, *, user_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The thread's runs visible to ``user_id``, newest first, at most ``limit``."""
        request = pb.ListByThreadRequest(
            thread_id=check_required_text("thread_id", thread_id),
            user_id=check_text("user_id", user_id),
            limit=check_limit("limit", limit),
        )
        response: pb.ListByThreadResponse = await self._invoke("ListByThread", request)
        return [run_from_proto(run) for run in response.runs]

    async def update_status(
        self, run_id: str, status: str, *, error: str | None = None
    ) -> bool | None:
        """Sets the status (and error, when given): True when the run exists,
        False when it does not, None when the server cannot tell."""
        request = pb.UpdateStatusRequest(
            run_id=check_required_text("run_id", run_id),
            status=status_to_proto("status", status),
            error=check_text("error", error),
        )
        response: pb.UpdateStatusResponse = await self._invoke("UpdateStatus", request)
        return response.updated.value if response.HasField("updated") else None

    async def delete(self, run_id: str, *, user_id: str | None = None) -> None:
        """Removes the run; a no-op when it is missing or not visible to ``user_id``."""
        request = pb.DeleteRequest(
            run_id=check_required_text("run_id", run_id), user_id=check_text("user_id", user_id)
        )
        await self._invoke("Delete", request)

    async def update_model_name(self, run_id: str, model_name: str | None) -> None:
        """Sets the (trimmed, cut to 128) model name; a no-op when the run is missing."""
        request = pb.UpdateModelNameRequest(
            run_id=check_required_text("run_id", run_id),
            model_name=check_text("model_name", model_name),
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
    ) -> bool | None:
        """Records the run's end: status and all eight counters always; the
        messages (cut to 2000) and error only when given. True / False / None
        as update_status."""
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
        request = pb.UpdateRunCompletionRequest(
            run_id=check_required_text("run_id", run_id),
            status=status_to_proto("status", status),
            last_ai_message=check_text("last_ai_message", last_ai_message),
            first_human_message=check_text("first_human_message", first_human_message),
            error=check_text("error", error),
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
    ) -> None:
        """A best-effort snapshot of a running run: writes only the fields
        given (0 is given), only while the run's status is running."""
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
        request = pb.UpdateRunProgressRequest(
            run_id=check_required_text("run_id", run_id),
            last_ai_message=check_text("last_ai_message", last_ai_message),
            first_human_message=check_text("first_human_message", first_human_message),
            **{
                name: check_counter(name, v)
                for name, v in zip(COUNTER_FIELDS, counters)
                if v is not None
            },
        )
        await self._invoke("UpdateRunProgress", request)

    async def list_pending(self, *, before: TimestampInput | None = None) -> list[dict[str, Any]]:
        """Pending runs created at or before ``before`` (default now), oldest first, all users."""
        request = pb.ListPendingRequest(before=_optional_timestamp(before, "before"))
        response: pb.ListPendingResponse = await self._invoke("ListPending", request)
        return [run_from_proto(run) for run in response.runs]

    async def list_inflight(self, *, before: TimestampInput | None = None) -> list[dict[str, Any]]:
        """Pending and running runs created at or before ``before``, oldest first, all users."""
        request = pb.ListInflightRequest(before=_optional_timestamp(before, "before"))
        response: pb.ListInflightResponse = await self._invoke("ListInflight", request)
        return [run_from_proto(run) for run in response.runs]

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

    # -- plumbing ----------------------------------------------------------

    def _open(self) -> Any:
        """The stub, opening the channel on first use inside the running loop.

        A grpc.aio channel belongs to the event loop it was made in, so a
        store created before the loop runs (at import or configuration time)
        works, and one used from a new loop (a second ``asyncio.run``) opens
        a new connection there.
        """
        if self._closed:
            raise _closed_error()
        loop = asyncio.get_running_loop()
        if self._stub is None or self._loop is not loop:
            self._loop = loop
            self._channel = open_channel(
                self._target,
                self._tls,
                max_request_bytes=self._max_request_bytes,
                keepalive_seconds=self._keepalive_seconds,
                extra_options=self._channel_options,
            )
            self._stub = pb_grpc.RunStoreServiceStub(self._channel)  # type: ignore[no-untyped-call]
            self._stopped = asyncio.Event()
        return self._stub

    async def _invoke(self, method: str, request: Message) -> Any:
        """Runs the RPC ``method`` with the token, retrying UNAVAILABLE within
        the timeout; returns its response message. Requests are built before
        this, so bad input fails once, locally, without a round trip."""
        rpc = getattr(self._open(), method)

        async def attempt(timeout: float | None) -> Any:
            return await rpc(request, timeout=timeout, metadata=self._metadata)

        try:
            return await call_with_retry(
                attempt, timeout=self._timeout, policy=self._retry, stopped=self._stopped
            )
        except grpc.aio.AioRpcError as error:
            if self._closed:
                raise _closed_error() from error
            raise from_rpc_error(error) from error
        except asyncio.CancelledError:
            # close() cancels the calls in flight; a cancellation of the
            # caller's own task stays a CancelledError.
            task = asyncio.current_task()
            if self._closed and (task is None or task.cancelling() == 0):
                raise _closed_error() from None
            raise


def _closed_error() -> RunStoreError:
    return RunStoreError(grpc.StatusCode.CANCELLED, "GrpcRunStore is closed")


def _optional_timestamp(value: TimestampInput | None, field: str) -> Any:
    return None if value is None else timestamp_to_proto(value, field)
