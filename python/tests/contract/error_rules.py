"""docs/contract.md "Errors": bad input is INVALID_ARGUMENT naming the field, changing nothing."""

from __future__ import annotations

from typing import Any

from .helpers import MAX_SAFE_INTEGER, ZERO_COUNTERS, ContractCase


class ErrorRules(ContractCase):
    async def test_errors_ids_empty_or_too_long(self) -> None:
        """ids: empty or longer than 64 characters (counted in code points)"""
        store = self.store
        cases: list[tuple[Any, str]] = [
            (store.put("", thread_id="t1"), "run_id"),
            (store.put("x" * 65, thread_id="t1"), "run_id"),
            (store.put("r1", thread_id=""), "thread_id"),
            (store.put("r1", thread_id="t" * 65), "thread_id"),
            (store.put("r1", thread_id="t1", user_id=""), "user_id"),
            (store.put("r1", thread_id="t1", assistant_id="a" * 129), "assistant_id"),
            (store.put(None, thread_id="t1"), "run_id"),  # type: ignore[arg-type]
            (store.put("r1", thread_id=7), "thread_id"),
            (store.get(""), "run_id"),
            (store.get("r1", user_id="u" * 65), "user_id"),
            (store.list_by_thread(""), "thread_id"),
            (store.delete("x" * 65), "run_id"),
            (store.update_status("", "running"), "run_id"),
            (store.update_model_name("", "m"), "run_id"),
            (store.update_run_completion("", status="success"), "run_id"),
            (store.update_run_progress("", total_tokens=1), "run_id"),
            (store.aggregate_tokens_by_thread(""), "thread_id"),
        ]
        for call, field in cases:
            await self.assert_invalid(call, field)
        self.assertEqual(await store.list_by_thread("t1"), [])
        deer = "🦌" * 64
        await store.put(deer, thread_id=deer, user_id=deer)
        run = await store.get(deer, user_id=deer)
        self.assertEqual(run and run["thread_id"], deer)

    async def test_errors_lone_surrogates(self) -> None:
        """strings with a lone surrogate (not encodable as UTF-8)"""
        await self.assert_invalid(self.store.put("\ud800", thread_id="t1"), "run_id")
        await self.assert_invalid(self.store.put("r1", thread_id="t\udc00"), "thread_id")
        await self.assert_invalid(self.store.put("r1", thread_id="t1", error="bad \ud83d"), "error")
        await self.store.put("r1", thread_id="t1", status="running")
        await self.assert_invalid(
            self.store.update_run_progress("r1", last_ai_message="\udfff"), "last_ai_message"
        )
        await self.assert_invalid(self.store.get("\ud800"), "run_id")
        self.assert_fields(await self.must_get("r1"), {"error": None, "last_ai_message": None})

    async def test_errors_unknown_status_or_strategy(self) -> None:
        """unknown status or strategy"""
        await self.assert_invalid(self.store.put("r1", thread_id="t1", status="done"), "status")
        await self.assert_invalid(
            self.store.put("r1", thread_id="t1", multitask_strategy="queue"), "multitask_strategy"
        )
        await self.assert_invalid(self.store.update_status("r1", "finished"), "status")
        await self.assert_invalid(self.store.update_run_completion("r1", status=""), "status")
        await self.assert_invalid(self.store.update_status("r1", "__class__"), "status")
        await self.assert_invalid(self.store.update_status("r1", 2), "status")  # type: ignore[arg-type]
        await self.assert_invalid(
            self.store.put("r1", thread_id="t1", multitask_strategy="REJECT"), "multitask_strategy"
        )
        self.assertIsNone(await self.store.get("r1"))

    async def test_errors_bad_counters(self) -> None:
        """negative, fractional or over-large counters"""
        await self.store.put("r1", thread_id="t1", status="running")
        await self.assert_invalid(
            self.store.update_run_completion("r1", status="success", total_tokens=-1), "total_tokens"
        )
        await self.assert_invalid(
            self.store.update_run_completion("r1", status="success", llm_call_count=1.5),  # type: ignore[arg-type]
            "llm_call_count",
        )
        await self.assert_invalid(
            self.store.update_run_completion("r1", status="success", message_count=MAX_SAFE_INTEGER + 2),
            "message_count",
        )
        await self.assert_invalid(
            self.store.update_run_completion("r1", status="success", total_input_tokens=2**64),
            "total_input_tokens",
        )
        await self.assert_invalid(
            self.store.update_run_progress("r1", subagent_tokens=-5), "subagent_tokens"
        )
        await self.assert_invalid(
            self.store.update_run_progress("r1", middleware_tokens=float("nan")),  # type: ignore[arg-type]
            "middleware_tokens",
        )
        await self.assert_invalid(
            self.store.update_run_progress("r1", lead_agent_tokens=True),
            "lead_agent_tokens",
        )
        self.assert_fields(await self.must_get("r1"), {"status": "running", **ZERO_COUNTERS})
        await self.store.update_run_completion("r1", status="success", total_tokens=MAX_SAFE_INTEGER)
        self.assertEqual((await self.must_get("r1"))["total_tokens"], MAX_SAFE_INTEGER)

    async def test_errors_json_not_objects(self) -> None:
        """metadata or kwargs that are not objects"""
        await self.assert_invalid(self.store.put("r1", thread_id="t1", metadata=[1, 2]), "metadata")
        await self.assert_invalid(self.store.put("r1", thread_id="t1", metadata="text"), "metadata")
        await self.assert_invalid(self.store.put("r1", thread_id="t1", kwargs=42), "kwargs")
        self.assertIsNone(await self.store.get("r1"))

    async def test_errors_rejected_put_changes_nothing(self) -> None:
        """a rejected put leaves the existing row exactly as it was"""
        await self.store.put("r1", thread_id="t1", user_id="alice", metadata={"keep": True})
        before = await self.must_get("r1")
        await self.assert_invalid(
            self.store.put("r1", thread_id="t2", user_id="", metadata={"keep": False}), "user_id"
        )
        await self.assert_invalid(self.store.put("r1", thread_id="t2", created_at="garbage"), "created_at")
        self.assertEqual(await self.must_get("r1"), before)
