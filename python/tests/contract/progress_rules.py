"""docs/contract.md "update_run_progress": a conditional, partial, best-effort write."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from .helpers import COUNTERS, ContractCase, later_mark, ms


class ProgressRules(ContractCase):
    async def test_progress_applies_only_while_running(self) -> None:
        """applies only while the row's status is running"""
        others = ["pending", "success", "error", "timeout", "interrupted"]
        for status in [*others, "running"]:
            await self.store.put(status, thread_id="t1", status=status)
        before = await self.must_get("pending")
        mark = await later_mark()
        for status in [*others, "running"]:
            await self.store.update_run_progress(status, total_tokens=9, last_ai_message="partial")
        running = await self.must_get("running")
        self.assert_fields(running, {"total_tokens": 9, "last_ai_message": "partial"})
        self.assertGreaterEqual(ms(running["updated_at"]), ms(mark))
        for status in others:
            with self.subTest(status=status):
                self.assert_fields(
                    await self.must_get(status),
                    {"status": status, "total_tokens": 0, "last_ai_message": None},
                )
        self.assertEqual((await self.must_get("pending"))["updated_at"], before["updated_at"])

    async def test_progress_missing_row_is_silent_noop(self) -> None:
        """is a silent no-op for a missing row"""
        self.assertIsNone(await self.store.update_run_progress("missing", total_tokens=1))  # type: ignore[func-returns-value]
        self.assertIsNone(await self.store.get("missing"))

    async def test_progress_writes_only_given_fields(self) -> None:
        """writes only the given fields (0 is given); omitted fields keep their values"""
        await self.store.put("r1", thread_id="t1", status="running")
        await self.store.update_run_progress(
            "r1", **COUNTERS, last_ai_message="ai", first_human_message="human"
        )
        await self.store.update_run_progress("r1", total_tokens=0, llm_call_count=4, message_count=None)
        self.assert_fields(
            await self.must_get("r1"),
            {
                **COUNTERS,
                "total_tokens": 0,
                "llm_call_count": 4,
                "last_ai_message": "ai",
                "first_human_message": "human",
                "status": "running",
            },
        )

    async def test_progress_cuts_messages(self) -> None:
        """cuts messages to 2000 code points"""
        await self.store.put("r1", thread_id="t1", status="running")
        await self.store.update_run_progress(
            "r1", last_ai_message="😀" * 2500, first_human_message="h" * 2000
        )
        run = await self.must_get("r1")
        self.assertEqual(run["last_ai_message"], "😀" * 2000)
        self.assertEqual(run["first_human_message"], "h" * 2000)

    async def test_progress_never_overwrites_completion(self) -> None:
        """never overwrites a completion: a late snapshot after completion is a no-op"""
        await self.store.put("r1", thread_id="t1", status="running")
        await self.store.update_run_completion("r1", status="success", **COUNTERS, last_ai_message="final")
        await self.store.update_run_progress("r1", total_tokens=1, last_ai_message="late")
        self.assert_fields(
            await self.must_get("r1"), {"status": "success", **COUNTERS, "last_ai_message": "final"}
        )

    async def test_progress_racing_completion(self) -> None:
        """concurrent snapshots racing a completion leave the completion's values"""
        await self.store.put("r1", thread_id="t1", status="running")
        calls: list[Awaitable[object]] = []
        for i in range(20):
            calls.append(self.store.update_run_progress("r1", total_tokens=1000 + i))
            if i == 10:
                calls.append(self.store.update_run_completion("r1", status="success", **COUNTERS))
        await asyncio.gather(*calls)
        await self.store.update_run_progress("r1", total_tokens=5000)
        self.assert_fields(await self.must_get("r1"), {"status": "success", **COUNTERS})
