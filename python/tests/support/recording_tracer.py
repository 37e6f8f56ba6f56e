"""A tracer provider on the OpenTelemetry API alone that keeps every span.

The tracing test's application registers it where an application registers
the SDK's TracerProvider with an InMemorySpanExporter: opentelemetry-sdk
needs opentelemetry-semantic-conventions, which the machine image does not
ship. Its spans have real contexts (random ids, sampled), so the propagator
sends a real ``traceparent``, and keep what the code under test sets: name,
kind, attributes, parent, status, whether it ended.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

__all__ = ["RecordedSpan", "RecordingTracerProvider"]


class RecordedSpan(Span):
    """A span that remembers what was set on it."""

    def __init__(
        self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes: dict[str, Any] = {}
        self.status = Status(StatusCode.UNSET)
        self.ended = False
        self.exceptions: list[BaseException] = []

    def get_span_context(self) -> SpanContext:
        return self.context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        raise AssertionError(f"unexpected event {name!r}")

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return not self.ended

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self.exceptions.append(exception)

    def end(self, end_time: int | None = None) -> None:
        self.ended = True


class _Tracer(trace.Tracer):
    def __init__(self, spans: list[RecordedSpan]) -> None:
        self._spans = spans

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> RecordedSpan:
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else random.getrandbits(128)
        own = SpanContext(
            trace_id,
            random.getrandbits(64),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        span = RecordedSpan(name, own, parent if parent.is_valid else None, kind)
        span.set_attributes(attributes or {})
        self._spans.append(span)
        return span

    @contextmanager  # type: ignore[override]
    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[Span]:
        with trace.use_span(self.start_span(name, context), end_on_exit=True) as span:
            yield span


class RecordingTracerProvider(trace.TracerProvider):
    """Every tracer it gives out records into ``spans``, in start order."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self.spans)
