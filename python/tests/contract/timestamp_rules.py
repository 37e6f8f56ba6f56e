"""docs/contract.md "Timestamps": parsing, truncation, the fixed-width output."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .helpers import ContractCase


class TimestampRules(ContractCase):
    async def test_timestamps_any_offset_to_utc_naive_is_utc(self) -> None:
        """converts any offset to UTC and treats a naive string as UTC"""
        cases = [
            ("2026-01-01T08:00:00+08:00", "2026-01-01T00:00:00.000000Z"),
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000Z"),
            ("2026-01-01T00:00:00", "2026-01-01T00:00:00.000000Z"),
            ("2025-12-31T19:30:00.5-04:30", "2026-01-01T00:00:00.500000Z"),
            ("2026-03-04 05:06:07.000008", "2026-03-04T05:06:07.000008Z"),
            ("2026-01-01T08:00:00+08", "2026-01-01T00:00:00.000000Z"),
            ("2026-01-01T05:30:00+0530", "2026-01-01T00:00:00.000000Z"),
            ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
            ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00.000000Z"),
        ]
        for i, (given, expected) in enumerate(cases):
            with self.subTest(created_at=given):
                await self.store.put(f"r{i}", thread_id="t1", created_at=given)
                self.assertEqual((await self.must_get(f"r{i}"))["created_at"], expected)

    async def test_timestamps_truncate_below_microseconds(self) -> None:
        """truncates finer than microseconds, never rounding up"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:00.1234569Z")
        await self.store.put("r2", thread_id="t1", created_at="2026-12-31T23:59:59.999999999Z")
        self.assertEqual((await self.must_get("r1"))["created_at"], "2026-01-01T00:00:00.123456Z")
        self.assertEqual((await self.must_get("r2"))["created_at"], "2026-12-31T23:59:59.999999Z")

    async def test_timestamps_accept_a_datetime(self) -> None:
        """accepts a datetime (Python's Date): aware in any zone, or naive as UTC"""
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

    async def test_timestamps_fixed_width_sort_as_time(self) -> None:
        """outputs fixed-width strings whose string order is time order"""
        await self.store.put("r1", thread_id="t1", created_at="2026-01-01T00:00:09Z")
        await self.store.put("r2", thread_id="t1", created_at="2026-01-01T00:00:10.5Z")
        a, b = await self.must_get("r1"), await self.must_get("r2")
        self.assertEqual(a["created_at"], "2026-01-01T00:00:09.000000Z")
        self.assertEqual(b["created_at"], "2026-01-01T00:00:10.500000Z")
        self.assertLess(a["created_at"], b["created_at"])

    async def test_timestamps_bad_input_names_field(self) -> None:
        """rejects a bad timestamp with INVALID_ARGUMENT naming the field"""
        for bad in [
            "yesterday",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "0999-12-31T23:59:59Z",
            "",
            "2026-01-01T00:00:00+24:00",
            "٢٠٢٦-01-01T00:00:00Z",  # Arabic-Indic digits are digits to str.isdigit, not to ISO 8601
            1767225600,  # epoch seconds: ambiguous, so refused (Python's Date(NaN) case)
            datetime(999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        ]:
            with self.subTest(created_at=bad):
                await self.assert_invalid(
                    self.store.put("r1", thread_id="t1", created_at=bad),
                    "created_at",
                )
        await self.assert_invalid(self.store.list_pending(before="not a time"), "before")
        await self.assert_invalid(self.store.list_inflight(before="2026-13-01T00:00:00Z"), "before")
        self.assertIsNone(await self.store.get("r1"))
