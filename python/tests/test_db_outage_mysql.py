"""The database goes away under a running server: the server answers
UNAVAILABLE after its response headers, which gRPC's own retry policy
never retries, so GrpcRunStore does (docs/contract.md "Errors": UNAVAILABLE is
retryable)."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import json  # noqa: E402
import unittest  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import ClassVar  # noqa: E402

from runstore_client import GrpcRunStore, RetryPolicy, UnavailableError  # noqa: E402
from tests.support.mysql import ScratchDatabase, create_test_database, mysql_address  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402
from tests.support.until import until  # noqa: E402


class DatabaseOutageTest(unittest.IsolatedAsyncioTestCase):
    database: ClassVar[ScratchDatabase]
    proxy: ClassVar[TcpProxy]
    server: ClassVar[ServerProcess]

    @classmethod
    def setUpClass(cls) -> None:
        # Class cleanups run last-in first-out, also when a later step fails.
        cls.database = create_test_database()
        cls.addClassCleanup(cls.database.drop)
        cls.proxy = TcpProxy(*mysql_address())
        cls.addClassCleanup(cls.proxy.close)
        cls.server = ServerProcess.start(
            {
                "DATABASE_URL": cls.database.url_through(cls.proxy.port),
                "DB_CONNECT_TIMEOUT_MS": "1000",
                "LOG_LEVEL": "debug",  # one "call" line per RPC, with its code
            }
        )
        cls.addClassCleanup(cls.server.stop)

    def unavailable_calls(self, method: str) -> int:
        """How many calls of ``method`` the server has answered UNAVAILABLE so far."""
        count = 0
        for line in self.server.output().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if (
                entry.get("msg") == "call"
                and entry.get("procedure") == f"runstore.v1.RunStoreService/{method}"
                and entry.get("code") == "Unavailable"
            ):
                count += 1
        return count

    def unavailable_gets(self) -> int:
        """How many Get calls the server has answered UNAVAILABLE so far."""
        return self.unavailable_calls("Get")

    async def wait_for(self, condition: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
        if not await until(check, timeout):
            self.fail(f"timed out waiting for {condition}\n{self.server.output()[-3000:]}")

    async def test_database_outage_is_retried_until_it_ends(self) -> None:
        target = self.server.target
        patient_policy = RetryPolicy(max_attempts=500, initial_backoff=0.02, max_backoff=0.1)
        async with GrpcRunStore(target, retry=False) as once, GrpcRunStore(
            target, timeout=30, retry=patient_policy
        ) as patient:
            await patient.put("r1", thread_id="t1", status="running")
            self.proxy.cut()
            try:
                # Without retries the server's answer surfaces as it is, once.
                with self.assertRaises(UnavailableError) as caught:
                    await once.get("r1")
                self.assertEqual(caught.exception.details, "database unavailable")
                self.assertTrue(caught.exception.retryable)
                # A marker call after it: once its line is logged, every line
                # of the calls before it is too, so the count below is final.
                with self.assertRaises(UnavailableError):
                    await once.list_pending()
                await self.wait_for(
                    "the marker call to be logged",
                    lambda: self.unavailable_calls("ListPending") == 1,
                )
                self.assertEqual(self.unavailable_gets(), 1)

                # With retries the call keeps going while the database is down …
                read = asyncio.create_task(patient.get("r1"))
                await self.wait_for("two retried UNAVAILABLE answers", lambda: self.unavailable_gets() >= 3)
                self.assertFalse(read.done())
            finally:
                self.proxy.forward()
            # … and answers once it is back.
            run = await read
            self.assertIsNotNone(run)
            assert run is not None
            self.assertEqual((run["run_id"], run["status"]), ("r1", "running"))
