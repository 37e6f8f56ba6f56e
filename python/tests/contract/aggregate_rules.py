"""docs/contract.md "aggregate_tokens_by_thread": which runs count, and the dict shape."""

from __future__ import annotations

from typing import Any

import grpc

from runstore_client import OutOfRangeError

from .helpers import MAX_SAFE_INTEGER, ContractCase


class AggregateRules(ContractCase):
    async def finished(self, run_id: str, status: str, model: str | None, n: int) -> None:
        """A run of thread t1 that spent ``n`` tokens and ended in ``status``."""
        await self.store.put(run_id, thread_id="t1", status="running", model_name=model)
        usage: dict[str, Any] = {
            "total_tokens": n,
            "total_input_tokens": n - 1,
            "total_output_tokens": 1,
            "lead_agent_tokens": n - 2,
            "subagent_tokens": 1,
            "middleware_tokens": 1,
        }
        if status == "running":
            await self.store.update_run_progress(run_id, **usage)
        else:
            await self.store.update_run_completion(run_id, status=status, **usage)

    async def test_aggregate_counts_success_and_error(self) -> None:
        """sums success and error runs only; by_model with null as "unknown"; by_caller"""
        await self.finished("s1", "success", "gpt", 100)
        await self.finished("s2", "success", "gpt", 50)
        await self.finished("e1", "error", None, 10)
        await self.finished("run", "running", "claude", 1000)
        await self.finished("to", "timeout", "gpt", 2000)
        await self.finished("int", "interrupted", "gpt", 3000)
        await self.finished("pend", "pending", "gpt", 4000)
        await self.store.put("other", thread_id="t2", status="success")
        self.assertEqual(
            await self.store.aggregate_tokens_by_thread("t1"),
            {
                "total_tokens": 160,
                "total_input_tokens": 157,
                "total_output_tokens": 3,
                "total_runs": 3,
                "by_model": {"gpt": {"tokens": 150, "runs": 2}, "unknown": {"tokens": 10, "runs": 1}},
                "by_caller": {"lead_agent": 154, "subagent": 3, "middleware": 3},
            },
        )

    async def test_aggregate_include_active(self) -> None:
        """include_active also counts running runs, never pending/timeout/interrupted"""
        await self.finished("s1", "success", "gpt", 100)
        await self.finished("run", "running", "claude", 1000)
        await self.finished("to", "timeout", "gpt", 2000)
        await self.finished("pend", "pending", "gpt", 4000)
        self.assertEqual(
            await self.store.aggregate_tokens_by_thread("t1", include_active=True),
            {
                "total_tokens": 1100,
                "total_input_tokens": 1098,
                "total_output_tokens": 2,
                "total_runs": 2,
                "by_model": {"gpt": {"tokens": 100, "runs": 1}, "claude": {"tokens": 1000, "runs": 1}},
                "by_caller": {"lead_agent": 1096, "subagent": 2, "middleware": 2},
            },
        )

    async def test_aggregate_object_key_model_names_are_plain(self) -> None:
        """model names that are also object keys (toString, constructor) are plain names"""
        await self.finished("a", "success", "hasOwnProperty", 10)
        await self.finished("b", "success", "toString", 20)
        await self.finished("c", "error", "constructor", 30)
        await self.finished("d", "success", "unknown", 40)
        await self.finished("e", "success", None, 50)
        usage = await self.store.aggregate_tokens_by_thread("t1")
        self.assertEqual(usage["total_tokens"], 150)
        self.assertEqual(usage["total_runs"], 5)
        self.assertEqual(
            sorted(usage["by_model"].items()),
            [
                ("constructor", {"tokens": 30, "runs": 1}),
                ("hasOwnProperty", {"tokens": 10, "runs": 1}),
                ("toString", {"tokens": 20, "runs": 1}),
                ("unknown", {"tokens": 90, "runs": 2}),
            ],
        )

    async def test_aggregate_refuses_proto_model_name(self) -> None:
        """refuses model_name "__proto__", which a JavaScript protobuf map key cannot carry"""
        await self.assert_invalid(
            self.store.put("r1", thread_id="t1", model_name=" __proto__ "), "model_name"
        )
        await self.store.put("r1", thread_id="t1", model_name="m")
        await self.assert_invalid(self.store.update_model_name("r1", "__proto__"), "model_name")
        self.assertEqual((await self.must_get("r1"))["model_name"], "m")

    async def test_aggregate_sum_past_bound_is_out_of_range(self) -> None:
        """a sum past 2^53-1 (the counters' bound) is OUT_OF_RANGE, never a rounded answer"""
        await self.finished("big", "success", "m", MAX_SAFE_INTEGER)
        await self.finished("one", "success", "m", 2)
        with self.assertRaises(OutOfRangeError) as caught:
            await self.store.aggregate_tokens_by_thread("t1")
        self.assertEqual(caught.exception.code, grpc.StatusCode.OUT_OF_RANGE)

    async def test_aggregate_empty_thread(self) -> None:
        """an empty thread gives all zeros and an empty by_model"""
        self.assertEqual(
            await self.store.aggregate_tokens_by_thread("empty", include_active=True),
            {
                "total_tokens": 0,
                "total_input_tokens": 0,
                "total_output_tokens": 0,
                "total_runs": 0,
                "by_model": {},
                "by_caller": {"lead_agent": 0, "subagent": 0, "middleware": 0},
            },
        )
