"""A runtime's restart, the way an agent runtime uses the store to recover.

Runs are created and some marked running; the server stops (SIGTERM) and
starts again on the same MySQL database. ``list_inflight(before=…)`` then
returns exactly the runs that were in flight. A run whose put was lost in
the outage answers its completion with False; the runtime re-puts it and
retries, and the completion lands.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import unittest  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from typing import Any, ClassVar  # noqa: E402
from unittest import mock  # noqa: E402

from runstore_client import GrpcRunStore, RetryPolicy, UnavailableError  # noqa: E402
from runstore_client import retry as retry_module  # noqa: E402
from tests.contract.helpers import now_timestamp, run_ids  # noqa: E402
from tests.support.mysql import ScratchDatabase, create_test_database  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

#: Retries generous enough to ride out a server restart (a few seconds).
PATIENT = RetryPolicy(max_attempts=200, initial_backoff=0.05, max_backoff=0.25)


class RecoveryTest(unittest.IsolatedAsyncioTestCase):
    database: ClassVar[ScratchDatabase]

    @classmethod
    def setUpClass(cls) -> None:
        cls.database = create_test_database()
        cls.addClassCleanup(cls.database.drop)

    def start_server(self, port: int = 0) -> ServerProcess:
        server = ServerProcess.start({"DATABASE_URL": self.database.url, "PORT": str(port)})
        self.addCleanup(server.kill)
        return server

    async def test_inflight_runs_survive_a_server_restart(self) -> None:
        first = await asyncio.to_thread(self.start_server)
        store = GrpcRunStore(first.target, timeout=30, retry=PATIENT)
        self.addAsyncCleanup(store.close)

        # Before the outage: three runs in flight, one finished.
        await store.put(
            "run-a",
            thread_id="t1",
            user_id="alice",
            kwargs={"input": {"messages": ["hi"]}},
            created_at="2026-01-01T00:00:01Z",
        )
        await store.put("run-b", thread_id="t1", created_at="2026-01-01T00:00:02Z")
        await store.put("run-c", thread_id="t2", user_id="bob", created_at="2026-01-01T00:00:03Z")
        await store.put("run-done", thread_id="t1", model_name="m", created_at="2026-01-01T00:00:00Z")
        for run_id in ("run-a", "run-c", "run-done"):
            self.assertIs(await store.update_status(run_id, "running"), True)
        await store.update_run_progress("run-a", total_tokens=40, last_ai_message="thinking")
        self.assertIs(
            await store.update_run_completion("run-done", status="success", total_tokens=7), True
        )
        before = now_timestamp()
        # Created a second after `before`: not to recover.
        later = datetime.fromisoformat(before.replace("Z", "+00:00")) + timedelta(seconds=1)
        await store.put("run-new", thread_id="t3", created_at=later.isoformat())

        # The server stops gracefully; while it is down, a put fails once its
        # retries run out (a runtime logs that and goes on: persistence is best-effort).
        self.assertEqual(await asyncio.to_thread(first.stop), 0)
        impatient = GrpcRunStore(first.target, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01))
        with self.assertRaises(UnavailableError) as caught:
            await impatient.put("run-lost", thread_id="t1", status="running")
        self.assertTrue(caught.exception.retryable)
        await impatient.close()

        # A write issued while the server is down is retried until it is back:
        # the server starts once the write has failed twice and is sleeping.
        retried = asyncio.Event()
        real_backoff = retry_module.backoff

        def draw(n: int, policy: RetryPolicy) -> float:
            if n >= 2:
                retried.set()
            return real_backoff(n, policy)

        with mock.patch.object(retry_module, "backoff", side_effect=draw):
            write = asyncio.create_task(store.update_status("run-b", "running"))
            await asyncio.wait_for(retried.wait(), 60)
        self.assertFalse(write.done())
        second = await asyncio.to_thread(self.start_server, first.port)
        self.assertIs(await write, True)

        # Recovery: exactly the runs that were in flight, oldest first, intact.
        inflight = await store.list_inflight(before=before)
        self.assertEqual(run_ids(inflight), ["run-a", "run-b", "run-c"])
        self.assertEqual([run["status"] for run in inflight], ["running"] * 3)
        self.assertEqual(
            {key: inflight[0][key] for key in ("user_id", "kwargs", "total_tokens", "last_ai_message")},
            {
                "user_id": "alice",
                "kwargs": {"input": {"messages": ["hi"]}},
                "total_tokens": 40,
                "last_ai_message": "thinking",
            },
        )
        self.assertEqual(await store.list_pending(before=before), [])

        # run-lost ends: its row is missing, so the completion says False; the
        # runtime re-puts the run it knows and retries, and the completion lands.
        completion: dict[str, Any] = {
            "status": "success",
            "total_input_tokens": 10,
            "total_output_tokens": 2,
            "total_tokens": 12,
            "last_ai_message": "done",
        }
        self.assertIs(await store.update_run_completion("run-lost", **completion), False)
        await store.put("run-lost", thread_id="t1", model_name="m", status="running")
        self.assertIs(await store.update_run_completion("run-lost", **completion), True)
        lost = await store.get("run-lost")
        assert lost is not None
        self.assertEqual(
            {key: lost[key] for key in ("status", "total_tokens", "last_ai_message", "thread_id")},
            {"status": "success", "total_tokens": 12, "last_ai_message": "done", "thread_id": "t1"},
        )

        # The recovered runs are marked interrupted: nothing is left in flight.
        for run_id in ("run-a", "run-b", "run-c"):
            self.assertIs(await store.update_status(run_id, "interrupted", error="server restarted"), True)
        self.assertEqual(await store.list_inflight(before=before), [])
        usage = await store.aggregate_tokens_by_thread("t1")
        self.assertEqual((usage["total_runs"], usage["total_tokens"]), (2, 19))
        self.assertEqual(usage["by_model"], {"m": {"tokens": 19, "runs": 2}})
        self.assertEqual(await asyncio.to_thread(second.stop), 0)
