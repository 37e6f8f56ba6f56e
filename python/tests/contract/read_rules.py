"""docs/contract.md "get" and "list_by_thread": visibility, order, limit."""

from __future__ import annotations

import asyncio

from .helpers import ContractCase, run_ids


class ReadRules(ContractCase):
    async def test_get_returns_none_for_missing_run(self) -> None:
        """returns null for a missing run"""
        self.assertIsNone(await self.store.get("missing"))

    async def test_get_user_filter(self) -> None:
        """user_id filter: the owner sees the run; another user, and any user for an unowned run, see null"""
        await self.store.put("owned", thread_id="t1", user_id="alice")
        await self.store.put("unowned", thread_id="t1")
        owned = await self.store.get("owned", user_id="alice")
        self.assertEqual(owned and owned["run_id"], "owned")
        self.assertIsNone(await self.store.get("owned", user_id="bob"))
        self.assertIsNone(await self.store.get("unowned", user_id="alice"))

    async def test_get_without_user_applies_no_filter(self) -> None:
        """no user_id: no filter applies (single-user mode)"""
        await self.store.put("owned", thread_id="t1", user_id="alice")
        await self.store.put("unowned", thread_id="t1")
        self.assertEqual((await self.must_get("owned"))["user_id"], "alice")
        unowned = await self.store.get("unowned", user_id=None)
        self.assertIsNotNone(unowned)
        assert unowned is not None
        self.assertIsNone(unowned["user_id"])

    async def test_list_by_thread_newest_first(self) -> None:
        """lists newest first: created_at descending, ties by run_id descending"""
        await self.store.put("b", thread_id="t1", created_at="2026-01-01T00:00:00.000002Z")
        await self.store.put("a", thread_id="t1", created_at="2026-01-01T00:00:00.000002Z")
        await self.store.put("c", thread_id="t1", created_at="2026-01-01T00:00:00.000002Z")
        await self.store.put("z", thread_id="t1", created_at="2026-01-01T00:00:00.000001Z")
        await self.store.put("y", thread_id="t1", created_at="2026-01-01T00:00:00.000003Z")
        await self.store.put("other", thread_id="t2", created_at="2026-01-01T00:00:00.000009Z")
        self.assertEqual(run_ids(await self.store.list_by_thread("t1")), ["y", "c", "b", "a", "z"])

    async def test_list_by_thread_orders_ties_by_code_point(self) -> None:
        """orders run_id ties by code point (U+FFFF-block characters before emoji)"""
        for run_id in ["\uff5e", "😀", "a", "\ue000"]:
            await self.store.put(run_id, thread_id="t1", created_at="2026-01-01T00:00:00Z")
        self.assertEqual(
            run_ids(await self.store.list_by_thread("t1")), ["😀", "\uff5e", "\ue000", "a"]
        )

    async def test_list_by_thread_limit(self) -> None:
        """returns at most limit rows, 100 by default; limit 0 gives an empty list"""
        await asyncio.gather(
            *(
                self.store.put(f"run-{i:03d}", thread_id="t1", created_at=f"2026-01-01T00:00:00.{i:03d}Z")
                for i in range(102)
            )
        )
        every = await self.store.list_by_thread("t1")
        self.assertEqual(len(every), 100)
        self.assertEqual(every[0]["run_id"], "run-101")
        self.assertEqual(every[99]["run_id"], "run-002")
        self.assertEqual(
            run_ids(await self.store.list_by_thread("t1", limit=3)), ["run-101", "run-100", "run-099"]
        )
        self.assertEqual(await self.store.list_by_thread("t1", limit=0), [])
        self.assertEqual(len(await self.store.list_by_thread("t1", limit=10_000)), 102)

    async def test_list_by_thread_user_filter(self) -> None:
        """user_id filter: only the user's runs; unowned runs are invisible to a user"""
        await self.store.put("a1", thread_id="t1", user_id="alice", created_at="2026-01-01T00:00:01Z")
        await self.store.put("b1", thread_id="t1", user_id="bob", created_at="2026-01-01T00:00:02Z")
        await self.store.put("n1", thread_id="t1", created_at="2026-01-01T00:00:03Z")
        self.assertEqual(run_ids(await self.store.list_by_thread("t1", user_id="alice")), ["a1"])
        self.assertEqual(run_ids(await self.store.list_by_thread("t1")), ["n1", "b1", "a1"])
        self.assertEqual(await self.store.list_by_thread("t1", user_id="carol"), [])

    async def test_list_by_thread_unknown_thread(self) -> None:
        """returns an empty list for an unknown thread"""
        self.assertEqual(await self.store.list_by_thread("nope"), [])

    async def test_list_by_thread_rejects_bad_limit(self) -> None:
        """rejects limit < 0 or > 10000 with INVALID_ARGUMENT naming limit"""
        for limit in (-1, 10_001, 1.5, 2**31, True, None):
            await self.assert_invalid(self.store.list_by_thread("t1", limit=limit), "limit")  # type: ignore[arg-type]
