"""GrpcRunStore has exactly the Python store interface (the seed's, part
2's and the history methods), and subclasses DeerFlow's RunStore ABC when
that package is importable and its ABC is the seed's."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import inspect  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402

from runstore_client import AUTO, GrpcRunStore  # noqa: E402
from runstore_client.base import SEED_METHODS, STORE_METHODS  # noqa: E402

_COUNTERS = (
    "total_input_tokens",
    "total_output_tokens",
    "total_tokens",
    "llm_call_count",
    "lead_agent_tokens",
    "subagent_tokens",
    "middleware_tokens",
    "message_count",
)

#: Each method as (positional parameters, keyword-only parameters with defaults);
#: "<required>" marks a keyword without a default. From docs/contract.md / DeerFlow:
#: part 1 (the seed's interface, with part 2's new optional inputs) and part 2.
_LEASE = {"lease": None, "lease_expires_at": None}
_PAGE = {"page_size": None, "page_token": None}
_SEARCH: dict[str, object] = {
    "user_id": AUTO,
    "thread_id": None,
    "statuses": None,
    "assistant_id": None,
    "model_name": None,
    "operation_kinds": None,
    "created_after": None,
    "created_before": None,
    "metadata": None,
}
INTERFACE: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "put": (
        ("run_id",),
        {
            "thread_id": "<required>",
            "assistant_id": None,
            "user_id": AUTO,
            "model_name": None,
            "status": "pending",
            "multitask_strategy": "reject",
            "metadata": None,
            "kwargs": None,
            "error": None,
            "created_at": None,
            "operation_kind": "run",
            "stop_reason": None,
            "owner_worker_id": None,
            "lease_expires_at": None,
            "idempotency_key": None,
            "follow_up_to_run_id": None,
        },
    ),
    "get": (("run_id",), {"user_id": AUTO}),
    "list_by_thread": (("thread_id",), {"user_id": AUTO, "limit": 100}),
    "update_status": (
        ("run_id", "status"),
        {"error": None, "stop_reason": None, "guarded": False},
    ),
    "delete": (("run_id",), {"user_id": AUTO}),
    "update_model_name": (("run_id", "model_name"), {}),
    "update_run_completion": (
        ("run_id",),
        {
            "status": "<required>",
            **{name: 0 for name in _COUNTERS},
            "last_ai_message": None,
            "first_human_message": None,
            "error": None,
            "token_usage_by_model": None,
            "guarded": False,
        },
    ),
    "update_run_progress": (
        ("run_id",),
        {
            **{name: None for name in _COUNTERS},
            "last_ai_message": None,
            "first_human_message": None,
            "token_usage_by_model": None,
        },
    ),
    "list_pending": ((), {"before": None}),
    "list_inflight": ((), {"before": None}),
    "aggregate_tokens_by_thread": (("thread_id",), {"include_active": False}),
    "create_thread_operation": (
        ("run_id",),
        {
            "thread_id": "<required>",
            "owner_worker_id": "<required>",
            **_LEASE,
            "operation_kind": "run",
            "multitask_strategy": "reject",
            "assistant_id": None,
            "user_id": AUTO,
            "model_name": None,
            "metadata": None,
            "kwargs": None,
            "created_at": None,
            "grace_seconds": 10,
            "idempotency_key": None,
            "follow_up_to_run_id": None,
        },
    ),
    "start_run": (("run_id",), {}),
    "renew_lease": (("run_id",), {"owner_worker_id": "<required>", **_LEASE}),
    "update_lease": (("run_id",), {"owner_worker_id": "<required>", **_LEASE}),
    "request_cancel": (("run_id",), {"action": "<required>"}),
    "finalize_if_not_cancelled": (
        ("run_id",),
        {"status": "<required>", "error": None, "stop_reason": None},
    ),
    "claim_for_takeover": (
        ("run_id",),
        {"grace_seconds": 10, "error": "<required>", "stop_reason": None},
    ),
    "list_inflight_with_expired_lease": ((), {"before": None, "grace_seconds": 10}),
    "claim_next_run": ((), {"owner_worker_id": "<required>", **_LEASE, "thread_id": None}),
    "delete_thread_operation": (("run_id",), {"user_id": "<required>"}),
    "get_many_by_thread": (("thread_id", "run_ids"), {"user_id": AUTO}),
    "list_successful_regenerate_sources": (("thread_id",), {"user_id": AUTO}),
    "list_edit_regenerate_runs": (("thread_id",), {"user_id": AUTO}),
    # History (docs/contract.md, "History").
    "list_by_thread_page": (("thread_id",), {"user_id": AUTO, **_PAGE}),
    "list_pending_page": ((), {"before": None, **_PAGE}),
    "list_inflight_page": ((), {"before": None, **_PAGE}),
    "list_inflight_with_expired_lease_page": ((), {"before": None, "grace_seconds": 10, **_PAGE}),
    "search_runs_page": ((), {**_SEARCH, **_PAGE}),
    "search_runs": ((), {**_SEARCH, "page_size": None}),
    "get_run_stats": (
        (),
        {"user_id": AUTO, "created_after": None, "created_before": None, "utc_offset": None},
    ),
    "list_threads_page": ((), {"user_id": AUTO, **_PAGE}),
    "list_threads": ((), {"user_id": AUTO, "page_size": None}),
    "delete_thread": (("thread_id",), {"user_id": AUTO, "force": False}),
    # Live changes (docs/contract.md, "Live changes").
    "watch_runs": (
        (),
        {
            "user_id": AUTO,
            "thread_id": None,
            "statuses": (),
            "active_only": False,
            "operation_kinds": (),
            "cursor": None,
        },
    ),
}

#: The methods that are async generators (the page walks, the watch) rather than coroutines.
ITERATORS = {"search_runs", "list_threads", "watch_runs"}

#: A stand-in for DeerFlow's deerflow/runtime/runs/store/base.py: the ABC as
#: docs/contract.md describes it, or with one more abstract method.
_FAKE_DEERFLOW = """
import abc

class RunStore(abc.ABC):
    {methods}
"""


def _abstract(name: str) -> str:
    return f"@abc.abstractmethod\n    async def {name}(self, *args, **kwargs): ...\n"


def _run_with_fake_deerflow(
    methods: list[str] | None, script: str
) -> subprocess.CompletedProcess[str]:
    """Runs ``script`` in a fresh interpreter, with a fake DeerFlow package
    declaring ``methods`` abstract (None: no DeerFlow at all)."""
    with tempfile.TemporaryDirectory() as root:
        if methods is not None:
            package = Path(root, "deerflow", "runtime", "runs", "store")
            package.mkdir(parents=True)
            for level in (package.parents[2], package.parents[1], package.parent, package):
                (level / "__init__.py").touch()
            body = "    ".join(_abstract(name) for name in methods)
            (package / "base.py").write_text(_FAKE_DEERFLOW.format(methods=body))
        python_dir = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(python_dir)])}
        return subprocess.run(
            [sys.executable, "-W", "always", "-c", textwrap.dedent(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


class InterfaceTest(unittest.TestCase):
    def test_methods_are_exactly_the_store_interface(self) -> None:
        self.assertEqual(set(INTERFACE), set(STORE_METHODS))
        for name, (positional, keywords) in INTERFACE.items():
            with self.subTest(method=name):
                method = getattr(GrpcRunStore, name)
                if name in ITERATORS:
                    self.assertIn("AsyncIterator", str(inspect.signature(method).return_annotation))
                else:
                    self.assertTrue(inspect.iscoroutinefunction(method), f"{name} must be async")
                parameters = list(inspect.signature(method).parameters.values())[1:]
                self.assertEqual(
                    [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD],
                    list(positional),
                )
                for p in parameters:
                    if p.kind is p.POSITIONAL_OR_KEYWORD:
                        self.assertIs(p.default, p.empty, f"{p.name} has no default")
                self.assertEqual(
                    {
                        p.name: "<required>" if p.default is p.empty else p.default
                        for p in parameters
                        if p.kind is p.KEYWORD_ONLY
                    },
                    keywords,
                )
                self.assertFalse(
                    any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters),
                    f"{name} must not swallow unknown arguments",
                )

    def test_subclasses_deerflow_run_store_when_importable(self) -> None:
        result = _run_with_fake_deerflow(
            sorted(SEED_METHODS - {"update_run_progress"}),
            """
            from deerflow.runtime.runs.store.base import RunStore
            from runstore_client import GrpcRunStore
            store = GrpcRunStore("127.0.0.1:1")
            print(isinstance(store, RunStore), GrpcRunStore.__bases__[-1].__module__)
            """,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "True deerflow.runtime.runs.store.base")
        self.assertNotIn("Warning", result.stderr)

    def test_stands_alone_when_deerflow_abc_asks_for_more(self) -> None:
        result = _run_with_fake_deerflow(
            sorted(SEED_METHODS | {"delete_by_thread"}),
            """
            from deerflow.runtime.runs.store.base import RunStore
            from runstore_client import GrpcRunStore
            store = GrpcRunStore("127.0.0.1:1")
            print(isinstance(store, RunStore), GrpcRunStore.__bases__[-1] is object)
            """,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "False True")
        self.assertIn("RuntimeWarning", result.stderr)
        self.assertIn("delete_by_thread", result.stderr)

    def test_stands_alone_quietly_beside_a_later_deerflow(self) -> None:
        # A later DeerFlow's ABC (part 2 abstract too) expects its own result
        # types: runstore_client.deerflow.DeerFlowRunStore is its store.
        later = SEED_METHODS | {
            "start_run",
            "update_lease",
            "claim_for_takeover",
            "list_inflight_with_expired_lease",
        }
        result = _run_with_fake_deerflow(
            sorted(later),
            """
            from deerflow.runtime.runs.store.base import RunStore
            from runstore_client import GrpcRunStore
            store = GrpcRunStore("127.0.0.1:1")
            print(isinstance(store, RunStore), GrpcRunStore.__bases__[-1] is object)
            """,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "False True")
        self.assertNotIn("Warning", result.stderr)

    def test_stands_alone_without_deerflow(self) -> None:
        result = _run_with_fake_deerflow(
            None,
            """
            from runstore_client import GrpcRunStore
            print(GrpcRunStore.__bases__[-1] is object)
            """,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "True")
