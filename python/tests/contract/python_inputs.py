"""Contract rules whose inputs JSON cannot hold, so they cannot live in
test/contract/cases/*.json: Python objects in kwargs, datetimes, the caller's
own dict changed after the call, and Python's None where an int is declared.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any

from .helpers import ContractCase, run_ids


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


_PLUS_EIGHT = timezone(timedelta(hours=8))


class PythonInputs(ContractCase):
    async def test_python_inputs__kwargs_json_cannot_hold(self) -> None:
        """JSON values: converts kwargs JSON cannot hold (model_dump / dict / str
        fallback, as the SQL store did) and never fails because of them"""
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

    async def test_python_inputs__stores_a_copy(self) -> None:
        """JSON values: stores a copy: changing the caller's object afterwards changes nothing"""
        metadata: dict[str, Any] = {"a": {"b": 1}}
        await self.store.put("r1", thread_id="t1", metadata=metadata)
        metadata["a"]["b"] = 2
        run = await self.must_get("r1")
        self.assertEqual(run["metadata"], {"a": {"b": 1}})
        run["metadata"]["a"]["b"] = 3
        self.assertEqual((await self.must_get("r1"))["metadata"], {"a": {"b": 1}})

    async def test_python_inputs__accepts_a_datetime(self) -> None:
        """Timestamps: accepts a datetime (Python's Date): aware in any zone, or naive as UTC"""
        await self.store.put(
            "r1", thread_id="t1", created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, timezone.utc)
        )
        self.assertEqual((await self.must_get("r1"))["created_at"], "2026-01-02T03:04:05.678000Z")
        minus_five = timezone(timedelta(hours=-5))
        await self.store.put(
            "r2", thread_id="t1", created_at=datetime(2025, 12, 31, 19, 0, 0, 1, minus_five)
        )
        self.assertEqual((await self.must_get("r2"))["created_at"], "2026-01-01T00:00:00.000001Z")
        await self.store.put("r3", thread_id="t1", created_at=datetime(2026, 1, 1, 12, 0))
        self.assertEqual((await self.must_get("r3"))["created_at"], "2026-01-01T12:00:00.000000Z")

    async def test_python_inputs__before_accepts_a_datetime(self) -> None:
        """list_pending / list_inflight: `before` accepts a datetime, compared at
        microsecond precision, inclusive, in any zone"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00.000002Z")
        exact = datetime(2026, 1, 1, 8, 0, 0, 2, _PLUS_EIGHT)
        self.assertEqual(run_ids(await self.store.list_pending(before=exact)), ["r1"])
        earlier = datetime(2026, 1, 1, 0, 0, 0, 1, timezone.utc)
        self.assertEqual(await self.store.list_pending(before=earlier), [])

    async def test_python_inputs__rejects_datetime_before_year_1000(self) -> None:
        """Timestamps: rejects a datetime before the year 1000 with INVALID_ARGUMENT naming the field"""
        too_early = datetime(999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
        await self.assert_invalid(
            self.store.put("r1", thread_id="t1", created_at=too_early), "created_at"
        )
        await self.assert_invalid(self.store.list_inflight(before=too_early), "before")
        self.assertIsNone(await self.store.get("r1"))

    async def test_python_inputs__limit_none_is_refused(self) -> None:
        """list_by_thread: limit=None is refused naming limit (the Python
        signature is an int with a default; TypeScript's null means the default)"""
        await self.assert_invalid(self.store.list_by_thread("t1", limit=None), "limit")  # type: ignore[arg-type]
