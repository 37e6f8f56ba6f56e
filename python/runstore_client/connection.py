"""The connection under GrpcRunStore: options, the channel, one RPC with retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Any, Literal, Self

import grpc
from google.protobuf.message import Message

from .call_gate import CallGate, gate_error
from .conflicts import conflict_from_rpc_error, idempotency_reference, status_details
from .convert import run_from_proto
from .errors import IdempotencyConflictError, RunStoreError, from_rpc_error
from .gen.runstore.v1 import run_store_pb2 as pb
from .gen.runstore.v1 import run_store_pb2_grpc as pb_grpc
from .options import (
    DEFAULT_CALL_QUEUE_TIMEOUT,
    DEFAULT_KEEPALIVE_SECONDS,
    DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_QUEUED_CALLS,
    DEFAULT_MAX_REQUEST_BYTES,
    TlsOptions,
    bearer_metadata,
    check_call_queue_timeout,
    check_channel_limits,
    check_max_concurrent_calls,
    check_max_queued_calls,
    check_timeout,
    open_channel,
)
from .retry import SINGLE_ATTEMPT_RPCS, RetryPolicy, call_with_retry, retry_policy
from .targets import channel_target
from .tls_refusal import CertificateRefusals
from .tracing import client_span

__all__ = ["Connection"]


class Connection:
    """Reaches a RunStore server: the options of GrpcRunStore's constructor,
    a channel opened on first use in the running event loop, and ``_invoke``,
    which runs one RPC with the token, retrying UNAVAILABLE within the
    timeout (the RPCs in retry.SINGLE_ATTEMPT_RPCS only after an overload
    refusal) and turning
    failures into RunStoreError subclasses.
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
        """Configures the store; the connection opens on the first call.

        - ``target``: "host:port", any gRPC target, or "http(s)://host:port";
          or several replicas: a list of "host:port" (IP addresses), or a
          multi-address target ("ipv4:10.0.0.1:50051,10.0.0.2:50051"), over
          which calls go round robin (targets.py; docs/topologies.md).
        - ``token``: sent as ``authorization: Bearer <token>`` on every call.
        - ``tls``: TLS / mutual TLS settings; None means plaintext (unless
          the target is https://).
        - ``timeout``: seconds each call may take in all, retries and their
          sleeps included; None for no deadline.
        - ``retry``: the UNAVAILABLE retry policy; None for the default (4
          attempts, 50 ms doubling to 2 s, full jitter), False for one attempt.
          start_run, claim_next_run, finalize_if_not_cancelled and
          claim_for_takeover make one attempt after a plain UNAVAILABLE:
          their answer to a repeat is not their first answer
          (retry.SINGLE_ATTEMPT_RPCS). After the server's overload refusal
          (a retry hint: refused before running) every call is repeated,
          sleeping at least the hint (retry_info.py).
        - ``max_request_bytes``: larger requests fail here with
          RESOURCE_EXHAUSTED instead of being sent (default 4 MiB, the
          server's default limit).
        - ``keepalive_seconds``: HTTP/2 PING interval; 0 turns PINGs off.
        - ``channel_options``: extra gRPC channel arguments, passed as given.
        - ``max_concurrent_calls``: calls on the wire at once (default 100,
          the server's default MAX_CONCURRENT_STREAMS); more wait in the
          store, in order, within their timeout, ``max_queued_calls`` and
          ``call_queue_timeout`` (call_gate.py). Watches are not counted.
        - ``max_queued_calls``: calls that may wait for a place (default
          1000, None: any number); one more fails at once with UNAVAILABLE,
          never sent and not repeated by ``retry`` (the repeat would join
          the same queue), so a saturated server or connection shows as
          refusals rather than as a backlog in the store growing until
          deadlines expire. The TypeScript SDK's maxQueuedCalls (1000).
        - ``call_queue_timeout``: seconds a call may wait for a place
          (default None: its timeout alone); past it the call fails as one
          past ``max_queued_calls`` does. For a caller with a latency
          budget, at the cost of refusing part of a burst when the server
          is slow. The TypeScript SDK's callQueueTimeoutMs.
        """
        channel = channel_target(target, tls, channel_options)
        self._target, self._tls = channel.target, channel.tls
        self._refusals = CertificateRefusals(channel.first_address, self._tls)
        self._metadata = bearer_metadata(token)
        self._timeout = check_timeout(timeout)
        self._retry = retry_policy(retry)
        check_channel_limits(max_request_bytes, keepalive_seconds)
        self._max_request_bytes = max_request_bytes
        self._keepalive_seconds = keepalive_seconds
        self._max_concurrent_calls = check_max_concurrent_calls(max_concurrent_calls)
        self._call_queue_timeout = check_call_queue_timeout(call_queue_timeout)
        self._max_queued_calls = check_max_queued_calls(max_queued_calls)
        self._gate = self._new_gate()
        self._channel_options = channel.options + tuple(channel_options)
        self._channel: grpc.aio.Channel | None = None
        # The generated stub is untyped; _invoke reaches its methods by name.
        self._stub: Any = None
        self._closed = False
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _new_gate(self) -> CallGate:
        """A gate with this store's bounds (a new one per event loop)."""
        return CallGate(
            self._max_concurrent_calls, self._call_queue_timeout, self._max_queued_calls
        )

    async def close(self) -> None:
        """Closes the connection. Calls in flight, or sleeping before a retry,
        end with a RunStoreError of code CANCELLED; later calls fail the same way.
        """
        self._closed = True
        if self._stopped is not None:
            self._stopped.set()
        self._gate.close(gate_error(grpc.StatusCode.CANCELLED, "GrpcRunStore is closed"))
        channel, self._channel, self._stub = self._channel, None, None
        # A channel of another (finished) loop cannot be awaited here; it went with its loop.
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

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
            # Its waiting calls are futures of this loop, as the channel is.
            self._gate = self._new_gate()
        return self._stub

    async def _invoke(self, method: str, request: Message) -> Any:
        """Runs the RPC ``method`` with the token, retrying UNAVAILABLE within
        the timeout (one of SINGLE_ATTEMPT_RPCS only after an overload
        refusal); returns
        its response message. Requests are built before this, so bad input
        fails once, locally, without a round trip. A conflict (ABORTED /
        ALREADY_EXISTS) is answered once, never retried, and raised with its
        detail (conflicts.py). With OpenTelemetry, the call is a client span
        (tracing.py)."""
        rpc = getattr(self._open(), method)
        try:
            # One client span for the call, its retries included.
            with client_span(method) as trace_metadata:
                return await self._attempts(method, rpc, request, self._metadata + trace_metadata)
        except grpc.aio.AioRpcError as error:
            if self._closed:
                raise _closed_error() from error
            conflict = conflict_from_rpc_error(error, run_from_proto)
            reference = idempotency_reference(error)
            if conflict is None and reference is not None:
                conflict = await self._resolve_reference(error, reference)
            raise conflict or from_rpc_error(error) from error
        except asyncio.CancelledError:
            # close() cancels the calls in flight; a cancellation of the
            # caller's own task stays a CancelledError.
            task = asyncio.current_task()
            if self._closed and (task is None or task.cancelling() == 0):
                raise _closed_error() from None
            raise

    async def _attempts(
        self, method: str, rpc: Any, request: Message, metadata: tuple[tuple[str, str], ...]
    ) -> Any:
        """``rpc(request)`` with ``metadata``, retried as ``method``'s policy
        says; each attempt waits for a place on the wire (call_gate.py)
        within its timeout and the queue timeout, and leaves it when
        answered, before a retry's sleep."""
        # A partial, not a closure: a call waiting for a place keeps it, and
        # under a backlog of tens of thousands every object per call costs
        # the garbage collector (call_gate.py).
        return await call_with_retry(
            partial(self._attempt, self._gate, rpc, request, metadata),
            timeout=self._timeout,
            policy=self._retry,
            stopped=self._stopped,
            idempotent=method not in SINGLE_ATTEMPT_RPCS,
        )

    async def _attempt(
        self,
        gate: CallGate,
        rpc: Any,
        request: Message,
        metadata: tuple[tuple[str, str], ...],
        timeout: float | None,
    ) -> Any:
        """One attempt once ``gate`` lets it on the wire, with what is left
        of ``timeout`` after the wait; the place is freed when it is answered."""
        began = time.monotonic()
        await gate.enter(timeout)
        try:
            left = None if timeout is None else timeout - (time.monotonic() - began)
            return await rpc(request, timeout=left, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            failure = error
        finally:
            gate.leave()
        # Off the wire by now: a refused client certificate is probed for
        # without holding a place, and raised from here is never retried.
        refusal = await self._refusals.refusal(failure)
        if refusal is not None:
            raise refusal from failure
        raise failure

    async def _resolve_reference(
        self, error: grpc.aio.AioRpcError, run_id: str
    ) -> RunStoreError | None:
        """The idempotency conflict with its whole row, read with Get. None
        when the row is gone by now or no longer holds the key the reference
        names (it is not the conflict's row): the caller gets a plain
        ALREADY_EXISTS."""
        key = _referenced_key(error)
        response = await self._invoke("Get", pb.GetRequest(run_id=run_id))
        if not key or not response.HasField("run") or response.run.idempotency_key != key:
            return None
        existing = run_from_proto(response.run)
        return IdempotencyConflictError(error.code(), error.details() or "", existing=existing)


def _referenced_key(error: grpc.aio.AioRpcError) -> str:
    """The idempotency_key of the reference an idempotency conflict carries;
    "" when it has none (keys are 1-255 characters)."""
    conflict = pb.IdempotencyConflict()
    for detail in status_details(error):
        if detail.Unpack(conflict):
            return str(conflict.existing.idempotency_key)
    return ""


def _closed_error() -> RunStoreError:
    return RunStoreError(grpc.StatusCode.CANCELLED, "GrpcRunStore is closed")
