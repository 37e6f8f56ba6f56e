"""At most ``max_concurrent_calls`` calls of a store on the wire at once,
at most ``max_queued_calls`` waiting for a place, and none waiting longer
than ``call_queue_timeout``.

Why a limit: a server takes at most 100 calls at once on a connection (its
default MAX_CONCURRENT_STREAMS) and grpcio queues the rest inside the
channel, each as a live call. A caller on asyncio past its own capacity
(issue 18's capacity bench: 7,000 calls a second offered, 130,000
outstanding) then spent its event loop starting grpcio calls that could not
go out, and Python's full garbage collections over them (47 tracked objects
per queued call) took seconds, while the answers to the 100 on the wire
waited for the loop: it answered 186 calls a second. Waiting here, in
arrival order, a call costs a future (20 tracked objects per call, the
caller's frames included) and goes to grpcio only when one on the wire has
ended.

Why bounds on the wait: a backlog waiting in the client is a queue that
grows until deadlines expire (the capacity bench then saw a median of
2.3 s with the server refusing nothing), and the server cannot refuse what
it never sees. So a call that finds ``max_queued_calls`` waiting already
fails at once, and one that found no place within ``call_queue_timeout``
(when set) fails then, with UNAVAILABLE (``BacklogRefusal``; the caller
gets an UnavailableError), never sent; the retry policy does not repeat
it: a repeat would join the same queue, and repeating them cut the rate
answered and raised its p99 (bench/README.md, "The client's backlog"). The
default bounds the count (1000), not the time: a burst of calls at once (a
worker recovering its runs, 500 puts of a test) waits its turn however slow
the server is that day, where a 200 ms bound refused part of one on a busy
machine. A call's own timeout, when it comes first, still ends the wait
with DEADLINE_EXCEEDED.

The TypeScript SDK has the same gate (client/src/call-gate.ts), with the
options maxConcurrentCalls, maxQueuedCalls and callQueueTimeoutMs.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque

import grpc

__all__ = ["BacklogRefusal", "CallGate", "gate_error"]


def gate_error(
    code: grpc.StatusCode, details: str, trailers: grpc.aio.Metadata | None = None
) -> grpc.aio.AioRpcError:
    """The error of a call that never left the gate, as gRPC raises its own,
    so it takes the path of every failed attempt (retry, RunStoreError)."""
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), trailers or grpc.aio.Metadata(), details
    )


class BacklogRefusal(grpc.aio.AioRpcError):
    """UNAVAILABLE for a call that found ``max_queued_calls`` waiting, or
    no place on the wire within ``call_queue_timeout``: never sent, and not
    repeated by the retry policy (retry.is_retryable), as the repeat would
    join the same queue."""

    def __init__(self, details: str) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details
        )


class CallGate:
    """Places on the wire for one event loop's calls: ``enter`` waits for one
    (in arrival order, no longer than the call's timeout or ``queue_timeout``),
    ``leave`` frees it or hands it straight to the next waiting call."""

    def __init__(
        self, limit: int, queue_timeout: float | None = None, max_queued: int | None = None
    ) -> None:
        self.limit = limit
        #: Calls that may wait for a place; None: any number.
        self.max_queued = max_queued
        #: Seconds a call waits for a place before it is refused; None: no bound.
        self.queue_timeout = queue_timeout
        #: Calls holding a place (on the wire, or handed a place and about to go).
        self.on_wire = 0
        # Waiting calls in arrival order; one that gave up stays until it reaches the front.
        self._waiting: deque[asyncio.Future[None]] = deque()
        # Of them, those still waiting: counted, as a refusal's message
        # names them and a scan of a long backlog per refusal would cost.
        self._queued = 0
        #: Calls refused (queue full, or no place within queue_timeout), for tests and diagnostics.
        self.refused = 0

    @property
    def queued(self) -> int:
        """Calls waiting for a place (for tests and diagnostics)."""
        return self._queued

    async def enter(self, timeout: float | None) -> None:
        """Returns holding a place; raises DEADLINE_EXCEEDED (as gRPC would)
        when none came within ``timeout`` seconds, BacklogRefusal at once
        when ``max_queued`` wait already or when none came within
        ``queue_timeout`` first,
        or the error ``close`` ended the wait with."""
        if self.on_wire < self.limit and not self._waiting:
            self.on_wire += 1
            return
        if self.max_queued is not None and self._queued >= self.max_queued:
            self.refused += 1
            raise BacklogRefusal(
                f"no place on the wire: {self.on_wire} calls open (max_concurrent_calls)"
                f" and {self._queued} waiting (max_queued_calls);"
                " the server or the connection is saturated"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._queued += 1
        timer = self._timer(waiter, timeout)
        try:
            await waiter
        except asyncio.CancelledError:
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                self._queued -= 1
            elif waiter.exception() is None:
                # Handed a place just as the caller was cancelled: pass it on
                # (not one whose wait had ended with an error: it holds none).
                self.leave()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def leave(self) -> None:
        """Frees a place: the first call still waiting gets it (``on_wire`` stays)."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._queued -= 1
                waiter.set_result(None)
                return
        self.on_wire -= 1

    def close(self, error: BaseException) -> None:
        """Ends every wait with ``error`` (the store is closing)."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._queued -= 1
                waiter.set_exception(error)

    def _timer(
        self, waiter: asyncio.Future[None], timeout: float | None
    ) -> asyncio.TimerHandle | None:
        """The one timer of a waiting call: its own timeout when that comes
        no later than the queue timeout, else the queue timeout; none for
        neither. Only a waiting call has one (none on the fast path)."""
        bound = self.queue_timeout
        refuse = bound is not None and (timeout is None or bound < timeout)
        delay = bound if refuse else timeout
        if delay is None:
            return None
        # The class's function, not a bound method: one object less per waiting call.
        return asyncio.get_running_loop().call_later(
            delay, CallGate._give_up, self, waiter, refuse, context=_NO_CONTEXT
        )

    def _give_up(self, waiter: asyncio.Future[None], refuse: bool) -> None:
        """Ends a wait that reached its timer. A waiter handed a place first
        is done and keeps it; one ended here is skipped by ``leave``, so no
        place is lost either way."""
        if waiter.done():
            return
        error = self._refusal() if refuse else _deadline_error()
        self._queued -= 1
        waiter.set_exception(error)

    def _refusal(self) -> BacklogRefusal:
        """The refusal of a call that waited ``queue_timeout`` (the waiting
        count includes it)."""
        assert self.queue_timeout is not None
        self.refused += 1
        details = (
            f"no place on the wire within {self.queue_timeout * 1000:g} ms:"
            f" {self.on_wire} calls open (max_concurrent_calls) and {self._queued} waiting;"
            " the server or the connection is saturated"
        )
        return BacklogRefusal(details)


#: The context the timers run _give_up in, which reads no context variable:
#: call_later would otherwise copy the caller's, one more object per waiting call.
_NO_CONTEXT = contextvars.Context()


def _deadline_error() -> grpc.aio.AioRpcError:
    return gate_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
