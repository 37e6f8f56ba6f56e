"""max_concurrent_calls: at most that many calls of a store on the wire at
once, the rest waiting in the store within their timeout (call_gate.py;
issue 18's Python caller collapse). Counted where the store hands a call to
grpcio (support/wire_calls.py), against a real server, and against a TCP
peer that never answers (calls that stay on the wire until their deadline).

max_queued_calls and call_queue_timeout: a call that finds that many
waiting, or no place within that time, fails with UNAVAILABLE, never sent
and not retried, against a grpc.aio server in this process that holds the
calls the test wants held and counts what it received."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import unittest  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import grpc  # noqa: E402

from runstore_client import (  # noqa: E402
    DeadlineExceededError,
    GrpcRunStore,
    RunStoreError,
    UnavailableError,
)
from runstore_client import retry as retry_module  # noqa: E402
from runstore_client.call_gate import CallGate  # noqa: E402
from runstore_client.conflicts import status_details  # noqa: E402
from runstore_client.deerflow import DeerFlowRunStore  # noqa: E402
from runstore_client.gen.runstore.v1 import run_store_pb2 as pb  # noqa: E402
from runstore_client.retry_info import retry_delay  # noqa: E402
from tests.support import backends  # noqa: E402
from tests.support.until import until  # noqa: E402
from tests.support.wire_calls import counted_wire_calls  # noqa: E402

#: A safety net for calls that should end by themselves far sooner: hitting
#: it fails the test instead of hanging it (not a speed limit).
SAFETY_NET = 120.0


#: An HTTP/2 server's whole side of a connection: an empty SETTINGS frame
#: and the acknowledgement of the client's (frame type 4, flag ACK 1).
SETTINGS_AND_ACK = bytes.fromhex("000000040000000000" "000000040100000000")


@asynccontextmanager
async def silent_peer() -> AsyncIterator[str]:
    """An HTTP/2 peer that settles the connection and then answers nothing:
    the calls a store sends it stay on the wire until their deadline or
    close(). (Without its SETTINGS, grpcio fails calls UNAVAILABLE.)"""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SETTINGS_AND_ACK)
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


class CallGateTest(backends.ServerTestCase):
    backend = "memory"

    @classmethod
    def server_env(cls) -> dict[str, str]:
        # Ten thousand calls from the test's own process make the server's
        # event loop late: no lag shedding, which would refuse some (this
        # test counts calls, not the server's overload refusal).
        return {"OVERLOAD_LAG_MS": "0"}

    async def test_ten_thousand_calls_at_once_all_answered_at_most_100_on_the_wire(self) -> None:
        await self.store.put("gate-r1", thread_id="gate-t1", status="running")
        # No bound on the waiting calls: 9,900 wait, past the default 1000.
        async with GrpcRunStore(
            self.server.target, timeout=SAFETY_NET, retry=False, max_queued_calls=None
        ) as store:
            with counted_wire_calls() as wire:
                results = await asyncio.gather(
                    *(store.update_run_progress("gate-r1", total_tokens=i) for i in range(10_000)),
                    return_exceptions=True,
                )
        self.assertEqual([r for r in results if r is not None], [])
        self.assertEqual(wire.started, 10_000)
        # The default: the server's default MAX_CONCURRENT_STREAMS, reached and never passed.
        self.assertEqual(wire.most, 100)
        run = await self.store.get("gate-r1")
        assert run is not None
        self.assertEqual(run["status"], "running")

    async def test_the_limit_is_the_option(self) -> None:
        async with GrpcRunStore(
            self.server.target, timeout=SAFETY_NET, max_concurrent_calls=7
        ) as store:
            with counted_wire_calls() as wire:
                results = await asyncio.gather(*(store.get(f"gate-missing-{i}") for i in range(500)))
        self.assertEqual(results, [None] * 500)
        self.assertEqual((wire.started, wire.most), (500, 7))

    async def test_deerflow_store_has_the_option(self) -> None:
        async with DeerFlowRunStore(
            self.server.target, timeout=SAFETY_NET, max_concurrent_calls=3
        ) as store:
            with counted_wire_calls() as wire:
                results = await asyncio.gather(
                    *(store.get(f"gate-missing-{i}", user_id=None) for i in range(200))
                )
        self.assertEqual(results, [None] * 200)
        self.assertEqual((wire.started, wire.most), (200, 3))

    async def test_waiting_calls_end_at_their_deadline(self) -> None:
        async with silent_peer() as target, GrpcRunStore(
            target, timeout=0.5, retry=False, max_concurrent_calls=1
        ) as store:
            with counted_wire_calls() as wire:
                results = await asyncio.wait_for(
                    asyncio.gather(*(store.get(f"r{i}") for i in range(20)), return_exceptions=True),
                    SAFETY_NET,
                )
        self.assertEqual([type(r) for r in results], [DeadlineExceededError] * 20)
        # The first call held the one place until its deadline and the others
        # waited in the store for theirs (one whose deadline came after the
        # place was handed on may have had its turn): never two on the wire.
        self.assertEqual(wire.most, 1)

    async def test_close_ends_waiting_calls_with_cancelled(self) -> None:
        async with silent_peer() as target:
            store = GrpcRunStore(target, retry=False, max_concurrent_calls=1)
            with counted_wire_calls() as wire:
                calls = [asyncio.ensure_future(store.get(f"r{i}")) for i in range(5)]
                self.assertTrue(await until(lambda: store._gate.queued == 4, SAFETY_NET))
                self.assertEqual(wire.open, 1)
                await store.close()
                results = await asyncio.wait_for(
                    asyncio.gather(*calls, return_exceptions=True), SAFETY_NET
                )
        self.assertEqual([type(r) for r in results], [RunStoreError] * 5)
        self.assertEqual(
            [r.code for r in results if isinstance(r, RunStoreError)],
            [grpc.StatusCode.CANCELLED] * 5,
        )
        self.assertEqual(wire.started, 1)

    def test_refuses_a_limit_below_one(self) -> None:
        for value in (0, -1, 1.5, True, None, "100"):
            with self.subTest(value=value), self.assertRaises(ValueError):
                GrpcRunStore(self.server.target, max_concurrent_calls=value)  # type: ignore[arg-type]


def _refusal_text(milliseconds: int, open_calls: int, waiting: int) -> str:
    return (
        f"no place on the wire within {milliseconds} ms: {open_calls} calls open"
        f" (max_concurrent_calls) and {waiting} waiting; the server or the connection is saturated"
    )


def _full_text(open_calls: int, waiting: int) -> str:
    return (
        f"no place on the wire: {open_calls} calls open (max_concurrent_calls)"
        f" and {waiting} waiting (max_queued_calls); the server or the connection is saturated"
    )


class HoldingServer:
    """RunStoreService in this process: Get is held until ``release`` is
    set (then answers "no such run"); ``calls`` counts the calls of each
    method the server received."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.release = asyncio.Event()

    def handler(self) -> grpc.GenericRpcHandler:
        async def get(request: bytes, context: Any) -> bytes:
            self.calls["Get"] += 1
            await self.release.wait()
            return pb.GetResponse().SerializeToString()

        return grpc.method_handlers_generic_handler(
            "runstore.v1.RunStoreService",
            {"Get": grpc.unary_unary_rpc_method_handler(get)},
        )


class CallQueueTimeoutTest(unittest.IsolatedAsyncioTestCase):
    """Two Gets held at a HoldingServer fill a store's two places; a third
    call waits for one."""

    async def asyncSetUp(self) -> None:
        self.server = HoldingServer()
        grpc_server = grpc.aio.server()
        grpc_server.add_generic_rpc_handlers((self.server.handler(),))
        self.target = f"127.0.0.1:{grpc_server.add_insecure_port('127.0.0.1:0')}"
        await grpc_server.start()
        self.addAsyncCleanup(grpc_server.stop, None)
        # Registered last, so it runs first: the held calls end before the server stops.
        self.addCleanup(self.server.release.set)

    async def hold(self, store: GrpcRunStore, n: int) -> list[asyncio.Future[Any]]:
        """``n`` Gets that the server holds, once it has received them all."""
        held = [asyncio.ensure_future(store.get(f"held-{i}")) for i in range(n)]
        self.assertTrue(await until(lambda: self.server.calls["Get"] == n, SAFETY_NET))
        return held

    async def release(self, store: GrpcRunStore, held: list[asyncio.Future[Any]]) -> None:
        """Lets the held Gets end; the store's places are then all free."""
        self.server.release.set()
        answers = await asyncio.wait_for(asyncio.gather(*held), SAFETY_NET)
        self.assertEqual(answers, [None] * len(held))
        self.assertEqual((store._gate.on_wire, store._gate.queued), (0, 0))

    async def test_a_call_without_a_place_within_the_bound_fails_unavailable_never_sent(self) -> None:
        async with GrpcRunStore(
            self.target,
            timeout=SAFETY_NET,
            retry=False,
            max_concurrent_calls=2,
            call_queue_timeout=0.05,
        ) as store:
            held = await self.hold(store, 2)
            with self.assertRaises(UnavailableError) as caught:
                await asyncio.wait_for(store.get("third"), SAFETY_NET)
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(caught.exception.details, _refusal_text(50, 2, 1))
            cause = caught.exception.__cause__
            assert isinstance(cause, grpc.aio.AioRpcError)
            # Not a server's refusal: no retry hint, nothing to repeat.
            self.assertIsNone(retry_delay(cause))
            self.assertEqual(status_details(cause), [])
            self.assertEqual(self.server.calls, Counter({"Get": 2}))
            await self.release(store, held)
        self.assertEqual(self.server.calls, Counter({"Get": 2}))

    async def test_a_refused_call_is_not_repeated_by_the_retry_policy(self) -> None:
        """The repeat would join the same queue: under the default retry
        policy the refused call fails at once, with no retry's sleep."""
        sleeps: list[float] = []

        async def sleep(seconds: float, _stopped: object) -> bool:
            sleeps.append(seconds)
            return False

        async with GrpcRunStore(
            self.target, timeout=SAFETY_NET, max_concurrent_calls=2, call_queue_timeout=0.05
        ) as store:
            held = await self.hold(store, 2)
            with mock.patch.object(retry_module, "_sleep", side_effect=sleep):
                with self.assertRaises(UnavailableError) as caught:
                    await asyncio.wait_for(store.get("third"), SAFETY_NET)
            self.assertEqual(caught.exception.details, _refusal_text(50, 2, 1))
            self.assertEqual(sleeps, [])
            await self.release(store, held)
        self.assertEqual(self.server.calls, Counter({"Get": 2}))

    async def test_by_default_1000_calls_wait_without_a_time_bound_and_one_more_fails_at_once(
        self,
    ) -> None:
        async with GrpcRunStore(
            self.target, timeout=SAFETY_NET, retry=False, max_concurrent_calls=1
        ) as store:
            held = await self.hold(store, 1)
            waiting = [asyncio.ensure_future(store.get(f"w{i}")) for i in range(1000)]
            self.assertTrue(await until(lambda: store._gate.queued == 1000, SAFETY_NET))
            with self.assertRaises(UnavailableError) as caught:
                await asyncio.wait_for(store.get("one-more"), SAFETY_NET)
            self.assertEqual(caught.exception.details, _full_text(1, 1000))
            self.assertIsNone(retry_delay(caught.exception.__cause__))
            await self.release(store, held + waiting)
        self.assertEqual(self.server.calls, Counter({"Get": 1001}))

    async def test_max_queued_calls_bounds_the_waiting_calls(self) -> None:
        async with GrpcRunStore(
            self.target, timeout=SAFETY_NET, max_concurrent_calls=2, max_queued_calls=1
        ) as store:
            held = await self.hold(store, 2)
            waiting = asyncio.ensure_future(store.get("waiting"))
            self.assertTrue(await until(lambda: store._gate.queued == 1, SAFETY_NET))
            with self.assertRaises(UnavailableError) as caught:
                await asyncio.wait_for(store.get("one-more"), SAFETY_NET)
            self.assertEqual(caught.exception.details, _full_text(2, 1))
            self.assertEqual((store._gate.refused, store._gate.queued), (1, 1))
            await self.release(store, [*held, waiting])
        self.assertEqual(self.server.calls, Counter({"Get": 3}))

    def test_deerflow_store_has_the_options(self) -> None:
        gate = DeerFlowRunStore(self.target)._grpc._gate
        self.assertEqual((gate.queue_timeout, gate.max_queued), (None, 1000))
        for value in (0.05, None):
            with self.subTest(value=value):
                store = DeerFlowRunStore(self.target, call_queue_timeout=value)
                self.assertEqual(store._grpc._gate.queue_timeout, value)
        for count in (0, None):
            with self.subTest(count=count):
                store = DeerFlowRunStore(self.target, max_queued_calls=count)
                self.assertEqual(store._grpc._gate.max_queued, count)


class CallGateBookkeepingTest(unittest.IsolatedAsyncioTestCase):
    """A waiting call whose bound and place come in the same turn of the
    event loop, or that is cancelled once refused: no place lost or made."""

    async def waiting(self, gate: CallGate) -> tuple[asyncio.Task[None], asyncio.Future[None]]:
        """A call waiting at ``gate`` (its one place held), and its waiter."""
        await gate.enter(None)
        task = asyncio.ensure_future(gate.enter(None))
        self.assertTrue(await until(lambda: gate.queued == 1, SAFETY_NET))
        return task, gate._waiting[0]

    async def test_a_place_handed_over_before_the_bound_is_kept(self) -> None:
        gate = CallGate(1, queue_timeout=60.0)
        task, waiter = await self.waiting(gate)
        gate.leave()
        gate._give_up(waiter, True)
        await asyncio.wait_for(task, SAFETY_NET)
        self.assertEqual((gate.on_wire, gate.queued), (1, 0))
        gate.leave()
        self.assertEqual(gate.on_wire, 0)

    async def test_a_refused_call_holds_no_place_even_when_cancelled_then(self) -> None:
        gate = CallGate(1, queue_timeout=60.0)
        task, waiter = await self.waiting(gate)
        gate._give_up(waiter, True)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await asyncio.wait_for(task, SAFETY_NET)
        # The first call still holds the one place; the refused one never had it.
        self.assertEqual((gate.on_wire, gate.queued), (1, 0))
        gate.leave()
        self.assertEqual((gate.on_wire, len(gate._waiting)), (0, 0))
