"""An application calling a RunStore server inside spans of its own.

test_tracing.py runs it as ``<python> -m tests.support.traced_calls TARGET``
(from python/), with a Python that has opentelemetry-api, which registers a
RecordingTracerProvider as the application's, and with one that has not.
It prints one JSON line: whether runstore_client traced, and every span
the application's provider recorded (none without the API).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runstore_client import GrpcRunStore, IdempotencyConflictError, RetryPolicy, UnavailableError
from runstore_client.deerflow import DeerFlowRunStore
from runstore_client.tracing import enabled


@contextmanager
def app_span(name: str) -> Iterator[None]:
    """The application's own span, when it has OpenTelemetry."""
    if not enabled():
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer("agent").start_as_current_span(name):
        yield


async def calls(target: str) -> None:
    async with GrpcRunStore(target, timeout=30) as store:
        with app_span("agent step"):
            await store.put("traced-run", thread_id="traced-thread", idempotency_key="key")
            try:
                await store.put("other-run", thread_id="traced-thread", idempotency_key="key")
            except IdempotencyConflictError:
                pass
            else:
                raise AssertionError("a put with a held idempotency key was not refused")
    async with DeerFlowRunStore(target, timeout=30) as deerflow:
        with app_span("agent read"):
            row = await deerflow.get("traced-run", user_id=None)
            assert row is not None and row["thread_id"] == "traced-thread", row
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.01)
    async with GrpcRunStore(f"127.0.0.1:{closed_port()}", timeout=30, retry=retry) as nowhere:
        with app_span("agent retry"):
            try:
                await nowhere.get("traced-run")
            except UnavailableError:
                pass
            else:
                raise AssertionError("a call to a closed port did not fail with UNAVAILABLE")


def closed_port() -> int:
    """A port nothing listens on: the OS gave it out, and it was closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def span_json(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_span_id": None if span.parent is None else f"{span.parent.span_id:016x}",
        "kind": span.kind.name,
        "attributes": span.attributes,
        "status": span.status.status_code.name,
        "description": span.status.description,
        "ended": span.ended,
        "exceptions": len(span.exceptions),
    }


def main() -> None:
    spans: list[Any] = []
    if enabled():
        from opentelemetry import trace

        from .recording_tracer import RecordingTracerProvider

        provider = RecordingTracerProvider()
        trace.set_tracer_provider(provider)
        spans = provider.spans
    asyncio.run(calls(sys.argv[1]))
    print(json.dumps({"tracing": enabled(), "spans": [span_json(span) for span in spans]}))


if __name__ == "__main__":
    main()
