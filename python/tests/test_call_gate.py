"""max_concurrent_calls: at most that many calls of a store on the wire at
once, the rest waiting in the store within their timeout (call_gate.py;
issue 18's Python caller collapse). Counted where the store hands a call to
grpcio (support/wire_calls.py), against a real server, and against a TCP
peer that never answers (calls that stay on the wire until their deadline)."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402

import grpc  # noqa: E402

from runstore_client import DeadlineExceededError, GrpcRunStore, RunStoreError  # noqa: E402
from runstore_client.deerflow import DeerFlowRunStore  # noqa: E402
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
        async with GrpcRunStore(self.server.target, timeout=SAFETY_NET, retry=False) as store:
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
        async with GrpcRunStore(self.server.target, timeout=SAFETY_NET, max_concurrent_calls=7) \
                as store:
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
