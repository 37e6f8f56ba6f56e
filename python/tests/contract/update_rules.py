"""docs/contract.md "update_status", "delete", "update_model_name", "update_run_completion"."""

from __future__ import annotations

from .helpers import COUNTERS, ZERO_COUNTERS, ContractCase, later_mark, ms, run_ids


class UpdateRules(ContractCase):
    # -- update_status -------------------------------------------------------

    async def test_update_status_true_when_row_exists_false_when_not(self) -> None:
        """returns true and sets status and updated_at when the row exists; false when it does not"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00Z")
        mark = await later_mark()
        self.assertIs(await self.store.update_status("r1", "running"), True)
        after = await self.must_get("r1")
        self.assertEqual(after["status"], "running")
        self.assertGreaterEqual(ms(after["updated_at"]), ms(mark))
        self.assertIs(await self.store.update_status("missing", "running"), False)
        self.assertIsNone(await self.store.get("missing"))

    async def test_update_status_sets_error_only_when_given(self) -> None:
        """sets error only when one is given; an omitted error keeps the stored one"""
        await self.store.put("r1", thread_id="t1")
        await self.store.update_status("r1", "error", error="boom")
        self.assertEqual((await self.must_get("r1"))["error"], "boom")
        await self.store.update_status("r1", "running")
        self.assert_fields(await self.must_get("r1"), {"status": "running", "error": "boom"})
        await self.store.update_status("r1", "error", error=None)
        self.assertEqual((await self.must_get("r1"))["error"], "boom")

    async def test_update_status_same_status_again_is_true(self) -> None:
        """setting the same status again is still true"""
        await self.store.put("r1", thread_id="t1", status="running")
        self.assertIs(await self.store.update_status("r1", "running"), True)
        self.assertIs(await self.store.update_status("r1", "running"), True)

    async def test_update_status_ignores_ownership(self) -> None:
        """ignores user ownership (no user filter on updates)"""
        await self.store.put("r1", thread_id="t1", user_id="alice")
        self.assertIs(await self.store.update_status("r1", "success"), True)
        self.assertEqual((await self.must_get("r1"))["status"], "success")

    # -- delete --------------------------------------------------------------

    async def test_delete_removes_row_idempotently(self) -> None:
        """removes the row; deleting again or a missing row is a no-op"""
        await self.store.put("r1", thread_id="t1")
        await self.store.put("r2", thread_id="t1")
        self.assertIsNone(await self.store.delete("r1"))  # type: ignore[func-returns-value]
        self.assertIsNone(await self.store.get("r1"))
        self.assertIsNone(await self.store.delete("r1"))  # type: ignore[func-returns-value]
        self.assertIsNone(await self.store.delete("missing"))  # type: ignore[func-returns-value]
        self.assertEqual(run_ids(await self.store.list_by_thread("t1")), ["r2"])

    async def test_delete_respects_visibility(self) -> None:
        """is a no-op when the run is invisible to the given user; the owner can delete"""
        await self.store.put("owned", thread_id="t1", user_id="alice")
        await self.store.put("unowned", thread_id="t1")
        await self.store.delete("owned", user_id="bob")
        await self.store.delete("unowned", user_id="bob")
        self.assertEqual((await self.must_get("owned"))["run_id"], "owned")
        self.assertEqual((await self.must_get("unowned"))["run_id"], "unowned")
        await self.store.delete("owned", user_id="alice")
        self.assertIsNone(await self.store.get("owned"))

    async def test_delete_removes_run_from_inflight_and_aggregates(self) -> None:
        """removes the run from list_inflight and aggregates"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00Z")
        await self.store.put("done", thread_id="t1", status="running")
        await self.store.update_run_completion("done", status="success", total_tokens=5)
        self.assertEqual((await self.store.aggregate_tokens_by_thread("t1"))["total_runs"], 1)
        await self.store.delete("r1")
        await self.store.delete("done")
        self.assertEqual(await self.store.list_inflight(), [])
        self.assertEqual((await self.store.aggregate_tokens_by_thread("t1"))["total_runs"], 0)
        await self.store.put("r1", thread_id="t1", status="running")
        self.assertEqual(run_ids(await self.store.list_inflight()), ["r1"])

    # -- update_model_name ---------------------------------------------------

    async def test_update_model_name_normalises_and_allows_none(self) -> None:
        """sets the normalised model_name and updated_at; null is allowed"""
        await self.store.put("r1", thread_id="t1", model_name="old", created_at="2026-01-01T00:00:00Z")
        mark = await later_mark()
        self.assertIsNone(await self.store.update_model_name("r1", f"  {'🦌' * 130}  "))  # type: ignore[func-returns-value]
        after = await self.must_get("r1")
        self.assertEqual(after["model_name"], "🦌" * 128)
        self.assertGreaterEqual(ms(after["updated_at"]), ms(mark))
        await self.store.update_model_name("r1", None)
        self.assertIsNone((await self.must_get("r1"))["model_name"])

    async def test_update_model_name_missing_row_is_noop(self) -> None:
        """is a no-op when the row is missing"""
        self.assertIsNone(await self.store.update_model_name("missing", "m"))  # type: ignore[func-returns-value]
        self.assertIsNone(await self.store.get("missing"))

    # -- update_run_completion -------------------------------------------------

    async def test_completion_overwrites_status_and_counters(self) -> None:
        """returns true and overwrites status and all eight counters; false for a missing row"""
        await self.store.put("r1", thread_id="t1", status="running")
        mark = await later_mark()
        self.assertIs(await self.store.update_run_completion("r1", status="success", **COUNTERS), True)
        run = await self.must_get("r1")
        self.assert_fields(run, {"status": "success", **COUNTERS})
        self.assertGreaterEqual(ms(run["updated_at"]), ms(mark))
        self.assertIs(await self.store.update_run_completion("missing", status="success"), False)
        self.assertIsNone(await self.store.get("missing"))

    async def test_completion_writes_omitted_counter_as_zero(self) -> None:
        """writes an omitted counter as 0"""
        await self.store.put("r1", thread_id="t1", status="running")
        await self.store.update_run_completion("r1", status="success", **COUNTERS)
        self.assertIs(await self.store.update_run_completion("r1", status="error", total_tokens=5), True)
        self.assert_fields(
            await self.must_get("r1"), {"status": "error", **ZERO_COUNTERS, "total_tokens": 5}
        )

    async def test_completion_sets_messages_and_error_only_when_given(self) -> None:
        """sets messages (cut to 2000 code points) and error only when given"""
        await self.store.put("r1", thread_id="t1", status="running", error="kept")
        await self.store.update_run_completion(
            "r1",
            status="success",
            last_ai_message="🦌" * 2001,
            first_human_message=f"{'x' * 1999}🦌🦌",
        )
        run = await self.must_get("r1")
        self.assertEqual(run["last_ai_message"], "🦌" * 2000)
        self.assertEqual(run["first_human_message"], f"{'x' * 1999}🦌")
        self.assertEqual(run["error"], "kept")
        await self.store.update_run_completion("r1", status="error", error="failed")
        run = await self.must_get("r1")
        self.assertEqual(run["last_ai_message"], "🦌" * 2000)
        self.assertEqual(run["first_human_message"], f"{'x' * 1999}🦌")
        self.assertEqual(run["error"], "failed")

    async def test_completion_never_touches_descriptive_fields(self) -> None:
        """never touches thread_id, assistant_id, user_id, metadata, kwargs, created_at"""
        fields = {
            "thread_id": "t1",
            "assistant_id": "a",
            "user_id": "alice",
            "metadata": {"m": 1},
            "kwargs": {"k": 2},
            "created_at": "2026-01-01T00:00:00.000001Z",
        }
        await self.store.put("r1", **fields, status="running")
        await self.store.update_run_completion("r1", status="success", **COUNTERS)
        self.assert_fields(await self.must_get("r1"), fields)
