"""At most ``max_concurrent_calls`` calls of a store on the wire at once.

Why: a server takes at most 100 calls at once on a connection (its default
MAX_CONCURRENT_STREAMS) and grpcio queues the rest inside the channel, each
as a live call. A caller on asyncio past its own capacity (issue 18's
capacity bench: 7,000 calls a second offered, 130,000 outstanding) then
spent its event loop starting grpcio calls that could not go out, and
Python's full garbage collections over them (47 tracked objects per queued
call) took seconds, while the answers to the 100 on the wire waited for the
loop: it answered 186 calls a second. Waiting here, in arrival order, a call
costs a future (20 tracked objects per call, the caller's frames included)
and goes to grpcio only when one on the wire has ended. The TypeScript SDK
has the same gate (client/src/call-gate.ts).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque

import grpc

__all__ = ["CallGate", "gate_error"]


def gate_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """The error of a call that never left the gate, as gRPC raises its own,
    so it takes the path of every failed attempt (retry, RunStoreError)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class CallGate:
    """Places on the wire for one event loop's calls: ``enter`` waits for one
    (in arrival order, no longer than the call's timeout), ``leave`` frees it
    or hands it straight to the next waiting call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Calls holding a place (on the wire, or handed a place and about to go).
        self.on_wire = 0
        # Waiting calls in arrival order; one that gave up stays until it reaches the front.
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Calls waiting for a place (for tests and diagnostics)."""
        return sum(1 for waiter in self._waiting if not waiter.done())

    async def enter(self, timeout: float | None) -> None:
        """Returns holding a place; raises DEADLINE_EXCEEDED (as gRPC would)
        when none came within ``timeout`` seconds, or the error ``close``
        ended the wait with."""
        if self.on_wire < self.limit and not self._waiting:
            self.on_wire += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        timer = None if timeout is None else asyncio.get_running_loop().call_later(
            timeout, _expire, waiter, context=_NO_CONTEXT
        )
        try:
            await waiter
        except asyncio.CancelledError:
            # Handed a place just as the caller was cancelled: pass it on.
            if waiter.done() and not waiter.cancelled():
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
                waiter.set_result(None)
                return
        self.on_wire -= 1

    def close(self, error: BaseException) -> None:
        """Ends every wait with ``error`` (the store is closing)."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)


#: The context the timers run _expire in, which reads no context variable:
#: call_later would otherwise copy the caller's, one more object per waiting call.
_NO_CONTEXT = contextvars.Context()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(gate_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
