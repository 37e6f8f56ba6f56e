"""The server's overload refusal as GrpcRunStore sees it (docs/operations.md,
"Overload"): a server process on MySQL with one place for store calls, held
by a call waiting on a row lock of the test's own mysql session. A
start_run refused there (UNAVAILABLE with a retry hint: refused before
running) is repeated, no sooner than the hint, and applies once the place
frees; the server's metrics count its attempts. A plain UNAVAILABLE still
leaves start_run at one attempt."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import unittest  # noqa: E402
from typing import Any, ClassVar  # noqa: E402
from unittest import mock  # noqa: E402
from urllib.parse import unquote, urlsplit  # noqa: E402

import grpc  # noqa: E402
from google.protobuf.any_pb2 import Any as AnyMessage  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402

from runstore_client import GrpcRunStore, RetryPolicy, UnavailableError  # noqa: E402
from runstore_client import retry as retry_module  # noqa: E402
from runstore_client.retry import RetryPolicy as Policy  # noqa: E402
from runstore_client.retry_info import retry_delay  # noqa: E402

from tests.support.mysql import (  # noqa: E402
    MYSQL_SERVER_URL,
    ScratchDatabase,
    create_test_database,
)
from tests.support.metrics import metric, metrics_url  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.until import until, until_async  # noqa: E402

#: Many quick attempts: only the server's hint paces them.
_EAGER = RetryPolicy(max_attempts=1000, initial_backoff=0.001, max_backoff=0.001)

#: A safety net for a condition the test waits on, not a speed limit.
_SAFETY_NET = 30.0


class RowLock:
    """Holds a run's row lock from a mysql CLI session of its own until release()."""

    def __init__(self, database: ScratchDatabase, run_id: str) -> None:
        url = urlsplit(MYSQL_SERVER_URL)
        env = dict(os.environ)
        if url.password:
            env["MYSQL_PWD"] = unquote(url.password)
        self.process = subprocess.Popen(
            [
                "mysql",
                "--protocol=TCP",
                f"--host={url.hostname or '127.0.0.1'}",
                f"--port={url.port or 3306}",
                f"--user={unquote(url.username or 'root')}",
                "--batch",
                "--skip-column-names",
                "--unbuffered",
                database.name,
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(
            f"BEGIN; SELECT run_id FROM runs WHERE run_id = '{run_id}' FOR UPDATE; SELECT 'locked';\n"
        )
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.strip() == "locked":
                return
        raise AssertionError("the mysql session ended before it held the lock")

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("ROLLBACK;\n")
            self.process.stdin.close()
            self.process.wait(timeout=_SAFETY_NET)
        if self.process.stdout is not None:
            self.process.stdout.close()


class OverloadRetryTest(unittest.IsolatedAsyncioTestCase):
    """One server on a database of its own: MAX_INFLIGHT_CALLS=1, no queue."""

    database: ClassVar[ScratchDatabase]
    server: ClassVar[ServerProcess]
    metrics: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.database = create_test_database()
        cls.addClassCleanup(cls.database.drop)
        cls.server = ServerProcess.start(
            {
                "DATABASE_URL": cls.database.url,
                "MAX_INFLIGHT_CALLS": "1",
                "MAX_QUEUED_CALLS": "0",
                "METRICS_PORT": "0",
            }
        )
        cls.addClassCleanup(cls.server.stop)
        cls.metrics = metrics_url(cls.server)

    async def metric(self, name: str, labels: str = "") -> float:
        return await asyncio.to_thread(metric, self.metrics, name, labels)

    async def start_run_attempts(self, code: str) -> float:
        return await self.metric(
            "grpc_server_handled_total", f'grpc_method="StartRun",grpc_code="{code}"'
        )

    async def test_a_refused_start_run_is_repeated_and_applies_once_the_place_frees(self) -> None:
        plain = GrpcRunStore(self.server.target, timeout=30, retry=False)
        eager = GrpcRunStore(self.server.target, timeout=30, retry=_EAGER)
        self.addAsyncCleanup(plain.close)
        self.addAsyncCleanup(eager.close)
        await plain.put("ov-locked", thread_id="ov-t1")
        await plain.put("ov-run", thread_id="ov-t2", status="pending")
        lock = await asyncio.to_thread(RowLock, self.database, "ov-locked")
        self.addCleanup(lock.release)

        blocked = asyncio.create_task(plain.update_model_name("ov-locked", "held"))
        inflight = 0.0

        async def held() -> bool:
            nonlocal inflight
            inflight = await self.metric("runstore_calls_inflight")
            return inflight == 1

        self.assertTrue(await _until_async(held), "the blocked call holds the one place")

        # A call without retries sees the refusal itself.
        with self.assertRaises(UnavailableError) as refused:
            await plain.get("ov-run")
        self.assertRegex(
            str(refused.exception),
            r"server overloaded: MAX_INFLIGHT_CALLS \(1\) calls already running; retry after \d+ ms",
        )

        started = asyncio.create_task(eager.start_run("ov-run"))
        refusals = 0.0

        async def refused_twice() -> bool:
            nonlocal refusals
            refusals = await self.start_run_attempts("UNAVAILABLE")
            return refusals >= 2

        self.assertTrue(await _until_async(refused_twice), "two refused StartRun attempts")
        self.assertEqual(await self.start_run_attempts("OK"), 0)
        self.assertFalse(started.done())

        await asyncio.to_thread(lock.release)
        await blocked
        self.assertIs(await started, True)
        self.assertEqual(await self.start_run_attempts("OK"), 1)
        self.assertGreaterEqual(await self.start_run_attempts("UNAVAILABLE"), refusals)
        run = await plain.get("ov-run")
        assert run is not None
        self.assertEqual(run["status"], "running")
        self.assertGreaterEqual(
            await self.metric("runstore_calls_refused_total", 'reason="MAX_INFLIGHT_CALLS"'),
            refusals + 1,
        )


async def _until_async(check: Any) -> bool:
    """Polls an async ``check`` (a metrics scrape) until it holds, within the safety net."""
    return await until_async(check, _SAFETY_NET)


def _unavailable(trailers: tuple[tuple[str, Any], ...]) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), "refused"
    )


def _status_with_retry_info(seconds: int, nanos: int) -> bytes:
    """A google.rpc.Status (field 3: one Any) carrying RetryInfo(retry_delay)."""
    delay = Duration(seconds=seconds, nanos=nanos).SerializeToString()
    info = b"\x0a" + bytes([len(delay)]) + delay
    detail = AnyMessage(type_url="type.googleapis.com/google.rpc.RetryInfo", value=info)
    packed = detail.SerializeToString()
    return b"\x08\x0e" + b"\x1a" + bytes([len(packed)]) + packed


class RetryHintTest(unittest.IsolatedAsyncioTestCase):
    """How the hint is read and slept, with the errors gRPC raises built by hand."""

    def test_the_hint_is_read_from_retry_info_then_from_the_pushback_trailer(self) -> None:
        details = _status_with_retry_info(1, 250_000_000)
        both = _unavailable((("grpc-status-details-bin", details), ("grpc-retry-pushback-ms", "7")))
        self.assertEqual(retry_delay(both), 1.25)
        self.assertEqual(retry_delay(_unavailable((("grpc-retry-pushback-ms", "40"),))), 0.04)
        self.assertIsNone(retry_delay(_unavailable(())))
        other = grpc.aio.AioRpcError(
            grpc.StatusCode.INTERNAL,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(("grpc-retry-pushback-ms", "40")),
            "x",
        )
        self.assertIsNone(retry_delay(other))

    async def test_a_call_that_is_not_idempotent_repeats_only_after_a_hint_sleeping_at_least_it(
        self,
    ) -> None:
        sleeps: list[float] = []

        async def recorded(seconds: float, _stopped: object) -> bool:
            sleeps.append(seconds)
            return False

        policy = Policy(max_attempts=3, initial_backoff=0.001, max_backoff=0.001)
        hinted = [_unavailable((("grpc-retry-pushback-ms", "300"),))] * 2
        plain = [_unavailable(())]

        async def run(errors: list[grpc.aio.AioRpcError]) -> tuple[int, Any]:
            attempts = 0

            async def attempt(_timeout: float | None) -> str:
                nonlocal attempts
                attempts += 1
                if attempts <= len(errors):
                    raise errors[attempts - 1]
                return "ok"

            try:
                result: Any = await retry_module.call_with_retry(
                    attempt, timeout=None, policy=policy, idempotent=False
                )
            except grpc.aio.AioRpcError as error:
                result = error
            return attempts, result

        with mock.patch.object(retry_module, "_sleep", side_effect=recorded):
            self.assertEqual(await run(hinted), (3, "ok"))
            self.assertEqual(sleeps, [0.3, 0.3])
            attempts, error = await run(plain)
        self.assertEqual(attempts, 1)
        self.assertIsInstance(error, grpc.aio.AioRpcError)


if __name__ == "__main__":
    unittest.main()
