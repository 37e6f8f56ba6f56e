"""docs/contract.md "list_pending" / "list_inflight": startup recovery queries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .helpers import ContractCase, run_ids


class RecoveryRules(ContractCase):
    async def seed(self) -> None:
        await self.store.put("p2", thread_id="t1", user_id="alice", created_at="2026-01-01T00:00:02Z")
        await self.store.put("p1b", thread_id="t2", user_id="bob", created_at="2026-01-01T00:00:01Z")
        await self.store.put("p1a", thread_id="t1", created_at="2026-01-01T00:00:01Z")
        await self.store.put("r1", thread_id="t1", status="running", created_at="2026-01-01T00:00:01.5Z")
        await self.store.put("late", thread_id="t1", created_at="2026-01-01T00:00:03Z")
        await self.store.put("future", thread_id="t1", created_at="9999-01-01T00:00:00Z")
        for status in ("success", "error", "timeout", "interrupted"):
            await self.store.put(status, thread_id="t1", status=status, created_at="2026-01-01T00:00:00Z")

    async def test_list_pending_bound_order_all_users(self) -> None:
        """list_pending: pending rows created at or before `before`, oldest first, ties by run_id, all users"""
        await self.seed()
        rows = await self.store.list_pending(before="2026-01-01T00:00:02Z")
        self.assertEqual(run_ids(rows), ["p1a", "p1b", "p2"])

    async def test_list_inflight_pending_or_running(self) -> None:
        """list_inflight: pending or running rows, same order and bound"""
        await self.seed()
        rows = await self.store.list_inflight(before="2026-01-01T00:00:02Z")
        self.assertEqual(run_ids(rows), ["p1a", "p1b", "r1", "p2"])

    async def test_before_defaults_to_now(self) -> None:
        """`before` defaults to now"""
        await self.seed()
        self.assertEqual(run_ids(await self.store.list_pending()), ["p1a", "p1b", "p2", "late"])
        self.assertEqual(
            run_ids(await self.store.list_inflight()), ["p1a", "p1b", "r1", "p2", "late"]
        )

    async def test_before_microsecond_precision_any_offset(self) -> None:
        """`before` compares at microsecond precision, inclusive, with any offset"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00.000002Z")
        self.assertEqual(await self.store.list_pending(before="2026-01-01T00:00:00.000001Z"), [])
        self.assertEqual(
            run_ids(await self.store.list_pending(before="2026-01-01T08:00:00.000002+08:00")), ["r1"]
        )
        plus_eight = timezone(timedelta(hours=8))
        self.assertEqual(
            run_ids(await self.store.list_pending(before=datetime(2026, 1, 1, 8, 0, 0, 2, plus_eight))),
            ["r1"],
        )
        self.assertEqual(
            await self.store.list_pending(before=datetime(2026, 1, 1, 0, 0, 0, 1, timezone.utc)), []
        )

    async def test_row_leaves_inflight_at_terminal_status(self) -> None:
        """a row leaves list_inflight once it reaches a terminal status"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00Z")
        await self.store.update_status("r1", "running")
        self.assertEqual(run_ids(await self.store.list_inflight()), ["r1"])
        self.assertEqual(await self.store.list_pending(), [])
        await self.store.update_run_completion("r1", status="timeout")
        self.assertEqual(await self.store.list_inflight(), [])
