"""GrpcRunStore's and DeerFlowRunStore's history methods (docs/contract.md,
"History"), and the drop-in lists walking pages, against a server process on
the memory store. The server's Prometheus metrics count the requests it
received, so a test counts the pages a walk asked for."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import unittest  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from runstore_client import (  # noqa: E402
    DEFAULT_RETRY_POLICY,
    FailedPreconditionError,
    GrpcRunStore,
    InvalidArgumentError,
)
from runstore_client.deerflow import DeerFlowRunStore, deerflow_row  # noqa: E402
from runstore_client.history import WALK_PAGE_SIZE  # noqa: E402
from runstore_client.retry import policy_for  # noqa: E402

from tests.support.backends import ServerTestCase  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _instant(i: int) -> str:
    """The instant ``i`` ms after a fixed past start: every run its own created_at."""
    return (_START + timedelta(milliseconds=i)).isoformat()


async def _seed(store: GrpcRunStore, count: int, **fields: Any) -> list[str]:
    """``count`` pending runs on one thread, oldest first; put 100 at a time."""
    ids = [f"run-{i:05d}" for i in range(count)]
    for start in range(0, count, 100):
        await asyncio.gather(
            *(
                store.put(run_id, thread_id="thread-1", created_at=_instant(i), **fields)
                for i, run_id in enumerate(ids[start : start + 100], start)
            )
        )
    return ids


class MetricsServer(unittest.IsolatedAsyncioTestCase):
    """A server of the class's own (the lists read every user's runs), with
    its metrics port open; ``env`` adds settings."""

    env: ClassVar[dict[str, str]] = {}
    server: ClassVar[ServerProcess]
    metrics_url: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = ServerProcess.start({"METRICS_PORT": "0", **cls.env})
        cls.addClassCleanup(cls.server.stop)
        for line in cls.server.output().splitlines():
            if "serving Prometheus metrics" in line:
                cls.metrics_url = json.loads(line)["url"]
                return
        raise AssertionError(f"no metrics URL in:\n{cls.server.output()}")

    def counted(self, metric: str, method: str, code: str | None = None) -> int:
        """The server's count of ``method`` calls started / handled (with ``code``)."""
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        labels = f'grpc_method="{method}"' + ("" if code is None else f'.*grpc_code="{code}"')
        pattern = rf"^{metric}\{{[^}}]*{labels}[^}}]*\}} (\d+)$"
        return sum(int(n) for n in re.findall(pattern, text, re.MULTILINE))

    def started(self, method: str) -> int:
        return self.counted("grpc_server_started_total", method)


class PagedListsTest(MetricsServer):
    """2,500 pending runs: the drop-in lists read them in pages of 500."""

    seeded: ClassVar[bool] = False

    async def asyncSetUp(self) -> None:
        self.store = GrpcRunStore(self.server.target, timeout=30)
        if not PagedListsTest.seeded:  # once for the class: the tests only read
            await _seed(self.store, 2500)
            PagedListsTest.seeded = True

    async def asyncTearDown(self) -> None:
        await self.store.close()

    async def walk(self, read_page: Any) -> list[dict[str, Any]]:
        """Every row, read with explicit pages of 1000."""
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            page = await read_page(page_size=1000, page_token=token)
            rows.extend(page["items"])
            token = page["next_page_token"]
            if token is None:
                return rows

    async def test_the_recovery_lists_read_five_pages(self) -> None:
        self.assertEqual(WALK_PAGE_SIZE, 500)
        expected_ids = [f"run-{i:05d}" for i in range(2500)]
        for method, read, read_page in (
            ("ListPending", self.store.list_pending, self.store.list_pending_page),
            ("ListInflight", self.store.list_inflight, self.store.list_inflight_page),
            (
                "ListInflightWithExpiredLease",
                self.store.list_inflight_with_expired_lease,
                self.store.list_inflight_with_expired_lease_page,
            ),
        ):
            with self.subTest(method=method):
                before = self.started(method)
                rows = await read()
                self.assertEqual(self.started(method) - before, 5)
                self.assertEqual([row["run_id"] for row in rows], expected_ids)
                self.assertEqual(rows, await self.walk(read_page))

    async def test_list_by_thread_past_a_page_reads_pages_up_to_its_limit(self) -> None:
        newest_first = [f"run-{i:05d}" for i in reversed(range(2500))]
        before = self.started("ListByThread")
        rows = await self.store.list_by_thread("thread-1", limit=1234, user_id=None)
        self.assertEqual(self.started("ListByThread") - before, 3)  # 500, 500, 234
        self.assertEqual([row["run_id"] for row in rows], newest_first[:1234])
        rows = await self.store.list_by_thread("thread-1", limit=WALK_PAGE_SIZE, user_id=None)
        self.assertEqual(self.started("ListByThread") - before, 4)  # part 1's call
        self.assertEqual([row["run_id"] for row in rows], newest_first[:500])

    async def test_deerflow_run_store_walks_the_same_pages(self) -> None:
        async with DeerFlowRunStore(self.server.target, timeout=30) as deerflow:
            before = self.started("ListPending")
            rows = await deerflow.list_pending()
            self.assertEqual(self.started("ListPending") - before, 5)
        self.assertEqual(rows, [deerflow_row(row) for row in await self.store.list_pending()])


class RefusedPagesTest(MetricsServer):
    """A page over the server's response budget is asked again at half the size."""

    env = {"MAX_RESPONSE_BYTES": str(1024 * 1024)}

    async def test_a_page_over_the_budget_is_asked_again_at_half_the_size(self) -> None:
        async with GrpcRunStore(self.server.target, timeout=30) as store:
            # ~3.1 KB a run: 500 of them are over 1 MiB, 250 are not.
            ids = await _seed(store, 600, metadata={"blob": "x" * 3000})
            before = self.started("ListPending")
            refused = self.counted("grpc_server_handled_total", "ListPending", "RESOURCE_EXHAUSTED")
            rows = await store.list_pending()
            self.assertEqual([row["run_id"] for row in rows], ids)
            self.assertEqual(self.started("ListPending") - before, 4)  # 500 refused, 250, 250, 250
            self.assertEqual(
                self.counted("grpc_server_handled_total", "ListPending", "RESOURCE_EXHAUSTED")
                - refused,
                1,
            )


class HistoryTest(ServerTestCase):
    """search_runs, get_run_stats, list_threads and delete_thread over one user's runs."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.p = p = uuid.uuid4().hex[:8]
        self.user, self.t_a, self.t_b = f"{p}-u", f"{p}-a", f"{p}-b"
        self.r1, self.r2, self.r3 = f"{p}-r1", f"{p}-r2", f"{p}-r3"
        s = self.store
        await s.put(self.r1, thread_id=self.t_a, user_id=self.user, model_name="gpt-4o",
                    created_at="2026-03-01T15:00:00Z", metadata={"source": "api"})  # fmt: skip
        await s.put(self.r2, thread_id=self.t_a, user_id=self.user, model_name="claude",
                    created_at="2026-03-01T17:00:00Z",
                    metadata={"source": "console", "n": 1})  # fmt: skip
        await s.update_run_completion(
            self.r1, status="success", total_input_tokens=10, total_output_tokens=5, total_tokens=15
        )
        usage = {"claude": {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30,
                            "cache_read_tokens": 4}}  # fmt: skip
        await s.update_run_completion(
            self.r2,
            status="error",
            total_input_tokens=20,
            total_output_tokens=10,
            total_tokens=30,
            token_usage_by_model=usage,
        )
        await s.put(self.r3, thread_id=self.t_b, user_id=self.user, status="running",
                    created_at="2026-03-02T03:00:00Z")  # fmt: skip
        await s.put(f"{p}-other", thread_id=self.t_a, user_id=f"{p}-v", status="error")

    async def test_search_runs_iterates_every_page(self) -> None:
        found = [
            run["run_id"]
            async for run in self.store.search_runs(user_id=self.user, page_size=1)
        ]
        self.assertEqual(found, [self.r3, self.r2, self.r1])
        failed = self.store.search_runs(user_id=self.user, statuses=["error", "timeout"])
        self.assertEqual([run["run_id"] async for run in failed], [self.r2])
        page = await self.store.search_runs_page(
            user_id=self.user, metadata={"source": "console", "n": 1.0}, page_size=5
        )
        self.assertEqual(
            ([run["run_id"] for run in page["items"]], page["next_page_token"], page["has_more"]),
            ([self.r2], None, False),
        )
        first = await self.store.search_runs_page(user_id=self.user, page_size=2)
        self.assertEqual(first["has_more"], True)
        rest = await self.store.search_runs_page(
            user_id=self.user, page_size=2, page_token=first["next_page_token"]
        )
        self.assertEqual([run["run_id"] for run in rest["items"]], [self.r1])

    async def test_get_run_stats_by_status_model_and_local_day(self) -> None:
        def totals(runs: int, i: int, o: int, t: int, c: int = 0) -> dict[str, int]:
            return {"runs": runs, "input_tokens": i, "output_tokens": o,
                    "total_tokens": t, "cache_read_tokens": c}  # fmt: skip

        stats = await self.store.get_run_stats(user_id=self.user, utc_offset="+08:00")
        self.assertEqual(list(stats["by_status"]), ["running", "success", "error"])
        self.assertEqual(
            stats,
            {
                "total_runs": 3,
                "by_status": {"running": 1, "success": 1, "error": 1},
                "active_runs": 1,
                "failed_runs": 1,
                "tokens": totals(3, 30, 15, 45, 4),
                "by_model": {
                    "claude": totals(1, 20, 10, 30, 4),
                    "gpt-4o": totals(1, 10, 5, 15),
                    "unknown": totals(1, 0, 0, 0),
                },
                "days": [
                    {"date": "2026-03-01", "tokens": totals(1, 10, 5, 15),
                     "by_model": {"gpt-4o": totals(1, 10, 5, 15)}},
                    {"date": "2026-03-02", "tokens": totals(2, 20, 10, 30, 4),
                     "by_model": {"claude": totals(1, 20, 10, 30, 4),
                                  "unknown": totals(1, 0, 0, 0)}},
                ],
            },
        )  # fmt: skip
        utc = await self.store.get_run_stats(
            user_id=self.user, created_before="2026-03-02T00:00:00Z"
        )
        self.assertEqual(
            [(day["date"], day["tokens"]["runs"]) for day in utc["days"]], [("2026-03-01", 2)]
        )

    async def test_list_threads_most_recent_activity_first(self) -> None:
        r2 = await self.store.get(self.r2, user_id=None)
        r3 = await self.store.get(self.r3, user_id=None)
        assert r2 is not None and r3 is not None
        threads = [t async for t in self.store.list_threads(user_id=self.user, page_size=1)]
        self.assertEqual(
            threads,
            [
                {"thread_id": self.t_b, "run_count": 1, "latest_run_id": self.r3,
                 "latest_run_status": "running", "latest_run_updated_at": r3["updated_at"],
                 "last_activity_at": r3["updated_at"], "total_tokens": 0, "status": "busy"},
                {"thread_id": self.t_a, "run_count": 2, "latest_run_id": self.r2,
                 "latest_run_status": "error", "latest_run_updated_at": r2["updated_at"],
                 "last_activity_at": r2["updated_at"], "total_tokens": 45, "status": "error"},
            ],
        )  # fmt: skip

    async def test_delete_thread_refuses_an_active_thread_unless_forced(self) -> None:
        with self.assertRaises(FailedPreconditionError) as refused:
            await self.store.delete_thread(self.t_b, user_id=self.user)
        self.assertIn(self.t_b, refused.exception.details)
        self.assertIsNotNone(await self.store.get(self.r3, user_id=None))
        self.assertEqual(await self.store.delete_thread(self.t_b, user_id=self.user, force=True), 1)
        self.assertEqual(await self.store.delete_thread(self.t_b, user_id=self.user), 0)
        self.assertEqual(await self.store.delete_thread(self.t_a, user_id=self.user), 2)
        self.assertEqual([r async for r in self.store.search_runs(user_id=self.user)], [])
        other = await self.store.list_by_thread(self.t_a, user_id=None)
        self.assertEqual([run["user_id"] for run in other], [f"{self.p}-v"])

    async def test_deerflow_run_store_answers_in_deerflows_shapes(self) -> None:
        async with DeerFlowRunStore(self.server.target, timeout=30) as deerflow:
            rows = [row async for row in deerflow.search_runs(user_id=self.user)]
            grpc_rows = [row async for row in self.store.search_runs(user_id=self.user)]
            self.assertEqual(rows, [deerflow_row(row) for row in grpc_rows])
            self.assertTrue(rows[0]["created_at"].endswith("+00:00"))
            page = await deerflow.list_threads_page(user_id=self.user, page_size=1)
            self.assertTrue(page["items"][0]["last_activity_at"].endswith("+00:00"))
            self.assertEqual(
                await deerflow.get_run_stats(user_id=self.user),
                await self.store.get_run_stats(user_id=self.user),
            )
            with self.assertRaises(FailedPreconditionError):
                await deerflow.delete_by_thread(self.t_b, user_id=self.user)
            self.assertEqual(await deerflow.delete_by_thread(self.t_a, user_id=self.user), 2)

    async def test_what_the_wire_cannot_carry_is_refused_before_any_request(self) -> None:
        cases: list[tuple[Any, str]] = [
            (self.store.list_pending_page(page_size=2.5),
             "page_size must be an integer from 1 to 1000"),  # type: ignore[arg-type]
            (self.store.list_threads_page(page_size=2**31),
             "page_size must be an integer from 1 to 1000"),
            (self.store.search_runs_page(statuses="error"),  # type: ignore[arg-type]
             "statuses must be a list"),
            (self.store.search_runs_page(metadata={"score": float("nan")}),
             "metadata.score must be a string, number or bool"),
            (self.store.search_runs_page(operation_kinds=["task"]),
             "operation_kinds[0] must be one of run, checkpoint_write, artifact_write, delete, "
             "got 'task'"),
            (self.store.delete_thread(self.t_a, force="yes"),  # type: ignore[arg-type]
             "force must be a boolean, got str"),
        ]  # fmt: skip
        for call, message in cases:
            with self.subTest(message=message), self.assertRaises(InvalidArgumentError) as error:
                await call
            self.assertEqual(error.exception.details, message)

    def test_every_history_rpc_is_retried(self) -> None:
        for method in ("SearchRuns", "GetRunStats", "ListThreads", "DeleteThread"):
            self.assertEqual(policy_for(method, DEFAULT_RETRY_POLICY), DEFAULT_RETRY_POLICY)


if __name__ == "__main__":
    unittest.main()
