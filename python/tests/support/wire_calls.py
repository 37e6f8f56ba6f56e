"""Counts the unary calls a process has handed to grpcio and not yet seen
end: what a store puts on the wire, whatever grpcio does with them then."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from grpc.aio import _channel

__all__ = ["WireCalls", "counted_wire_calls"]


class WireCalls:
    """Unary calls open now, and the most open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0
        self.started = 0

    def opened(self, call: Any) -> Any:
        self.open += 1
        self.started += 1
        self.most = max(self.most, self.open)
        call.add_done_callback(self._closed)
        return call

    def _closed(self, _call: Any) -> None:
        self.open -= 1


@contextmanager
def counted_wire_calls() -> Iterator[WireCalls]:
    """Inside the block, every unary call grpcio starts (in any channel) is
    counted: a spy on its one entry point, the real call goes ahead."""
    calls = WireCalls()
    start = _channel.UnaryUnaryMultiCallable.__call__

    def counted(self: Any, request: Any, **options: Any) -> Any:
        return calls.opened(start(self, request, **options))

    with mock.patch.object(_channel.UnaryUnaryMultiCallable, "__call__", counted):
        yield calls
