"""Tracing end to end: an application's span, the SDK's client span of each
call, and the server's span of that call, in one trace.

The server runs as an operator runs it (a child process) exporting over
OTLP/HTTP to a receiver in this test. The application is a child Python
(tests/support/traced_calls.py): one from a venv with opentelemetry-api
(tracing_venv.py), and the system Python, which has no OpenTelemetry.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, ClassVar  # noqa: E402

from tests.support.mysql import ScratchDatabase, create_test_database  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver, attribute  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.tracing_venv import tracing_python  # noqa: E402

PYTHON_DIR = Path(__file__).resolve().parents[1]

#: Debian 12's Python: no python3-opentelemetry exists for it.
SYSTEM_PYTHON = Path("/usr/bin/python3")

SERVICE = "runstore.v1.RunStoreService"
PUT, GET = f"{SERVICE}/Put", f"{SERVICE}/Get"


def run_application(python: Path, target: str) -> dict[str, Any]:
    """Runs traced_calls.py with ``python`` against ``target``; its JSON line."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [str(python), "-m", "tests.support.traced_calls", target],
        cwd=PYTHON_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"traced_calls exited {result.returncode}:\n{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


_Base = unittest.TestCase if TYPE_CHECKING else object


class TracedCalls(_Base):
    """A server per test (its spans are exported when it stops), on ``backend``;
    combined with unittest.TestCase once per backend below."""

    backend: ClassVar[str]
    database: ClassVar[ScratchDatabase | None] = None
    traced_python: ClassVar[Path]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.traced_python = tracing_python()
        if cls.backend == "mysql":
            cls.database = create_test_database()
            cls.addClassCleanup(cls.database.drop)

    def setUp(self) -> None:
        self.receiver = OtlpReceiver()
        self.addCleanup(self.receiver.close)

    def calls(self, python: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The application's answer and the spans the server exported for its calls."""
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.receiver.url,
            "OTEL_SERVICE_NAME": "runstore-under-test",
        }
        if self.database is not None:
            env["DATABASE_URL"] = self.database.url
            self.addCleanup(self.database.truncate)
        server = ServerProcess.start(env)
        try:
            application = run_application(python, server.target)
        finally:
            # The server exports its last batch of spans when it stops.
            self.assertEqual(server.stop(), 0, server.output())
        self.assertEqual(
            set(self.receiver.batches), {("application/json", "runstore-under-test")}
        )
        return application, self.receiver.spans

    def test_each_call_is_a_client_span_the_server_span_is_a_child_of(self) -> None:
        application, server_spans = self.calls(self.traced_python)
        self.assertTrue(application["tracing"])
        spans = application["spans"]
        for span in spans:
            self.assertTrue(span["ended"], span)
            self.assertEqual(span["exceptions"], 0, span)
        step, read, retry = (_one(spans, f"agent {name}") for name in ("step", "read", "retry"))

        # Client spans: children of the application's span, one per call.
        put, refused = _children(spans, step)
        (deerflow_get,) = _children(spans, read)
        (unavailable_get,) = _children(spans, retry)  # three attempts, one span
        for span, method in ((put, "Put"), (refused, "Put"), (deerflow_get, "Get")):
            self.assertEqual(span["name"], f"{SERVICE}/{method}")
            self.assertEqual(span["kind"], "CLIENT")
            self.assertEqual(span["attributes"], {"rpc.service": SERVICE, "rpc.method": method})
        self.assertEqual((put["status"], put["description"]), ("UNSET", None))
        self.assertEqual((refused["status"], refused["description"]), ("ERROR", "ALREADY_EXISTS"))
        self.assertEqual(deerflow_get["status"], "UNSET")
        self.assertEqual(unavailable_get["name"], GET)
        self.assertEqual(
            (unavailable_get["status"], unavailable_get["description"]), ("ERROR", "UNAVAILABLE")
        )

        # Server spans: children of the client span of their call (its traceparent).
        rpc_spans = [s for s in server_spans if s["name"].startswith(f"{SERVICE}/")]
        self.assertEqual(sorted(s["name"] for s in rpc_spans), [GET, PUT, PUT])
        by_parent = {s.get("parentSpanId"): s for s in rpc_spans}
        clients = (put, refused, deerflow_get)
        self.assertEqual(set(by_parent), {client["span_id"] for client in clients})
        for client in clients:
            server = by_parent[client["span_id"]]
            self.assertEqual(server["traceId"], client["trace_id"])
            self.assertEqual(server["kind"], 2)  # SERVER
            self.assertEqual(attribute(server, "rpc.system"), "grpc")
        self.assertEqual(put["trace_id"], step["trace_id"])
        self.assertEqual(deerflow_get["trace_id"], read["trace_id"])
        failed = by_parent[refused["span_id"]]
        self.assertEqual(failed["status"], {"code": 2, "message": "AlreadyExists"})
        self.assertEqual(attribute(failed, "rpc.grpc.status_code"), 6)
        if self.database is not None:
            put_on_server = by_parent[put["span_id"]]["spanId"]
            sql = [s for s in server_spans if s.get("parentSpanId") == put_on_server]
            self.assertTrue(sql, "the Put's SQL spans")
            for statement in sql:
                self.assertEqual(statement["traceId"], step["trace_id"])
                self.assertEqual(attribute(statement, "db.system"), "mysql")
        print(f"REPORT python tracing ({self.backend}): {len(server_spans)} server spans exported")


class MemoryTracingTest(TracedCalls, unittest.TestCase):
    backend = "memory"

    def test_without_opentelemetry_no_span_and_no_traceparent(self) -> None:
        application, server_spans = self.calls(SYSTEM_PYTHON)
        self.assertEqual(application, {"tracing": False, "spans": []}, "the system Python")
        rpc_spans = [s for s in server_spans if s["name"].startswith(f"{SERVICE}/")]
        self.assertEqual(sorted(s["name"] for s in rpc_spans), [GET, PUT, PUT])
        # No traceparent reached the server: each of its spans starts a trace.
        self.assertEqual([s.get("parentSpanId", "") for s in rpc_spans], ["", "", ""])
        self.assertEqual(len({s["traceId"] for s in rpc_spans}), 3)


class MysqlTracingTest(TracedCalls, unittest.TestCase):
    backend = "mysql"


def _one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (span,) = (s for s in spans if s["name"] == name)
    return span


def _children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans whose parent is ``parent``, in start order."""
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


if __name__ == "__main__":
    unittest.main()
