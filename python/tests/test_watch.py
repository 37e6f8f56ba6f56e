"""GrpcRunStore.watch_runs and DeerFlowRunStore.watch_runs (docs/contract.md,
"Live changes") against server processes: the events and their fields;
resuming by itself when the connection is cut, after a slow reader's
ABORTED, across a restart (memory: another log, OutOfRangeError; MySQL:
nothing lost); leaving the loop closing the stream on the server; the
errors raised. The server's Prometheus metrics show its open streams."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import grpc  # noqa: E402

from runstore_client import (  # noqa: E402
    GrpcRunStore,
    Heartbeat,
    InvalidArgumentError,
    OutOfRangeError,
    RetryPolicy,
    RunChangeEvent,
    RunStoreError,
    WatchEvent,
)
from runstore_client.deerflow import DeerFlowRunStore, deerflow_row  # noqa: E402

from tests.support.metrics import metric, metrics_url  # noqa: E402
from tests.support.mysql import ScratchDatabase, create_test_database  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402
from tests.support.until import until  # noqa: E402

#: A fixed-width UTC timestamp, as every record's.
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

#: Resume for a while: many attempts, short sleeps.
_PATIENT = RetryPolicy(max_attempts=200, initial_backoff=0.005, max_backoff=0.05)


async def _start(env: dict[str, str] | None = None) -> ServerProcess:
    """A server process, started off the event loop (start-up blocks for a second or two)."""
    return await asyncio.to_thread(ServerProcess.start, env)


@contextlib.asynccontextmanager
async def _watching(
    watch_target: str | list[str], write_target: str, **options: Any
) -> AsyncIterator[tuple[AsyncIterator[WatchEvent], GrpcRunStore]]:
    """A watch through ``watch_target`` (a store with ``options``) that has
    started (its first heartbeat read), resuming patiently, and a store
    writing through ``write_target``."""
    async with (
        GrpcRunStore(watch_target, retry=_PATIENT, **options) as watcher,
        GrpcRunStore(write_target, timeout=60) as writer,
    ):
        events = watcher.watch_runs()
        async with contextlib.aclosing(events):
            await _started(events)
            yield events, writer


async def _change(events: AsyncIterator[WatchEvent]) -> RunChangeEvent:
    """The next change, past any heartbeats."""
    async for event in events:
        if isinstance(event, RunChangeEvent):
            return event
    raise AssertionError("the watch ended")


async def _started(events: AsyncIterator[WatchEvent]) -> str:
    """The first event, a heartbeat: the cursor the watch starts after."""
    first = await anext(events)
    assert isinstance(first, Heartbeat), first
    return first.cursor


def _expected(
    event: RunChangeEvent, kind: str, run: dict[str, Any] | None, sequence: int, left: bool = False
) -> RunChangeEvent:
    """The change ``event`` should be; its changed_at and cursor are only checked for form."""
    assert _TIMESTAMP.match(event.changed_at), event.changed_at
    assert event.cursor, "a change without a cursor"
    assert run is not None
    return RunChangeEvent(
        kind=kind,
        run=run,
        sequence=sequence,
        changed_at=event.changed_at,
        left_filter=left,
        repeated=False,
        cursor=event.cursor,
    )


class WatchTest(unittest.IsolatedAsyncioTestCase):
    """One memory server for the class, metrics on; each test its own thread."""

    server: ClassVar[ServerProcess]
    metrics: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = ServerProcess.start({"METRICS_PORT": "0"})
        cls.addClassCleanup(cls.server.stop)
        cls.metrics = metrics_url(cls.server)

    async def asyncSetUp(self) -> None:
        self.store = GrpcRunStore(self.server.target, timeout=30, retry=_PATIENT)
        self.thread = f"thread-{uuid.uuid4()}"

    async def asyncTearDown(self) -> None:
        await self.store.close()

    async def test_a_heartbeat_then_each_matching_change_with_its_fields(self) -> None:
        events = self.store.watch_runs(thread_id=self.thread)
        async with contextlib.aclosing(events):
            await _started(events)
            await self.store.put("w-1", thread_id=self.thread, user_id="alice", metadata={"a": 1})
            created = await self.store.get("w-1")
            await self.store.put("w-other", thread_id=f"{self.thread}-other")
            await self.store.update_status("w-1", "running")
            running = await self.store.get("w-1")
            await self.store.delete("w-1")
            first = await _change(events)
            s = first.sequence
            self.assertEqual(first, _expected(first, "created", created, s))
            second = await _change(events)
            self.assertEqual(second, _expected(second, "updated", running, s + 2))
            third = await _change(events)
            self.assertEqual(third, _expected(third, "deleted", running, s + 3))
        await self.store.delete("w-other")

    async def test_active_only_a_finished_run_leaves_visibly(self) -> None:
        events = self.store.watch_runs(thread_id=self.thread, active_only=True)
        async with contextlib.aclosing(events):
            await _started(events)
            await self.store.put("w-active", thread_id=self.thread)
            pending = await self.store.get("w-active")
            await self.store.update_status("w-active", "success")
            done = await self.store.get("w-active")
            await self.store.update_status("w-active", "error")
            await self.store.put("w-next", thread_id=self.thread)
            changes = [await _change(events) for _ in range(3)]
            s = changes[0].sequence
            self.assertEqual(
                changes,
                [
                    _expected(changes[0], "created", pending, s),
                    _expected(changes[1], "updated", done, s + 1, left=True),
                    _expected(changes[2], "created", await self.store.get("w-next"), s + 3),
                ],
            )
        for run_id in ("w-active", "w-next"):
            await self.store.delete(run_id)

    async def test_leaving_the_loop_closes_the_stream_on_the_server(self) -> None:
        async for event in self.store.watch_runs(thread_id=self.thread):
            self.assertIsInstance(event, Heartbeat)
            self.assertEqual(metric(self.metrics, "runstore_watch_streams"), 1)
            break
        # The generator is closed when collected (at once in CPython), which cancels the call.
        self.assertTrue(
            await until(lambda: metric(self.metrics, "runstore_watch_streams") == 0, 15)
        )

    async def test_filters_the_wire_cannot_carry_are_refused_before_a_call(self) -> None:
        for filters, field in (
            ({"statuses": ["bogus"]}, "statuses[0]"),
            ({"operation_kinds": ["run", "nap"]}, "operation_kinds[1]"),
            ({"active_only": "yes"}, "active_only"),
            ({"statuses": "running"}, "statuses"),
        ):
            with self.subTest(field=field):
                with self.assertRaises(InvalidArgumentError) as caught:
                    self.store.watch_runs(**filters)  # type: ignore[arg-type]
                self.assertIn(field, str(caught.exception))

    async def test_a_damaged_cursor_is_invalid_argument(self) -> None:
        with self.assertRaises(InvalidArgumentError) as caught:
            await anext(self.store.watch_runs(cursor="not a cursor"))
        self.assertIn("cursor", str(caught.exception))

    async def test_another_servers_cursor_is_out_of_range(self) -> None:
        other = await _start()
        self.addCleanup(other.stop)
        async with GrpcRunStore(other.target, timeout=30) as elsewhere:
            events = elsewhere.watch_runs()
            async with contextlib.aclosing(events):
                cursor = await _started(events)
        with self.assertRaises(OutOfRangeError) as caught:
            await anext(self.store.watch_runs(cursor=cursor))
        self.assertIn("cursor", str(caught.exception))

    async def test_deerflow_run_store_yields_deerflow_rows(self) -> None:
        async with DeerFlowRunStore(self.server.target, timeout=30) as deerflow:
            events = deerflow.watch_runs(user_id=None, thread_id=self.thread)
            async with contextlib.aclosing(events):
                await _started(events)
                await self.store.put("w-deerflow", thread_id=self.thread)
                event = await _change(events)
        self.assertEqual(event.run, deerflow_row(await self.store.get("w-deerflow") or {}))
        self.assertRegex(event.changed_at, r"\+00:00$")
        await self.store.delete("w-deerflow")


class ResumeTest(unittest.IsolatedAsyncioTestCase):
    """Servers of each test's own, stopped and started as the test needs."""

    async def start(self, env: dict[str, str] | None = None) -> ServerProcess:
        server = await _start({"METRICS_PORT": "0", **(env or {})})
        self.addCleanup(server.kill)
        return server

    async def test_resumes_when_the_connection_is_cut_nothing_lost(self) -> None:
        server = await self.start()
        metrics = metrics_url(server)
        proxy = TcpProxy("127.0.0.1", server.port)
        self.addCleanup(proxy.close)
        async with _watching(f"127.0.0.1:{proxy.port}", server.target) as (events, writer):
            await writer.put("r-a", thread_id="t")
            a = await _change(events)
            proxy.cut()
            self.assertTrue(
                await until(lambda: metric(metrics, "runstore_watch_streams") == 0, 15)
            )
            await writer.put("r-b", thread_id="t")
            proxy.forward()
            b = await _change(events)
            b_row = await writer.get("r-b")
            self.assertEqual(b, _expected(b, "created", b_row, a.sequence + 1))

    async def test_a_stream_behind_the_window_is_aborted_and_resumed_without_loss(self) -> None:
        server = await self.start({"WATCH_WINDOW": "10"})
        metrics = metrics_url(server)
        ids = [f"r-{i:03d}" for i in range(150)]
        async with GrpcRunStore(server.target, timeout=60) as seeder:
            await asyncio.gather(*(seeder.put(run_id, thread_id="bulk") for run_id in ids))
        async with _watching(server.target, server.target) as (events, writer):
            # One delete_thread removes the 150 runs in one step: the stream
            # finds itself behind WATCH_WINDOW's 10 at its next look and is
            # ABORTED, however fast this client reads (a slow reader is the
            # same case; whether a slow grpcio client leaves the server's
            # stream waiting depends on what the HTTP/2 window and buffers hold).
            self.assertEqual(await writer.delete_thread("bulk", force=True), 150)
            changes = [await _change(events) for _ in ids]
        self.assertEqual(sorted(c.run["run_id"] for c in changes), ids)
        self.assertEqual({c.kind for c in changes}, {"deleted"})
        first = changes[0].sequence
        self.assertEqual([c.sequence for c in changes], list(range(first, first + 150)))
        self.assertFalse(any(c.repeated for c in changes))
        self.assertGreaterEqual(
            metric(metrics, "runstore_watch_aborted_total", 'reason="behind"'), 1
        )

    async def test_a_memory_server_restarted_is_another_log_out_of_range(self) -> None:
        first = await self.start()
        async with GrpcRunStore(first.target, retry=_PATIENT) as watcher:
            events = watcher.watch_runs()
            async with contextlib.aclosing(events):
                await _started(events)
                await asyncio.to_thread(first.stop)
                await self.start({"PORT": str(first.port)})
                with self.assertRaises(OutOfRangeError) as caught:
                    await _change(events)
        self.assertIn("cursor", str(caught.exception))


class MysqlResumeTest(unittest.IsolatedAsyncioTestCase):
    """Two servers on one MySQL database: one writes, the watched one restarts."""

    database: ClassVar[ScratchDatabase]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.database = create_test_database()
        cls.addClassCleanup(cls.database.drop)

    async def test_resumes_across_a_restart_with_nothing_lost(self) -> None:
        env = {"DATABASE_URL": self.database.url, "WATCH_POLL_MS": "20"}
        writer_server = await _start(env)
        self.addCleanup(writer_server.stop)
        watched = await _start(env)
        self.addCleanup(watched.kill)
        async with _watching(watched.target, writer_server.target) as (events, writer):
            await writer.put("m-a", thread_id="t")
            a = await _change(events)
            await asyncio.to_thread(watched.stop)
            await writer.put("m-b", thread_id="t")
            created = await writer.get("m-b")
            await writer.update_status("m-b", "running")
            again = await _start({**env, "PORT": str(watched.port)})
            self.addCleanup(again.stop)
            b = [await _change(events) for _ in range(2)]
            self.assertEqual(
                b,
                [
                    _expected(b[0], "created", created, a.sequence + 1),
                    _expected(b[1], "updated", await writer.get("m-b"), a.sequence + 2),
                ],
            )


    async def test_resumes_on_the_other_replica_when_its_replica_stops(self) -> None:
        env = {"DATABASE_URL": self.database.url, "WATCH_POLL_MS": "20", "METRICS_PORT": "0"}
        replicas = [await _start(env), await _start(env)]
        for replica in replicas:
            self.addCleanup(replica.kill)
        metrics = [metrics_url(replica) for replica in replicas]
        targets = [replica.target for replica in replicas]
        async with _watching(targets, replicas[0].target) as (events, writer):
            serving = [metric(url, "runstore_watch_streams") for url in metrics]
            self.assertEqual(sorted(serving), [0, 1])
            gone = serving.index(1)
            await writer.put("f-a", thread_id="t")
            a = await _change(events)
            await asyncio.to_thread(replicas[gone].stop)
            async with GrpcRunStore(replicas[1 - gone].target, timeout=30) as survivor:
                await survivor.put("f-b", thread_id="t")
                b = await _change(events)
                self.assertEqual(
                    b, _expected(b, "created", await survivor.get("f-b"), a.sequence + 1)
                )
            self.assertEqual(metric(metrics[1 - gone], "runstore_watch_streams"), 1)


class ScopedWatchTest(unittest.IsolatedAsyncioTestCase):
    """A server with a token bound to alice."""

    async def test_another_users_watch_is_permission_denied_naming_user_id(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        tokens = Path(directory.name, "tokens")
        tokens.write_text("watch-alice-0123456789abcdef role=read users=alice\n")
        server = await _start({"AUTH_TOKENS_FILE": str(tokens)})
        self.addCleanup(server.stop)
        async with GrpcRunStore(server.target, token="watch-alice-0123456789abcdef") as alice:
            with self.assertRaises(RunStoreError) as caught:
                await anext(alice.watch_runs(user_id="bob"))
        self.assertEqual(caught.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("user_id", str(caught.exception))



if __name__ == "__main__":
    unittest.main()
