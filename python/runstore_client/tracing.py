"""Client spans for RunStore calls, when the application uses OpenTelemetry.

With ``opentelemetry-api`` importable (the ``tracing`` extra), every RPC of
GrpcRunStore (so of DeerFlowRunStore too) runs inside a CLIENT span
``runstore.v1.RunStoreService/<Method>``, a child of the caller's active
span, its retries included, as in the TypeScript SDK. The span's context
goes out in the call's metadata (W3C ``traceparent`` and ``tracestate``)
through the propagator the application registered, so the server's span of
the call is its child. A failed call sets the span's status to ERROR with
the gRPC code's name (``NOT_FOUND``). Only the API is used: whether spans are
recorded, and where they go, is the application's tracer provider. Without
the package, ``client_span`` sends nothing and does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import grpc

from .errors import RunStoreError

otel_trace: Any
otel_propagate: Any
try:
    from opentelemetry import propagate as otel_propagate
    from opentelemetry import trace as otel_trace
except ImportError:  # the extra is not installed: no spans, no trace metadata
    otel_trace = otel_propagate = None

__all__ = ["SERVICE", "TRACER_NAME", "client_span", "enabled", "stream_span"]

#: The proto service whose methods name the spans.
SERVICE = "runstore.v1.RunStoreService"

#: The instrumentation scope of the spans.
TRACER_NAME = "runstore_client"


def enabled() -> bool:
    """Whether the OpenTelemetry API is importable, so calls start spans."""
    return otel_trace is not None


#: client_span without the API: one shared no-op, not a generator per call
#: (a backlog of calls waiting for the wire keeps each one alive, call_gate.py).
_NO_SPAN: AbstractContextManager[tuple[tuple[str, str], ...]] = nullcontext(())


def client_span(method: str) -> AbstractContextManager[tuple[tuple[str, str], ...]]:
    """The span of one call of the RPC ``method``, active inside the block;
    yields the metadata that carries it (none without the API)."""
    return _NO_SPAN if otel_trace is None else _client_span(method)


@contextmanager
def _client_span(method: str) -> Iterator[tuple[tuple[str, str], ...]]:
    span = _start_span(method)
    with otel_trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        carrier: dict[str, str] = {}
        otel_propagate.inject(carrier)
        try:
            # gRPC metadata keys are lowercase.
            yield tuple((key.lower(), value) for key, value in carrier.items())
        except BaseException as error:
            span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, _code_name(error)))
            raise


@contextmanager
def stream_span(method: str) -> Iterator[tuple[tuple[str, str], ...]]:
    """client_span for a call read over time (a stream an async generator
    yields from): the span covers the block and travels in the metadata it
    yields, but is never made current, so the consumer's code between two
    messages is not inside it. Closing the generator (GeneratorExit) is no
    failure."""
    if otel_trace is None:
        yield ()
        return
    span = _start_span(method)
    carrier: dict[str, str] = {}
    otel_propagate.inject(carrier, context=otel_trace.set_span_in_context(span))
    try:
        # gRPC metadata keys are lowercase.
        yield tuple((key.lower(), value) for key, value in carrier.items())
    except GeneratorExit:
        raise
    except BaseException as error:
        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, _code_name(error)))
        raise
    finally:
        span.end()


def _start_span(method: str) -> Any:
    """A started CLIENT span of the RPC ``method`` (a child of the current span)."""
    return otel_trace.get_tracer(TRACER_NAME).start_span(
        f"{SERVICE}/{method}",
        kind=otel_trace.SpanKind.CLIENT,
        attributes={"rpc.service": SERVICE, "rpc.method": method},
    )


def _code_name(error: BaseException) -> str:
    """The name of the gRPC status code a call failed with."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    if isinstance(error, RunStoreError):
        return error.code.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name
