"""What DeerFlow's own tests found wrong with the seed client, fixed in both
Python stores (issue 13): an omitted user_id resolves from DeerFlow's user
context (AUTO), put(status=None) stores pending, a non-string model_name is
stored as str(value), follow_up_to_run_id is accepted. And GrpcRunStore's
part-2 wire details: conflicts decoded with their details, the lease forms,
usage per model read back exactly as written.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import collections  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import unittest  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from google.protobuf.any_pb2 import Any as AnyMessage  # noqa: E402
from google.protobuf.message import Message  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

from runstore_client import (  # noqa: E402
    AlreadyExistsError,
    GrpcRunStore,
    IdempotencyConflictError,
    InvalidArgumentError,
    RetryPolicy,
    RunStoreError,
    ThreadConflictError,
)
from runstore_client.deerflow import DeerFlowRunStore  # noqa: E402
from runstore_client.gen.runstore.v1 import run_store_pb2 as pb  # noqa: E402
from runstore_client.retry import SINGLE_ATTEMPT_RPCS  # noqa: E402
from tests.support.backends import ServerProcess, ServerTestCase  # noqa: E402
from tests.test_deerflow_interface import run_with_fake_deerflow  # noqa: E402


async def _remove(target: str, run_ids: set[str]) -> None:
    """Removes the runs a test wrote, on the in-memory backend (which has no "truncate")."""
    async with GrpcRunStore(target, timeout=30) as cleaner:
        for run_id in run_ids:
            await cleaner.delete(run_id, user_id=None)


#: How far two clocks of one machine may disagree below the millisecond.
CLOCKS = timedelta(milliseconds=1)


class FixesTest(ServerTestCase):
    backend: ClassVar[str] = "memory"

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.df = DeerFlowRunStore(self.server.target, timeout=30)
        self.written: set[str] = set()

    async def asyncTearDown(self) -> None:
        await self.df.close()
        if self.database is None:
            await _remove(self.server.target, self.written)
        await super().asyncTearDown()

    def stores(self) -> list[tuple[str, Any]]:
        return [("grpc", self.store), ("deerflow", self.df)]

    async def test_status_none_is_stored_as_pending(self) -> None:
        for name, store in self.stores():
            with self.subTest(store=name):
                self.written.add(f"{name}-r1")
                await store.put(f"{name}-r1", thread_id="t1", status=None)
                self.assertEqual((await store.get(f"{name}-r1"))["status"], "pending")

    async def test_a_non_string_model_name_is_stored_as_its_str(self) -> None:
        for name, store in self.stores():
            with self.subTest(store=name):
                self.written.add(f"{name}-r1")
                await store.put(f"{name}-r1", thread_id="t1", model_name=123)
                self.assertEqual((await store.get(f"{name}-r1"))["model_name"], "123")
                await store.update_model_name(f"{name}-r1", 4.5)
                self.assertEqual((await store.get(f"{name}-r1"))["model_name"], "4.5")

    async def test_follow_up_to_run_id_is_accepted(self) -> None:
        for name, store in self.stores():
            with self.subTest(store=name):
                self.written.update({f"{name}-r1", f"{name}-r2"})
                await store.put(f"{name}-r1", thread_id="t1", follow_up_to_run_id="r0")
                self.assertEqual((await store.get(f"{name}-r1"))["follow_up_to_run_id"], "r0")
        await self.store.create_thread_operation(
            "grpc-r2", thread_id="t2", owner_worker_id="w1", follow_up_to_run_id="grpc-r1"
        )
        await self.df.create_thread_operation_atomic(
            "deerflow-r2",
            thread_id="t3",
            owner_worker_id="w1",
            lease_expires_at=None,
            follow_up_to_run_id="deerflow-r1",
        )
        self.assertEqual((await self.store.get("grpc-r2") or {})["follow_up_to_run_id"], "grpc-r1")
        self.assertEqual(
            (await self.df.get("deerflow-r2") or {})["follow_up_to_run_id"], "deerflow-r1"
        )

    async def test_without_deerflow_an_omitted_user_id_is_no_user(self) -> None:
        for name, store in self.stores():
            with self.subTest(store=name):
                self.written.add(f"{name}-r1")
                await store.put(f"{name}-r1", thread_id="t1", user_id="alice")
                self.assertEqual((await store.get(f"{name}-r1"))["user_id"], "alice")
                self.assertIsNone(await store.get(f"{name}-r1", user_id="bob"))
                self.assertEqual(len(await store.list_by_thread("t1")), 1 if name == "grpc" else 2)

    # -- GrpcRunStore's part-2 wire details --------------------------------

    async def test_thread_conflict_carries_its_detail(self) -> None:
        self.written.update({"r1", "r2"})
        await self.store.create_thread_operation("r1", thread_id="t1", owner_worker_id="w1")
        with self.assertRaises(ThreadConflictError) as raised:
            await self.store.create_thread_operation("r2", thread_id="t1", owner_worker_id="w2")
        error = raised.exception
        self.assertEqual(
            (error.code.name, error.thread_id, error.conflicting_run_id, error.retryable),
            ("ABORTED", "t1", "r1", False),
        )
        self.assertTrue(error.details.startswith("thread_id t1 "), error.details)

    async def test_idempotency_conflict_carries_the_existing_row(self) -> None:
        self.written.update({"r1", "r2", "r3"})
        admitted = await self.store.create_thread_operation(
            "r1", thread_id="t1", owner_worker_id="w1", idempotency_key="key-1"
        )
        for attempt in (
            self.store.create_thread_operation(
                "r2", thread_id="t2", owner_worker_id="w2", idempotency_key="key-1"
            ),
            self.store.put("r3", thread_id="t3", idempotency_key="key-1"),
        ):
            with self.assertRaises(IdempotencyConflictError) as raised:
                await attempt
            self.assertEqual(raised.exception.code.name, "ALREADY_EXISTS")
            self.assertEqual(raised.exception.existing, admitted["run"])
        self.assertIsNone(await self.store.get("r2"))
        self.assertIsNone(await self.store.get("r3"))

    async def test_an_idempotency_conflict_on_a_large_row_still_carries_it_whole(self) -> None:
        # A row too large for a gRPC trailer travels as a reference the client
        # reads back itself; the caller sees the whole row either way.
        self.written.update({"big", "other"})
        metadata = {"blob": "x" * 200_000}
        admitted = await self.store.create_thread_operation(
            "big", thread_id="t1", owner_worker_id="w1", idempotency_key="key-big", metadata=metadata
        )
        with self.assertRaises(IdempotencyConflictError) as raised:
            await self.store.put("other", thread_id="t2", idempotency_key="key-big")
        self.assertEqual(raised.exception.existing, admitted["run"])
        self.assertEqual(raised.exception.existing["metadata"], metadata)
        self.assertIsNone(await self.store.get("other"))

    async def test_run_id_taken_by_another_operation_is_already_exists(self) -> None:
        self.written.add("r1")
        first = await self.store.create_thread_operation("r1", thread_id="t1", owner_worker_id="w1")
        again = await self.store.create_thread_operation("r1", thread_id="t1", owner_worker_id="w1")
        self.assertEqual(again, first)
        with self.assertRaises(AlreadyExistsError) as raised:
            await self.store.create_thread_operation("r1", thread_id="t1", owner_worker_id="w2")
        self.assertNotIsInstance(raised.exception, IdempotencyConflictError)

    async def test_a_lease_is_an_instant_or_a_duration(self) -> None:
        self.written.add("r1")
        admission = await self.store.create_thread_operation(
            "r1", thread_id="t1", owner_worker_id="w1", lease=timedelta(minutes=5)
        )
        # The store adds the duration to its clock at the write (a bound, not a
        # timing). On MySQL the lease comes from the database's clock and the
        # row's times from the server process's, whose microseconds within a
        # millisecond are its own: the two agree to the millisecond (CLOCKS).
        lease_left = _instant(admission["run"]["lease_expires_at"]) - _instant(
            admission["run"]["created_at"]
        )
        self.assertTrue(timedelta(minutes=5) - CLOCKS <= lease_left < timedelta(minutes=6), lease_left)
        at = datetime(2999, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
        for lease, expected in (
            ({"expires_at": "2999-01-01T00:00:00Z"}, "2999-01-01T00:00:00.000000Z"),
            (at, "2999-01-01T00:00:00.000000Z"),
            ("2999-01-02T00:00:00+00:00", "2999-01-02T00:00:00.000000Z"),
        ):
            with self.subTest(lease=lease):
                self.assertEqual(
                    await self.store.renew_lease("r1", owner_worker_id="w1", lease=lease),
                    {"renewed": True, "cancel_action": None},
                )
                self.assertEqual((await self.store.get("r1") or {})["lease_expires_at"], expected)
        self.assertIs(
            await self.store.update_lease("r1", owner_worker_id="w1", lease={"duration_ms": 1500}),
            True,
        )
        renewed = await self.store.get("r1") or {}
        lease_left = _instant(renewed["lease_expires_at"]) - _instant(renewed["updated_at"])
        self.assertTrue(
            timedelta(seconds=1.5) - CLOCKS <= lease_left < timedelta(seconds=61.5), lease_left
        )
        for bad in ({"expires_at": "2999-01-01", "duration_ms": 1}, {}, 30, None):
            with self.subTest(bad=bad), self.assertRaises(InvalidArgumentError) as raised:
                await self.store.renew_lease("r1", owner_worker_id="w1", lease=bad)
            self.assertTrue(raised.exception.details.startswith("lease "), raised.exception.details)

    async def test_usage_per_model_reads_back_as_written(self) -> None:
        self.written.add("r1")
        await self.store.put("r1", thread_id="t1", status="running")
        usage = {
            "gpt": {
                "input_tokens": 1,
                "output_tokens": 2,
                "total_tokens": 3,
                "cache_read_tokens": 0,
            },
            "claude": {"input_tokens": 4, "output_tokens": 5, "total_tokens": 9},
        }
        await self.store.update_run_progress("r1", token_usage_by_model=usage)
        self.assertEqual((await self.store.get("r1") or {})["token_usage_by_model"], usage)
        await self.store.update_run_progress("r1", total_tokens=7)
        self.assertEqual((await self.store.get("r1") or {})["token_usage_by_model"], usage)
        self.assertIs(await self.store.update_run_completion("r1", status="success"), True)
        self.assertEqual((await self.store.get("r1") or {})["token_usage_by_model"], {})


class FixesMysqlTest(FixesTest):
    backend = "mysql"


class ConflictsAreNotRetriedTest(ServerTestCase):
    """A conflict is one call on the server, whatever the retry policy: its
    grpc_server_started_total counter (the server's Prometheus metrics) moves by one."""

    metrics_url: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess.start({"METRICS_PORT": "0"})
        cls.addClassCleanup(cls.server.stop)
        for line in cls.server.output().splitlines():
            if "serving Prometheus metrics" in line:
                cls.metrics_url = json.loads(line)["url"]
                return
        raise AssertionError(f"no metrics URL in:\n{cls.server.output()}")

    def started(self) -> int:
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        pattern = (
            r'^grpc_server_started_total\{[^}]*grpc_method="CreateThreadOperation"[^}]*\} (\d+)$'
        )
        counts = re.findall(pattern, text, re.MULTILINE)
        return sum(int(count) for count in counts)

    async def test_thread_and_idempotency_conflicts_are_answered_once(self) -> None:
        policy = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.001)
        async with GrpcRunStore(self.server.target, timeout=30, retry=policy) as store:
            await store.create_thread_operation(
                "r1", thread_id="t1", owner_worker_id="w1", idempotency_key="k1"
            )
            before = self.started()
            with self.assertRaises(ThreadConflictError):
                await store.create_thread_operation("r2", thread_id="t1", owner_worker_id="w2")
            self.assertEqual(self.started(), before + 1)
            with self.assertRaises(IdempotencyConflictError):
                await store.create_thread_operation(
                    "r3", thread_id="t3", owner_worker_id="w2", idempotency_key="k1"
                )
            self.assertEqual(self.started(), before + 2)
            await store.delete("r1", user_id=None)


def _instant(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")


#: The child: puts and reads through both stores, as alice, as nobody, and
#: with explicit users; prints what each read saw.
_AUTO_SCRIPT = """
import asyncio, json, os
from deerflow.runtime import user_context
from runstore_client import GrpcRunStore
from runstore_client.deerflow import DeerFlowRunStore

class User:
    def __init__(self, id):
        self.id = id

async def main():
    p = os.environ["PREFIX"]
    out = {}
    target = os.environ["TARGET"]
    async with GrpcRunStore(target, timeout=30) as grpc, DeerFlowRunStore(target, timeout=30) as df:
        for name, store in (("grpc", grpc), ("deerflow", df)):
            r, t = f"{p}{name}-r", f"{p}{name}-t"
            user_context.set_current_user(User("alice"))
            await store.put(r + "1", thread_id=t)
            await store.put(r + "2", thread_id=t, user_id=None)
            await store.put(r + "3", thread_id=t, user_id=user_context.AUTO)
            seen = {
                "owner": (await store.get(r + "1", user_id=None))["user_id"],
                "explicit_none_owner": (await store.get(r + "2", user_id=None))["user_id"],
                "deerflow_auto_owner": (await store.get(r + "3", user_id=None))["user_id"],
                "alice_sees": sorted(x["run_id"][len(r):] for x in await store.list_by_thread(t)),
                "alice_gets_unowned": await store.get(r + "2") is not None,
            }
            user_context.set_current_user(User("bob"))
            seen["bob_sees"] = sorted(x["run_id"][len(r):] for x in await store.list_by_thread(t))
            seen["bob_gets_alices"] = await store.get(r + "1") is not None
            await store.delete(r + "1")
            seen["bob_deleted_alices"] = await store.get(r + "1", user_id=None) is None
            user_context.set_current_user(None)
            seen["nobody_sees"] = sorted(
                x["run_id"][len(r):] for x in await store.list_by_thread(t, user_id=None))
            out[name] = seen
            for i in "123":
                await store.delete(r + i, user_id=None)
        user_context.set_current_user(User("carol"))
        row, _ = await df.create_thread_operation_atomic(
            p + "adm", thread_id=p + "adm", owner_worker_id="w", lease_expires_at=None, user_id=None)
        out["admission_none_is_current_user"] = row["user_id"]
        admitted = await grpc.create_thread_operation(
            p + "adm2", thread_id=p + "adm2", owner_worker_id="w", user_id=None)
        out["grpc_admission_none_is_no_user"] = admitted["run"]["user_id"]
        await df.delete_thread_operation(p + "adm", user_id="carol")
        await grpc.delete_thread_operation(p + "adm2", user_id=None)
    print(json.dumps(out))

asyncio.run(main())
"""

_SEEN = {
    "owner": "alice",
    "explicit_none_owner": None,
    "deerflow_auto_owner": "alice",
    "alice_sees": ["1", "3"],
    "alice_gets_unowned": False,
    "bob_sees": [],
    "bob_gets_alices": False,
    "bob_deleted_alices": False,
    "nobody_sees": ["1", "2", "3"],
}


class AutoUserTest(ServerTestCase):
    """With DeerFlow importable, an omitted user_id is DeerFlow's current user."""

    def test_omitted_user_id_is_the_current_user(self) -> None:
        answer = run_with_fake_deerflow(
            _AUTO_SCRIPT, {"TARGET": self.server.target, "PREFIX": uuid.uuid4().hex[:8]}
        )
        self.assertEqual(
            answer,
            {
                "grpc": _SEEN,
                "deerflow": _SEEN,
                "admission_none_is_current_user": "carol",
                "grpc_admission_none_is_no_user": None,
            },
        )


#: The child, with no current user: every call that leaves user_id to AUTO
#: raises DeerFlow's RuntimeError before anything is sent (the name in its
#: message is the method's, "repository method" for GrpcRunStore, DeerFlow's
#: default); explicit users, and an explicit None, still work.
_FAIL_CLOSED_SCRIPT = """
import asyncio, json, os
from deerflow.runtime import user_context
from runstore_client import GrpcRunStore
from runstore_client.deerflow import DeerFlowRunStore

def refused(error):
    return [type(error).__name__, str(error).split(" called with user_id=AUTO")[0]]

async def outcome(call):
    try:
        await call
        return "answered"
    except RuntimeError as error:
        return refused(error)

async def main():
    p = os.environ["PREFIX"]
    out = {}
    target = os.environ["TARGET"]
    async with GrpcRunStore(target, timeout=30) as grpc, DeerFlowRunStore(target, timeout=30) as df:
        for name, store in (("grpc", grpc), ("deerflow", df)):
            r, t = f"{p}{name}-r", f"{p}{name}-t"
            await store.put(r + "0", thread_id=t, user_id="alice")
            seen = {
                "put": await outcome(store.put(r + "1", thread_id=t)),
                "get": await outcome(store.get(r + "0")),
                "list_by_thread": await outcome(store.list_by_thread(t)),
                "delete": await outcome(store.delete(r + "0")),
                "get_many_by_thread": await outcome(store.get_many_by_thread(t, [r + "0"])),
                "list_successful_regenerate_sources": await outcome(
                    store.list_successful_regenerate_sources(t)),
                "list_edit_regenerate_runs": await outcome(store.list_edit_regenerate_runs(t)),
                "deerflow_auto": await outcome(store.get(r + "0", user_id=user_context.AUTO)),
                "rows": [
                    x["run_id"][len(r):] for x in await store.list_by_thread(t, user_id=None)],
            }
            out[name] = seen
            await store.delete(r + "0", user_id=None)
        out["deerflow_empty_get_many"] = await df.get_many_by_thread(p + "t", [])
        out["deerflow_admission"] = await outcome(df.create_thread_operation_atomic(
            p + "a1", thread_id=p + "t", owner_worker_id="w", lease_expires_at=None))
        out["deerflow_alias"] = await outcome(df.create_run_atomic(
            p + "a2", thread_id=p + "t", owner_worker_id="w", lease_expires_at=None))
        out["grpc_admission"] = await outcome(grpc.create_thread_operation(
            p + "a3", thread_id=p + "t", owner_worker_id="w"))
        out["admitted"] = [x["run_id"][len(p):] for x in await df.list_by_thread(p + "t", user_id=None)]
        row, _ = await df.create_thread_operation_atomic(
            p + "a4", thread_id=p + "t", owner_worker_id="w", lease_expires_at=None, user_id="dave")
        out["explicit_user_admitted"] = row["user_id"]
        admitted = await grpc.create_thread_operation(
            p + "a5", thread_id=p + "t5", owner_worker_id="w", user_id=None)
        out["grpc_explicit_none_admitted"] = admitted["run"]["user_id"]
        del user_context.resolve_user_id  # a user context without DeerFlow's resolver
        out["without_resolver"] = await outcome(df.get(p + "a4"))
        for run_id in ("a4", "a5"):
            await df.delete_thread_operation(p + run_id, user_id=None)
    print(json.dumps(out))

asyncio.run(main())
"""


def _refused_by(method: str) -> dict[str, object]:
    calls = (
        "put",
        "get",
        "list_by_thread",
        "delete",
        "get_many_by_thread",
        "list_successful_regenerate_sources",
        "list_edit_regenerate_runs",
    )
    seen: dict[str, object] = {call: ["RuntimeError", method.format(call=call)] for call in calls}
    seen["deerflow_auto"] = ["RuntimeError", method.format(call="get")]
    seen["rows"] = ["0"]  # the refused put stored nothing, the refused delete removed nothing
    return seen


class NoUserContextTest(ServerTestCase):
    """With DeerFlow importable and no current user, an omitted user_id fails
    as DeerFlow's own resolver does, never as "no owner, no filter"."""

    def test_omitted_user_id_without_a_user_raises_deerflows_error(self) -> None:
        answer = run_with_fake_deerflow(
            _FAIL_CLOSED_SCRIPT, {"TARGET": self.server.target, "PREFIX": uuid.uuid4().hex[:8]}
        )
        admission = "DeerFlowRunStore.create_thread_operation_atomic"
        self.assertEqual(
            answer,
            {
                "grpc": _refused_by("repository method"),
                "deerflow": _refused_by("DeerFlowRunStore.{call}"),
                "deerflow_empty_get_many": {},
                "deerflow_admission": ["RuntimeError", admission],
                "deerflow_alias": ["RuntimeError", admission],
                "grpc_admission": ["RuntimeError", "repository method"],
                "admitted": [],
                "explicit_user_admitted": "dave",
                "grpc_explicit_none_admitted": None,
                "without_resolver": ["RuntimeError", "DeerFlowRunStore.get"],
            },
        )


class UsageKeysTest(ServerTestCase):
    """A key of a model's usage the wire has no field for is refused, naming
    it, by both stores, before anything is sent."""

    async def test_an_unknown_usage_key_is_refused_and_nothing_changes(self) -> None:
        usage = {"m": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
        bad = {"m": {**usage["m"], "reasoning_tokens": 4}}
        await self.store.put("r1", thread_id="t1", status="running")
        await self.store.update_run_progress("r1", total_tokens=3, token_usage_by_model=usage)
        before = await self.store.get("r1")
        async with DeerFlowRunStore(self.server.target, timeout=30) as df:
            for name, store in (("grpc", self.store), ("deerflow", df)):
                for method, fields in (
                    ("update_run_progress", {}),
                    ("update_run_completion", {"status": "success"}),
                ):
                    with self.subTest(store=name, method=method):
                        with self.assertRaises(InvalidArgumentError) as raised:
                            await getattr(store, method)("r1", token_usage_by_model=bad, **fields)
                        self.assertEqual(
                            (raised.exception.code.name, raised.exception.details),
                            (
                                "INVALID_ARGUMENT",
                                "token_usage_by_model.m.reasoning_tokens is not a usage counter"
                                " (a model's usage has only input_tokens, output_tokens,"
                                " total_tokens, cache_read_tokens)",
                            ),
                        )
        self.assertEqual(await self.store.get("r1"), before)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _status_details(code: grpc.StatusCode, message: str, detail: Message) -> bytes:
    """A google.rpc.Status (1 code, 2 message, 3 details) as grpc-status-details-bin carries it."""
    packed = AnyMessage()
    packed.Pack(detail)

    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    return (
        _varint(1 << 3)
        + _varint(code.value[0])
        + field(2, message.encode())
        + field(3, packed.SerializeToString())
    )


#: What a FakeServer method answers: the response message, or raises through context.abort.
Answer = Callable[[grpc.aio.ServicerContext], Awaitable[Message]]


class FakeServer(grpc.GenericRpcHandler):
    """An in-process server for every RPC of RunStoreService: each call is
    counted by its method name and answered by ``answers[method]``, or else
    fails with UNAVAILABLE (as the real server does while its database is down)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.answers: dict[str, Answer] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method.rsplit("/", 1)[-1]  # type: ignore[attr-defined]

        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.calls[method] += 1
            answer = self.answers.get(method)
            if answer is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
            return (await answer(context)).SerializeToString()

        return grpc.unary_unary_rpc_method_handler(handle)


class FakeServerTestCase(unittest.IsolatedAsyncioTestCase):
    """A FakeServer on port 0 and a GrpcRunStore allowed 4 quick attempts."""

    async def asyncSetUp(self) -> None:
        self.fake = FakeServer()
        self.grpc_server = grpc.aio.server()
        self.grpc_server.add_generic_rpc_handlers((self.fake,))
        port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        await self.grpc_server.start()
        policy = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.001)
        self.store = GrpcRunStore(f"127.0.0.1:{port}", timeout=30, retry=policy)

    async def asyncTearDown(self) -> None:
        await self.store.close()
        await self.grpc_server.stop(None)


class NonIdempotentCallsAreNotRetriedTest(FakeServerTestCase):
    """start_run, claim_next_run, finalize_if_not_cancelled and
    claim_for_takeover answer a repeat differently from their first attempt
    when that applied, so GrpcRunStore makes them once; every other call is
    retried on UNAVAILABLE (4 attempts here)."""

    async def test_the_four_are_attempted_once_and_the_others_four_times(self) -> None:
        store, lease = self.store, timedelta(seconds=60)
        calls: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
            ("StartRun", lambda: store.start_run("r1"), 1),
            ("ClaimNextRun", lambda: store.claim_next_run(owner_worker_id="w1", lease=lease), 1),
            (
                "FinalizeIfNotCancelled",
                lambda: store.finalize_if_not_cancelled("r1", status="success"),
                1,
            ),
            ("ClaimForTakeover", lambda: store.claim_for_takeover("r1", error="taken by w2"), 1),
            ("Get", lambda: store.get("r1", user_id=None), 4),
            ("RenewLease", lambda: store.renew_lease("r1", owner_worker_id="w1", lease=lease), 4),
            ("RequestCancel", lambda: store.request_cancel("r1", action="interrupt"), 4),
            (
                "CreateThreadOperation",
                lambda: store.create_thread_operation("r2", thread_id="t1", owner_worker_id="w1"),
                4,
            ),
        ]
        for method, call, attempts in calls:
            with self.subTest(method):
                with self.assertRaises(RunStoreError) as caught:
                    await call()
                self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
                self.assertEqual(self.fake.calls[method], attempts)

    def test_single_attempt_rpcs_are_those_the_proto_gives_no_idempotency_level(self) -> None:
        service = pb.DESCRIPTOR.services_by_name["RunStoreService"]
        unmarked = {
            method.name
            for method in service.methods
            if method.GetOptions().idempotency_level
            == descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN
        }
        self.assertEqual(unmarked, set(SINGLE_ATTEMPT_RPCS))
        self.assertEqual(
            unmarked, {"StartRun", "ClaimNextRun", "FinalizeIfNotCancelled", "ClaimForTakeover"}
        )


def _big_row(idempotency_key: str) -> pb.Run:
    now = Timestamp(seconds=1_767_225_600)
    return pb.Run(
        run_id="r-big",
        thread_id="t-big",
        status=pb.RUN_STATUS_PENDING,
        multitask_strategy=pb.MULTITASK_STRATEGY_REJECT,
        operation_kind=pb.OPERATION_KIND_RUN,
        created_at=now,
        updated_at=now,
        idempotency_key=idempotency_key,
    )


class ReferencedConflictTest(FakeServerTestCase):
    """An idempotency conflict on a row too large for a trailer carries a
    reference (run_id and idempotency_key); the row read back with Get is
    the conflict's row only while it still holds that key."""

    def answer(self, key_read_back: str) -> None:
        message = "idempotency_key is held by run r-big"
        reference = pb.IdempotencyConflict(
            existing=pb.Run(run_id="r-big", idempotency_key="key-big")
        )

        async def conflict(context: grpc.aio.ServicerContext) -> Message:
            code = grpc.StatusCode.ALREADY_EXISTS
            trailer = ("grpc-status-details-bin", _status_details(code, message, reference))
            await context.abort(code, message, trailing_metadata=(trailer,))
            raise AssertionError("abort returned")

        async def get(context: grpc.aio.ServicerContext) -> Message:
            return pb.GetResponse(run=_big_row(key_read_back))

        self.fake.answers.update(CreateThreadOperation=conflict, Get=get)

    async def admit(self) -> None:
        await self.store.create_thread_operation(
            "r-big-2", thread_id="t-big-2", owner_worker_id="w1", idempotency_key="key-big"
        )

    async def test_a_row_still_holding_the_key_is_the_conflicts_row(self) -> None:
        self.answer("key-big")
        with self.assertRaises(IdempotencyConflictError) as caught:
            await self.admit()
        self.assertEqual(caught.exception.existing["run_id"], "r-big")
        self.assertEqual(caught.exception.existing["idempotency_key"], "key-big")
        self.assertEqual(dict(self.fake.calls), {"CreateThreadOperation": 1, "Get": 1})

    async def test_a_row_no_longer_holding_the_key_is_already_exists_without_a_row(self) -> None:
        self.answer("key-moved")
        with self.assertRaises(AlreadyExistsError) as caught:
            await self.admit()
        self.assertIs(type(caught.exception), AlreadyExistsError)
        self.assertEqual(caught.exception.code, grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(dict(self.fake.calls), {"CreateThreadOperation": 1, "Get": 1})
