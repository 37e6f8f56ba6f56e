"""DeerFlowRunStore is a drop-in for DeerFlow's RunStore (2026-08-22, f1f4af99b):
its methods and keyword arguments, result shapes, guarded updates and
exceptions, against a real server; and, with a ``deerflow`` package on the
import path, DeerFlow's own ABC and types.

The "deerflow" package of these tests is a stand-in written here from the
interface of DeerFlow's ``runtime/runs/store/base.py`` (the names,
parameters, result types and the unique-violation check its RunManager
applies), imported for real by a child interpreter.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import unittest  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from runstore_client import (  # noqa: E402
    AUTO,
    GrpcRunStore,
    IdempotencyConflictError,
    InvalidArgumentError,
    RunStoreError,
    ThreadConflictError,
)
from runstore_client.errors import RunIdTakenError  # noqa: E402
from runstore_client.deerflow import (  # noqa: E402
    DeerFlowRunStore,
    LeaseRenewal,
    RunIdempotencyConflict,
    StatusFinalization,
)
from runstore_client.arguments import COUNTER_FIELDS  # noqa: E402
from runstore_client.deerflow.rows import DEERFLOW_ROW_KEYS  # noqa: E402
from tests.support.backends import ServerTestCase  # noqa: E402

_REQUIRED = "<required>"
#: The counters but message_count, which DeerFlow's signatures list after the usage map.
_COUNTERS = tuple(name for name in COUNTER_FIELDS if name != "message_count")
_OWNED = {"user_id": None}

#: DeerFlow's RunStore at f1f4af99b: each method as (positional parameters,
#: keyword-only parameters with their defaults).
DEERFLOW_INTERFACE: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "put": (
        ("run_id",),
        {
            "thread_id": _REQUIRED,
            "assistant_id": None,
            "user_id": None,
            "model_name": None,
            "status": "pending",
            "operation_kind": "run",
            "multitask_strategy": "reject",
            "metadata": None,
            "kwargs": None,
            "error": None,
            "stop_reason": None,
            "created_at": None,
            "owner_worker_id": None,
            "lease_expires_at": None,
            "idempotency_key": None,
        },
    ),
    "get": (("run_id",), _OWNED),
    "list_by_thread": (("thread_id",), {"user_id": None, "limit": 100}),
    "list_successful_regenerate_sources": (("thread_id",), _OWNED),
    "list_edit_regenerate_runs": (("thread_id",), _OWNED),
    "get_many_by_thread": (("thread_id", "run_ids"), _OWNED),
    "update_status": (("run_id", "status"), {"error": None, "stop_reason": None}),
    "start_run": (("run_id",), {}),
    "delete": (("run_id",), {}),
    "delete_thread_operation": (("run_id",), {"user_id": _REQUIRED}),
    "update_model_name": (("run_id", "model_name"), {}),
    "update_run_completion": (
        ("run_id",),
        {
            "status": _REQUIRED,
            **{name: 0 for name in _COUNTERS},
            "token_usage_by_model": None,
            "message_count": 0,
            "last_ai_message": None,
            "first_human_message": None,
            "error": None,
        },
    ),
    "update_run_progress": (
        ("run_id",),
        {
            **{name: None for name in _COUNTERS},
            "token_usage_by_model": None,
            "message_count": None,
            "last_ai_message": None,
            "first_human_message": None,
        },
    ),
    "list_pending": ((), {"before": None}),
    "list_inflight": ((), {"before": None}),
    "aggregate_tokens_by_thread": (("thread_id",), {"include_active": False}),
    "update_lease": (("run_id",), {"owner_worker_id": _REQUIRED, "lease_expires_at": _REQUIRED}),
    "renew_lease": (("run_id",), {"owner_worker_id": _REQUIRED, "lease_expires_at": _REQUIRED}),
    "request_cancel": (("run_id",), {"action": _REQUIRED}),
    "finalize_if_not_cancelled": (
        ("run_id",),
        {"status": _REQUIRED, "error": None, "stop_reason": None},
    ),
    "claim_for_takeover": (
        ("run_id",),
        {"grace_seconds": _REQUIRED, "error": _REQUIRED, "stop_reason": None},
    ),
    "list_inflight_with_expired_lease": ((), {"before": None, "grace_seconds": 10}),
    "create_thread_operation_atomic": (
        ("run_id",),
        {
            "thread_id": _REQUIRED,
            "owner_worker_id": _REQUIRED,
            "lease_expires_at": _REQUIRED,
            "operation_kind": "run",
            "multitask_strategy": "reject",
            "assistant_id": None,
            "user_id": None,
            "model_name": None,
            "metadata": None,
            "kwargs": None,
            "created_at": None,
            "grace_seconds": 10,
            "idempotency_key": None,
        },
    ),
    "create_run_atomic": (
        ("run_id",),
        {
            "thread_id": _REQUIRED,
            "owner_worker_id": _REQUIRED,
            "lease_expires_at": _REQUIRED,
            "multitask_strategy": "reject",
            "assistant_id": None,
            "user_id": None,
            "model_name": None,
            "metadata": None,
            "kwargs": None,
            "created_at": None,
            "grace_seconds": 10,
        },
    ),
}

#: Where DeerFlowRunStore differs from the ABC's signatures, as DeerFlow's SQL
#: store does (user_id defaults to AUTO; delete takes user_id; put takes
#: follow_up_to_run_id), plus opt-outs whose defaults are DeerFlow's behaviour.
DIFFERENCES: dict[str, dict[str, object]] = {
    "put": {"user_id": AUTO, "follow_up_to_run_id": None},
    "get": {"user_id": AUTO},
    "list_by_thread": {"user_id": AUTO},
    "list_successful_regenerate_sources": {"user_id": AUTO},
    "list_edit_regenerate_runs": {"user_id": AUTO},
    "get_many_by_thread": {"user_id": AUTO},
    "delete": {"user_id": AUTO},
    "update_status": {"guarded": True},
    "update_run_completion": {"guarded": True},
    "create_thread_operation_atomic": {"follow_up_to_run_id": None},
}

#: Ours, beyond DeerFlow's interface: claim_next_run, close and the history
#: methods (the thread delete under DeerFlow's name, delete_by_thread).
EXTRA_METHODS = {
    "claim_next_run",
    "close",
    "list_by_thread_page",
    "list_pending_page",
    "list_inflight_page",
    "list_inflight_with_expired_lease_page",
    "search_runs_page",
    "search_runs",
    "get_run_stats",
    "list_threads_page",
    "list_threads",
    "delete_by_thread",
    "watch_runs",
}


def _signature(method: Any) -> tuple[list[str], dict[str, object], list[Any]]:
    parameters = list(inspect.signature(method).parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    keywords = {
        p.name: _REQUIRED if p.default is p.empty else p.default
        for p in parameters
        if p.kind is p.KEYWORD_ONLY
    }
    return positional, keywords, parameters


class SignatureTest(unittest.TestCase):
    def test_every_method_of_deerflow_with_its_arguments(self) -> None:
        public = {
            name
            for name, value in vars(DeerFlowRunStore).items()
            if not name.startswith("_") and callable(value)
        }
        public |= {name for name in dir(DeerFlowRunStore) if not name.startswith("_")}
        self.assertEqual(public - set(DEERFLOW_INTERFACE), EXTRA_METHODS)
        for name, (positional, keywords) in DEERFLOW_INTERFACE.items():
            with self.subTest(method=name):
                method = getattr(DeerFlowRunStore, name)
                self.assertTrue(inspect.iscoroutinefunction(method), f"{name} must be async")
                ours_positional, ours_keywords, parameters = _signature(method)
                self.assertEqual(ours_positional, list(positional))
                self.assertEqual(ours_keywords, {**keywords, **DIFFERENCES.get(name, {})})
                self.assertFalse(
                    any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters),
                    f"{name} must not swallow unknown arguments",
                )

    def test_constructed_like_grpc_run_store(self) -> None:
        ours = inspect.signature(DeerFlowRunStore.__init__).parameters
        theirs = inspect.signature(GrpcRunStore.__init__).parameters
        self.assertEqual(
            [(p.name, p.kind, p.default) for p in ours.values()],
            [(p.name, p.kind, p.default) for p in theirs.values()],
        )


#: A unique-violation check written the way DeerFlow's RunManager checks a
#: failed admission: a "23505" sqlstate / pgcode on the error or its causes.
def is_unique_violation(error: BaseException) -> bool:
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if "23505" in (getattr(current, "sqlstate", None), getattr(current, "pgcode", None)):
            return True
        for attr in ("orig", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                pending.append(inner)
    return False


_ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$")


class TrackingDeerFlowStore(DeerFlowRunStore):
    """Remembers the run ids it wrote, so a test on the in-memory backend can
    remove them afterwards (it has no "truncate")."""

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target, **options)
        self.written: set[str] = set()

    async def put(self, run_id: str, **fields: Any) -> None:
        self.written.add(run_id)
        await super().put(run_id, **fields)

    async def create_thread_operation_atomic(self, run_id: str, **fields: Any) -> Any:
        self.written.add(run_id)
        return await super().create_thread_operation_atomic(run_id, **fields)


class DeerFlowStoreTestCase(ServerTestCase):
    """A real server per class; ``self.df`` is a DeerFlowRunStore on an empty store."""

    backend: ClassVar[str] = "memory"
    df: TrackingDeerFlowStore

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.df = TrackingDeerFlowStore(self.server.target, timeout=30)

    async def asyncTearDown(self) -> None:
        await self.df.close()
        if self.database is None:
            async with GrpcRunStore(self.server.target, timeout=30) as cleaner:
                for run_id in self.df.written:
                    try:
                        await cleaner.delete(run_id, user_id=None)
                    except InvalidArgumentError:
                        pass  # an id used to provoke a refusal: never stored
        await super().asyncTearDown()


class DeerFlowShapesTest(DeerFlowStoreTestCase):
    """Result shapes, guarded updates and exceptions as DeerFlow's SQL store has them."""

    async def test_rows_have_deerflows_keys_and_iso_timestamps(self) -> None:
        await self.df.put("r1", thread_id="t1", created_at="2026-01-02T03:04:05+00:00")
        await self.df.put("r2", thread_id="t1", created_at="2026-01-02T03:04:05.000001Z")
        row = await self.df.get("r1")
        assert row is not None
        self.assertEqual(set(row), DEERFLOW_ROW_KEYS)
        self.assertEqual(row["created_at"], "2026-01-02T03:04:05+00:00")
        self.assertRegex(row["updated_at"], _ISO_UTC)
        self.assertEqual(
            {key: row[key] for key in ("lease_expires_at", "cancel_requested_at", "cancel_action")},
            {"lease_expires_at": None, "cancel_requested_at": None, "cancel_action": None},
        )
        listed = await self.df.list_by_thread("t1")
        self.assertEqual([r["run_id"] for r in listed], ["r2", "r1"])
        self.assertEqual(listed[0]["created_at"], "2026-01-02T03:04:05.000001+00:00")
        self.assertEqual(await self.df.get("missing"), None)

    async def test_admission_answers_the_new_row_and_the_taken_over_rows(self) -> None:
        row, taken = await self.df.create_thread_operation_atomic(
            "r1",
            thread_id="t1",
            owner_worker_id="w1",
            lease_expires_at="2000-01-01T00:00:00+00:00",
            metadata={"a": 1},
        )
        self.assertEqual(taken, [])
        self.assertEqual(set(row), DEERFLOW_ROW_KEYS)
        self.assertEqual(
            (row["run_id"], row["status"], row["owner_worker_id"], row["lease_expires_at"]),
            ("r1", "pending", "w1", "2000-01-01T00:00:00+00:00"),
        )
        new, taken = await self.df.create_thread_operation_atomic(
            "r2",
            thread_id="t1",
            owner_worker_id="w2",
            lease_expires_at="2999-01-01T00:00:00+00:00",
            multitask_strategy="interrupt",
        )
        self.assertEqual(
            (new["run_id"], new["status"], new["owner_worker_id"]), ("r2", "pending", "w2")
        )
        self.assertEqual(
            [(r["run_id"], r["status"], r["error"], r["owner_worker_id"]) for r in taken],
            [("r1", "interrupted", "Cancelled by newer run", "w2")],
        )
        self.assertEqual(set(taken[0]), DEERFLOW_ROW_KEYS)
        self.assertEqual(await self.df.get("r1"), taken[0])

    async def test_a_busy_thread_is_a_unique_violation_to_deerflow(self) -> None:
        await self.df.create_thread_operation_atomic(
            "r1", thread_id="t1", owner_worker_id="w1", lease_expires_at=None
        )
        with self.assertRaises(ThreadConflictError) as raised:
            await self.df.create_thread_operation_atomic(
                "r2", thread_id="t1", owner_worker_id="w2", lease_expires_at=None
            )
        error = raised.exception
        self.assertTrue(is_unique_violation(error))
        self.assertEqual(error.sqlstate, "23505")
        self.assertEqual((error.thread_id, error.conflicting_run_id), ("t1", "r1"))
        self.assertEqual(error.code.name, "ABORTED")
        self.assertFalse(error.retryable)
        self.assertIsNone(await self.df.get("r2"))

    async def test_a_held_idempotency_key_raises_run_idempotency_conflict_with_the_row(
        self,
    ) -> None:
        row, _ = await self.df.create_thread_operation_atomic(
            "r1", thread_id="t1", owner_worker_id="w1", lease_expires_at=None, idempotency_key="k"
        )
        with self.assertRaises(RunIdempotencyConflict) as raised:
            await self.df.create_thread_operation_atomic(
                "r2",
                thread_id="t2",
                owner_worker_id="w2",
                lease_expires_at=None,
                idempotency_key="k",
            )
        error = raised.exception
        self.assertIsInstance(error, RuntimeError)
        self.assertIsInstance(error, IdempotencyConflictError)
        self.assertEqual(error.existing, row)  # type: ignore[attr-defined]
        self.assertEqual(error.code.name, "ALREADY_EXISTS")  # type: ignore[attr-defined]
        with self.assertRaises(RunIdempotencyConflict) as through_put:
            await self.df.put("r3", thread_id="t3", idempotency_key="k")
        self.assertEqual(through_put.exception.existing, row)  # type: ignore[attr-defined]
        self.assertIsNone(await self.df.get("r2"))
        self.assertIsNone(await self.df.get("r3"))

    async def test_a_taken_run_id_is_a_unique_violation_to_deerflow(self) -> None:
        row, _ = await self.df.create_thread_operation_atomic(
            "r1", thread_id="t1", owner_worker_id="w1", lease_expires_at=None
        )
        again, taken = await self.df.create_thread_operation_atomic(
            "r1", thread_id="t1", owner_worker_id="w1", lease_expires_at=None
        )
        self.assertEqual((again, taken), (row, []))  # a retry answers the stored row
        for thread_id, owner in (("t2", "w1"), ("t1", "w2")):
            with self.subTest(thread_id=thread_id, owner=owner):
                with self.assertRaises(RunIdTakenError) as raised:
                    await self.df.create_thread_operation_atomic(
                        "r1", thread_id=thread_id, owner_worker_id=owner, lease_expires_at=None
                    )
                error = raised.exception
                self.assertTrue(is_unique_violation(error))
                self.assertEqual(
                    (error.sqlstate, error.pgcode, error.code.name, error.retryable),
                    ("23505", "23505", "ALREADY_EXISTS", False),
                )
                self.assertNotIsInstance(error, IdempotencyConflictError)
                self.assertEqual(error.details, "run_id r1 already exists as a different operation")
        self.assertEqual(await self.df.get("r1"), row)
        self.assertEqual(await self.df.list_by_thread("t2"), [])

    async def test_lease_renewal_and_status_finalization(self) -> None:
        await self.df.create_thread_operation_atomic(
            "r1", thread_id="t1", owner_worker_id="w1", lease_expires_at=None
        )
        self.assertTrue(await self.df.start_run("r1"))
        self.assertFalse(await self.df.start_run("r1"))
        renewal = await self.df.renew_lease(
            "r1", owner_worker_id="w1", lease_expires_at="2999-01-01T00:00:00+00:00"
        )
        self.assertIsInstance(renewal, LeaseRenewal)
        self.assertEqual(renewal, LeaseRenewal(renewed=True, cancel_action=None))
        self.assertEqual(
            await self.df.renew_lease(
                "r1", owner_worker_id="w9", lease_expires_at="2999-01-01T00:00:00+00:00"
            ),
            LeaseRenewal(renewed=False, cancel_action=None),
        )
        self.assertIs(
            await self.df.update_lease(
                "r1", owner_worker_id="w1", lease_expires_at="2999-01-02T00:00:00+00:00"
            ),
            True,
        )
        self.assertEqual(await self.df.request_cancel("r1", action="interrupt"), "interrupt")
        self.assertEqual(await self.df.request_cancel("r1", action="rollback"), "interrupt")
        self.assertEqual(
            await self.df.renew_lease(
                "r1", owner_worker_id="w1", lease_expires_at="2999-01-03T00:00:00+00:00"
            ),
            LeaseRenewal(renewed=True, cancel_action="interrupt"),
        )
        finalization = await self.df.finalize_if_not_cancelled("r1", status="success")
        self.assertIsInstance(finalization, StatusFinalization)
        self.assertEqual(
            finalization, StatusFinalization(finalized=False, cancel_action="interrupt")
        )
        row = await self.df.get("r1")
        assert row is not None
        self.assertEqual(
            (row["status"], row["lease_expires_at"]), ("running", "2999-01-03T00:00:00+00:00")
        )
        self.assertRegex(row["cancel_requested_at"], _ISO_UTC)
        await self.df.create_thread_operation_atomic(
            "r2", thread_id="t2", owner_worker_id="w1", lease_expires_at=None
        )
        self.assertEqual(
            await self.df.finalize_if_not_cancelled("r2", status="success", stop_reason="done"),
            StatusFinalization(finalized=True, cancel_action=None),
        )
        with self.assertRaises(ValueError) as bad:
            await self.df.request_cancel("r2", action="stop")
        self.assertTrue(str(bad.exception).startswith("INVALID_ARGUMENT: action "), bad.exception)

    async def test_update_status_is_guarded_as_deerflows(self) -> None:
        await self.df.put("r1", thread_id="t1", status="success")
        self.assertIs(await self.df.update_status("r1", "error", error="late"), False)
        self.assertEqual((await self.df.get("r1") or {})["status"], "success")
        await self.df.put("r2", thread_id="t1", status="interrupted")
        self.assertIs(await self.df.update_status("r2", "error", stop_reason="rolled_back"), True)
        row = await self.df.get("r2")
        assert row is not None
        self.assertEqual((row["status"], row["stop_reason"]), ("error", "rolled_back"))
        self.assertIs(await self.df.update_status("missing", "error"), False)
        self.assertIs(await self.df.update_status("r1", "error", guarded=False), True)

    async def test_update_run_completion_is_guarded_as_deerflows(self) -> None:
        await self.df.put("r1", thread_id="t1", status="error")
        self.assertIs(
            await self.df.update_run_completion("r1", status="success", total_tokens=5), False
        )
        self.assertIs(
            await self.df.update_run_completion("r1", status="error", total_tokens=5), True
        )
        await self.df.put("r2", thread_id="t1", status="interrupted")
        self.assertIs(await self.df.update_run_completion("r2", status="success"), False)
        usage = {"m": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
        self.assertIs(
            await self.df.update_run_completion("r2", status="error", token_usage_by_model=usage),
            True,
        )
        row = await self.df.get("r2")
        assert row is not None
        self.assertEqual((row["status"], row["token_usage_by_model"]), ("error", usage))

    async def test_thread_reads(self) -> None:
        await self.df.put(
            "r1", thread_id="t1", status="success", metadata={"regenerate_from_run_id": "s1"}
        )
        await self.df.put(
            "r2",
            thread_id="t1",
            metadata={"regenerate_from_run_id": "s0", "replay_kind": "edit"},
            created_at="2026-01-01T00:00:00+00:00",
        )
        sources = await self.df.list_successful_regenerate_sources("t1")
        self.assertEqual(sources, {"s1"})
        self.assertIsInstance(sources, set)
        edits = await self.df.list_edit_regenerate_runs("t1")
        self.assertEqual([r["run_id"] for r in edits], ["r2"])
        self.assertEqual(await self.df.get_many_by_thread("t1", set()), {})
        many = await self.df.get_many_by_thread("t1", {"r1", "r2", "r9"})
        self.assertEqual(sorted(many), ["r1", "r2"])
        self.assertEqual(many["r2"], await self.df.get("r2"))

    async def test_takeover_of_an_expired_lease(self) -> None:
        await self.df.create_run_atomic(
            "r1",
            thread_id="t1",
            owner_worker_id="w1",
            lease_expires_at="2000-01-01T00:00:00+00:00",
        )
        await self.df.create_run_atomic(
            "r2", thread_id="t2", owner_worker_id="w1", lease_expires_at="2999-01-01T00:00:00+00:00"
        )
        expired = await self.df.list_inflight_with_expired_lease(grace_seconds=0)
        self.assertIn("r1", [r["run_id"] for r in expired])
        self.assertNotIn("r2", [r["run_id"] for r in expired])
        self.assertIs(
            await self.df.claim_for_takeover("r2", grace_seconds=0, error="lease expired"), False
        )
        self.assertIs(
            await self.df.claim_for_takeover(
                "r1", grace_seconds=0, error="lease expired", stop_reason="orphan_recovered"
            ),
            True,
        )
        self.assertIs(await self.df.claim_for_takeover("r1", grace_seconds=0, error="again"), False)
        row = await self.df.get("r1")
        assert row is not None
        self.assertEqual(
            (row["status"], row["error"], row["stop_reason"]),
            ("error", "lease expired", "orphan_recovered"),
        )

    async def test_delete_thread_operation_releases_the_slot(self) -> None:
        await self.df.create_thread_operation_atomic(
            "r1",
            thread_id="t1",
            owner_worker_id="w1",
            lease_expires_at=None,
            operation_kind="checkpoint_write",
            user_id="alice",
        )
        self.assertEqual(await self.df.list_by_thread("t1"), [])  # not a run
        await self.df.delete_thread_operation("r1", user_id="bob")
        self.assertIsNotNone(await self.df.get("r1"))
        await self.df.delete_thread_operation("r1", user_id="alice")
        self.assertIsNone(await self.df.get("r1"))
        row, _ = await self.df.create_thread_operation_atomic(
            "r2", thread_id="t1", owner_worker_id="w1", lease_expires_at=None
        )
        self.assertEqual(row["status"], "pending")


class DeerFlowShapesMysqlTest(DeerFlowShapesTest):
    backend = "mysql"


# -- with a "deerflow" package on the import path ---------------------------

#: The stand-in package: module path → source.
FAKE_DEERFLOW: dict[str, str] = {
    "deerflow/runtime/user_context.py": """
        from contextvars import ContextVar

        _user = ContextVar("user", default=None)

        class _AutoSentinel:
            pass

        AUTO = _AutoSentinel()

        def set_current_user(user):
            return _user.set(user)

        def get_current_user():
            return _user.get()

        def resolve_user_id(value, *, method_name="repository method"):
            if isinstance(value, _AutoSentinel):
                user = _user.get()
                if user is None:
                    raise RuntimeError(
                        f"{method_name} called with user_id=AUTO but no user context is set"
                    )
                return str(user.id)
            return value
    """,
    "deerflow/runtime/runs/manager.py": '''
        class ConflictError(Exception):
            """The thread already has an active run."""

        {is_unique_violation}
    ''',
    "deerflow/runtime/runs/store/base.py": """
        import abc
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class LeaseRenewal:
            renewed: bool
            cancel_action: str | None = None

        @dataclass(frozen=True)
        class StatusFinalization:
            finalized: bool
            cancel_action: str | None = None

        class RunIdempotencyConflict(RuntimeError):
            def __init__(self, existing):
                super().__init__("held")
                self.existing = existing

        class RunStore(abc.ABC):
        {methods}
    """,
}

#: The abstract methods of DeerFlow's RunStore at f1f4af99b.
DEERFLOW_ABSTRACT = (
    "put",
    "get",
    "list_by_thread",
    "update_status",
    "start_run",
    "delete",
    "update_model_name",
    "update_run_completion",
    "list_pending",
    "list_inflight",
    "aggregate_tokens_by_thread",
    "update_lease",
    "claim_for_takeover",
    "list_inflight_with_expired_lease",
)


def write_fake_deerflow(root: Path, abstract: tuple[str, ...] = DEERFLOW_ABSTRACT) -> None:
    """Writes the stand-in package under ``root``; its RunStore declares
    ``abstract`` abstract and every other DeerFlow method with a default."""
    methods = []
    for name in DEERFLOW_INTERFACE:
        decorator = "    @abc.abstractmethod\n" if name in abstract else ""
        methods.append(
            f"{decorator}    async def {name}(self, *args, **kwargs):\n        raise NotImplementedError\n"
        )
    for module, source in FAKE_DEERFLOW.items():
        path = root / module
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            textwrap.dedent(source)
            .replace("{methods}", "\n".join(methods))
            .replace("{is_unique_violation}", inspect.getsource(is_unique_violation))
        )
        path.write_text(text)
    for directory in [p for p in (root / "deerflow").rglob("*") if p.is_dir()] + [
        root / "deerflow"
    ]:
        (directory / "__init__.py").touch()


def run_with_fake_deerflow(script: str, env: dict[str, str] | None = None) -> Any:
    """Runs ``script`` in a fresh interpreter with the stand-in ``deerflow``
    importable; the script prints one JSON value, which is returned."""
    with tempfile.TemporaryDirectory() as root:
        write_fake_deerflow(Path(root))
        python_dir = Path(__file__).resolve().parents[1]
        full_env = {
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join([root, str(python_dir)]),
        }
        result = subprocess.run(
            [sys.executable, "-W", "error::RuntimeWarning", "-c", textwrap.dedent(script)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    if result.returncode != 0:
        raise AssertionError(f"the child failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout)


class WithDeerFlowTest(ServerTestCase):
    """DeerFlow importable: the class is its RunStore and answers with its types."""

    def test_abc_and_types_are_deerflows(self) -> None:
        prefix = uuid.uuid4().hex[:8]
        answer = run_with_fake_deerflow(
            """
            import asyncio, json, os
            from deerflow.runtime.runs.store import base
            from deerflow.runtime.runs import manager
            from runstore_client import ThreadConflictError
            from runstore_client.deerflow import DeerFlowRunStore
            from runstore_client.errors import RunIdTakenError

            async def main():
                p = os.environ["PREFIX"]
                out = {}
                async with DeerFlowRunStore(os.environ["TARGET"], timeout=30) as store:
                    out["isinstance"] = isinstance(store, base.RunStore)
                    out["subclass"] = DeerFlowRunStore.__bases__[-1] is base.RunStore
                    await store.create_thread_operation_atomic(
                        p + "r1", thread_id=p + "t1", owner_worker_id="w1",
                        lease_expires_at=None, idempotency_key=p + "k", user_id="u")
                    renewal = await store.renew_lease(
                        p + "r1", owner_worker_id="w1", lease_expires_at="2999-01-01T00:00:00+00:00")
                    out["renewal"] = [type(renewal) is base.LeaseRenewal, renewal.renewed]
                    done = await store.finalize_if_not_cancelled(p + "r1", status="success")
                    out["finalization"] = [type(done) is base.StatusFinalization, done.finalized]
                    try:
                        await store.create_thread_operation_atomic(
                            p + "r2", thread_id=p + "t9", owner_worker_id="w2",
                            lease_expires_at=None, idempotency_key=p + "k", user_id="u")
                    except base.RunIdempotencyConflict as error:
                        out["idempotency"] = error.existing["run_id"] == p + "r1"
                    await store.create_thread_operation_atomic(
                        p + "r3", thread_id=p + "t3", owner_worker_id="w1",
                        lease_expires_at=None, user_id="u")
                    try:
                        await store.create_thread_operation_atomic(
                            p + "r4", thread_id=p + "t3", owner_worker_id="w2",
                            lease_expires_at=None, user_id="u")
                    except manager.ConflictError as error:
                        out["conflict"] = [
                            manager.is_unique_violation(error),
                            isinstance(error, ThreadConflictError),
                            error.conflicting_run_id == p + "r3",
                        ]
                    try:
                        await store.create_thread_operation_atomic(
                            p + "r3", thread_id=p + "t4", owner_worker_id="w2",
                            lease_expires_at=None, user_id="u")
                    except manager.ConflictError as error:
                        out["run_id_taken"] = [
                            manager.is_unique_violation(error),
                            isinstance(error, RunIdTakenError),
                            error.code.name,
                        ]
                    for run_id in ("r1", "r3"):
                        await store.delete(p + run_id, user_id=None)
                print(json.dumps(out))

            asyncio.run(main())
            """,
            {"TARGET": self.server.target, "PREFIX": prefix},
        )
        self.assertEqual(
            answer,
            {
                "isinstance": True,
                "subclass": True,
                "renewal": [True, True],
                "finalization": [True, True],
                "idempotency": True,
                "conflict": [True, True, True],
                "run_id_taken": [True, True, "ALREADY_EXISTS"],
            },
        )

    def test_registered_when_the_abc_asks_for_more(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            write_fake_deerflow(Path(root))
            base = Path(root, "deerflow/runtime/runs/store/base.py")
            base.write_text(
                base.read_text()
                + "\n    @abc.abstractmethod\n    async def checkpoint_mutation_fence(self): ...\n"
            )
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([root, str(Path(__file__).resolve().parents[1])]),
            }
            script = (
                "from deerflow.runtime.runs.store.base import RunStore\n"
                "from runstore_client.deerflow import DeerFlowRunStore\n"
                "print(isinstance(DeerFlowRunStore('127.0.0.1:1'), RunStore), DeerFlowRunStore.__bases__[-1].__name__)\n"
            )
            result = subprocess.run(
                [sys.executable, "-W", "always", "-c", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "True object")
        self.assertIn("RuntimeWarning", result.stderr)
        self.assertIn("checkpoint_mutation_fence", result.stderr)


class WithoutDeerFlowTest(unittest.TestCase):
    def test_types_are_ours_with_deerflows_attributes(self) -> None:
        self.assertEqual(LeaseRenewal(renewed=True), LeaseRenewal(True, None))
        self.assertEqual(
            repr(StatusFinalization(False, "rollback")),
            "StatusFinalization(finalized=False, cancel_action='rollback')",
        )
        error = RunIdempotencyConflict({"run_id": "r1"})
        self.assertIsInstance(error, RuntimeError)
        self.assertEqual(error.existing, {"run_id": "r1"})
        self.assertTrue(issubclass(ThreadConflictError, RunStoreError))
        self.assertEqual(ThreadConflictError.sqlstate, "23505")
        self.assertEqual((RunIdTakenError.sqlstate, RunIdTakenError.pgcode), ("23505", "23505"))


if __name__ == "__main__":
    unittest.main()
