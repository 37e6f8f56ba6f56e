"""docs/contract.md "put": upsert, defaults, overwrite rules, JSON values."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any

from .helpers import (
    COUNTERS,
    TIMESTAMP_FORMAT,
    ZERO_COUNTERS,
    ContractCase,
    later_mark,
    ms,
    nest,
    now_timestamp,
    run_ids,
)


class _Point:
    """An object JSON cannot hold and that is no model: stored as str()."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __str__(self) -> str:
        return f"Point({self.x}, {self.y})"


class _PydanticLike:
    def model_dump(self) -> dict[str, Any]:
        return {"x": 1, "when": datetime(2026, 1, 1, tzinfo=timezone.utc)}


class _V1Model:
    def dict(self) -> dict[str, Any]:
        return {"y": 2}


class _BrokenModel:
    def model_dump(self) -> dict[str, Any]:
        raise RuntimeError("cannot dump")

    def __str__(self) -> str:
        return "broken"


class _Color(str, Enum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


class PutRules(ContractCase):
    async def test_put_inserts_absent_row_with_defaults(self) -> None:
        """inserts an absent row with defaults: pending, reject, {} JSON, null optionals, counters 0, messages null"""
        before = now_timestamp()
        await self.store.put("r1", thread_id="t1")
        after = now_timestamp()
        run = await self.must_get("r1")
        self.assertEqual(
            run,
            {
                "run_id": "r1",
                "thread_id": "t1",
                "assistant_id": None,
                "user_id": None,
                "model_name": None,
                "status": "pending",
                "multitask_strategy": "reject",
                "metadata": {},
                "kwargs": {},
                "error": None,
                "created_at": run["created_at"],
                "updated_at": run["updated_at"],
                **ZERO_COUNTERS,
                "last_ai_message": None,
                "first_human_message": None,
            },
        )
        self.assertRegex(run["created_at"], TIMESTAMP_FORMAT)
        self.assertRegex(run["updated_at"], TIMESTAMP_FORMAT)
        self.assertGreaterEqual(ms(run["created_at"]), ms(before))
        self.assertLessEqual(ms(run["created_at"]), ms(after))
        self.assertGreaterEqual(ms(run["updated_at"]), ms(before))

    async def test_put_stores_every_given_field(self) -> None:
        """stores every given field and uses the given created_at"""
        fields: dict[str, Any] = {
            "thread_id": "t1",
            "assistant_id": "lead_agent",
            "user_id": "alice",
            "model_name": "gpt-4o",
            "status": "running",
            "multitask_strategy": "enqueue",
            "metadata": {"source": "api", "nested": {"list": [1, "two", True, None]}},
            "kwargs": {"input": {"messages": ["hi"]}, "config": {"recursion_limit": 100}},
            "error": "previous failure",
            "created_at": "2026-01-02T03:04:05.123456Z",
        }
        await self.store.put("r1", **fields)
        self.assert_fields(await self.must_get("r1"), {"run_id": "r1", **fields})

    async def test_put_overwrites_descriptive_fields(self) -> None:
        """overwrites a present row's descriptive fields; an omitted optional becomes null / {}"""
        await self.store.put(
            "r1",
            thread_id="t1",
            assistant_id="a",
            user_id="alice",
            model_name="m1",
            status="running",
            multitask_strategy="rollback",
            metadata={"a": 1},
            kwargs={"b": 2},
            error="e",
        )
        await self.store.put("r1", thread_id="t2")
        self.assert_fields(
            await self.must_get("r1"),
            {
                "thread_id": "t2",
                "assistant_id": None,
                "user_id": None,
                "model_name": None,
                "status": "pending",
                "multitask_strategy": "reject",
                "metadata": {},
                "kwargs": {},
                "error": None,
            },
        )
        self.assertEqual(await self.store.list_by_thread("t1"), [])
        self.assertEqual(run_ids(await self.store.list_by_thread("t2")), ["r1"])

    async def test_put_keeps_created_at_counters_and_messages(self) -> None:
        """keeps created_at, the eight counters and both messages on overwrite, and moves updated_at"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00Z")
        await self.store.update_status("r1", "running")
        await self.store.update_run_completion(
            "r1", status="success", **COUNTERS, last_ai_message="bye", first_human_message="hi"
        )
        mark = await later_mark()
        await self.store.put("r1", thread_id="t1", status="running", created_at="2030-01-01T00:00:00Z")
        run = await self.must_get("r1")
        self.assertEqual(run["created_at"], "2026-01-01T00:00:00.000000Z")
        self.assert_fields(run, {**COUNTERS, "last_ai_message": "bye", "first_human_message": "hi"})
        self.assertEqual(run["status"], "running")
        self.assertGreaterEqual(ms(run["updated_at"]), ms(mark))

    async def test_put_is_idempotent_under_retries(self) -> None:
        """is idempotent under retries: the same put twice leaves one identical row"""
        fields: dict[str, Any] = {"thread_id": "t1", "user_id": "u", "metadata": {"k": "v"}}
        await self.store.put("r1", **fields)
        first = await self.must_get("r1")
        await self.store.put("r1", **fields)
        second = await self.must_get("r1")
        self.assertEqual({**second, "updated_at": ""}, {**first, "updated_at": ""})
        self.assertEqual(len(await self.store.list_by_thread("t1")), 1)

    async def test_put_keeps_assistant_id_none_distinct_from_empty(self) -> None:
        """keeps assistant_id null distinct from the empty string"""
        await self.store.put("r-null", thread_id="t1")
        await self.store.put("r-empty", thread_id="t1", assistant_id="")
        self.assertIsNone((await self.must_get("r-null"))["assistant_id"])
        self.assertEqual((await self.must_get("r-empty"))["assistant_id"], "")

    async def test_put_keeps_error_none_distinct_from_empty(self) -> None:
        """keeps error null distinct from the empty string"""
        await self.store.put("r-null", thread_id="t1")
        await self.store.put("r-empty", thread_id="t1", error="")
        self.assertIsNone((await self.must_get("r-null"))["error"])
        self.assertEqual((await self.must_get("r-empty"))["error"], "")

    async def test_put_normalises_model_name(self) -> None:
        """normalises model_name: trimmed, cut to 128 code points (an emoji is one)"""
        await self.store.put("r1", thread_id="t1", model_name="  gpt-4o \n")
        self.assertEqual((await self.must_get("r1"))["model_name"], "gpt-4o")
        await self.store.put("r2", thread_id="t1", model_name="🦌" * 200)
        self.assertEqual((await self.must_get("r2"))["model_name"], "🦌" * 128)
        await self.store.put("r3", thread_id="t1", model_name=f"  {'m' * 127}🦌🦌  ")
        self.assertEqual((await self.must_get("r3"))["model_name"], f"{'m' * 127}🦌")
        await self.store.put("r4", thread_id="t1", model_name=" \t\n ")
        self.assertEqual((await self.must_get("r4"))["model_name"], "")
        # Stripped as Python's str.strip() strips: U+001C and U+3000 go, U+FEFF stays.
        await self.store.put("r5", thread_id="t1", model_name="\x1c\u3000gpt\ufeff\xa0")
        self.assertEqual((await self.must_get("r5"))["model_name"], "gpt\ufeff")

    async def test_put_round_trips_json_objects(self) -> None:
        """round-trips metadata and kwargs as JSON objects (numbers, strings, booleans, null, nesting, unicode)"""
        metadata: dict[str, Any] = {
            "int": 42,
            "float": 1.5,
            "negative": -7,
            "text": "héllo 🦌 中文",
            "yes": True,
            "no": False,
            "nothing": None,
            "list": [1, [2, [3]], {"deep": {"deeper": "x"}}],
            "empty": {},
        }
        await self.store.put("r1", thread_id="t1", metadata=metadata, kwargs={"metadata": metadata})
        run = await self.must_get("r1")
        self.assertEqual(run["metadata"], metadata)
        self.assertEqual(run["kwargs"], {"metadata": metadata})
        # JSON numbers travel as doubles; integral ones come back as int.
        self.assertIs(type(run["metadata"]["int"]), int)
        self.assertIs(type(run["metadata"]["float"]), float)
        self.assertIs(type(run["metadata"]["yes"]), bool)

    async def test_put_converts_kwargs_json_cannot_hold(self) -> None:
        """converts kwargs JSON cannot hold (model_dump / dict / str fallback, as the SQL store did) and never fails because of them"""
        circular: dict[str, Any] = {"name": "loop"}
        circular["self"] = circular
        shared = {"s": 1}
        await self.store.put(
            "r1",
            thread_id="t1",
            kwargs={
                "big": 12345678901234567890,
                "when": datetime(2026, 1, 1, tzinfo=timezone.utc),
                "point": _Point(1, 2),
                "model": _PydanticLike(),
                "v1_model": _V1Model(),
                "broken_model": _BrokenModel(),
                "not_a_number": float("nan"),
                "infinite": float("-inf"),
                "tuple": (1, "two"),
                "set": {3},
                "decimal": Decimal("1.10"),
                "bytes": b"hi",
                "str_enum": _Color.RED,
                "int_enum": _Level.HIGH,
                "circular": circular,
                "twice": [shared, shared],
                "keys": {2: "two", None: "none", True: "yes", 1.5: "x", (1, 2): "pair"},
            },
        )
        self.assertEqual(
            (await self.must_get("r1"))["kwargs"],
            {
                "big": "12345678901234567890",
                "when": "2026-01-01 00:00:00+00:00",
                "point": "Point(1, 2)",
                "model": {"x": 1, "when": "2026-01-01 00:00:00+00:00"},
                "v1_model": {"y": 2},
                "broken_model": "broken",
                "not_a_number": None,
                "infinite": None,
                "tuple": [1, "two"],
                "set": "{3}",
                "decimal": "1.10",
                "bytes": "b'hi'",
                "str_enum": "red",
                "int_enum": 3,
                "circular": {"name": "loop", "self": "[Circular]"},
                "twice": [{"s": 1}, {"s": 1}],
                "keys": {"2": "two", "null": "none", "true": "yes", "1.5": "x", "(1, 2)": "pair"},
            },
        )

    async def test_put_json_depth_limit_and_proto_key(self) -> None:
        """accepts JSON nested 31 containers deep (JSON_DEPTH 32) and refuses deeper, or a "__proto__" key"""
        await self.store.put("r1", thread_id="t1", metadata=nest(31), kwargs={"list": [nest(29)]})
        self.assertEqual((await self.must_get("r1"))["metadata"], nest(31))
        self.assertEqual((await self.must_get("r1"))["kwargs"], {"list": [nest(29)]})
        await self.assert_invalid(self.store.put("r2", thread_id="t1", metadata=nest(32)), "metadata")
        await self.assert_invalid(
            self.store.put("r2", thread_id="t1", kwargs={"a": [nest(30)]}), "kwargs"
        )
        await self.assert_invalid(
            self.store.put("r2", thread_id="t1", kwargs={"x": {"__proto__": 1}}), "kwargs"
        )
        self.assertIsNone(await self.store.get("r2"))

    async def test_put_stores_a_copy(self) -> None:
        """stores a copy: changing the caller's object afterwards changes nothing"""
        metadata: dict[str, Any] = {"a": {"b": 1}}
        await self.store.put("r1", thread_id="t1", metadata=metadata)
        metadata["a"]["b"] = 2
        run = await self.must_get("r1")
        self.assertEqual(run["metadata"], {"a": {"b": 1}})
        run["metadata"]["a"]["b"] = 3
        self.assertEqual((await self.must_get("r1"))["metadata"], {"a": {"b": 1}})
