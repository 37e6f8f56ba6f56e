"""What the contract mixins share: fixtures' values and assertions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc

from runstore_client import InvalidArgumentError

if TYPE_CHECKING:
    from tests.support.backends import ServerTestCase as _Base
else:
    # A plain mixin at run time, so unittest never collects it on its own.
    _Base = object

#: Fixed-width UTC with microseconds, as docs/contract.md "Timestamps" prescribes.
TIMESTAMP_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

ZERO_COUNTERS: dict[str, Any] = {
    "total_input_tokens": 0,
    "total_output_tokens": 0,
    "total_tokens": 0,
    "llm_call_count": 0,
    "lead_agent_tokens": 0,
    "subagent_tokens": 0,
    "middleware_tokens": 0,
    "message_count": 0,
}

COUNTERS: dict[str, Any] = {
    "total_input_tokens": 11,
    "total_output_tokens": 12,
    "total_tokens": 23,
    "llm_call_count": 3,
    "lead_agent_tokens": 14,
    "subagent_tokens": 6,
    "middleware_tokens": 3,
    "message_count": 7,
}

MAX_SAFE_INTEGER = 2**53 - 1


def ms(timestamp: str) -> str:
    """Milliseconds part of a fixed-width timestamp: what two processes' clocks agree on."""
    return timestamp[:23]


def now_timestamp() -> str:
    """Now, fixed-width UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def later_mark() -> str:
    """An instant at least 2 ms after every timestamp written so far, so that
    ``ms(updated_at) >= ms(mark)`` proves a later write moved updated_at."""
    await asyncio.sleep(0.002)
    return now_timestamp()


def run_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The run ids of listed rows, in order."""
    return [row["run_id"] for row in rows]


def nest(levels: int) -> dict[str, Any]:
    """A dict nested ``levels`` dicts deep: {"level": {"level": … {"leaf": True}}}."""
    value: dict[str, Any] = {"leaf": True}
    for _ in range(1, levels):
        value = {"level": value}
    return value


class ContractCase(_Base):
    """Assertions of the contract, on ``self.store``."""

    async def must_get(self, run_id: str) -> dict[str, Any]:
        record = await self.store.get(run_id)
        self.assertIsNotNone(record, f"run {run_id!r} should exist")
        assert record is not None
        return record

    async def assert_invalid(self, call: Awaitable[object], field: str) -> None:
        """The call fails with INVALID_ARGUMENT whose message starts with ``field``."""
        expected = f"expected INVALID_ARGUMENT naming {field}"
        with self.assertRaises(InvalidArgumentError, msg=expected) as caught:
            await call
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(
            caught.exception.details.startswith(f"{field} "),
            f"{caught.exception.details!r} should name {field}",
        )

    def assert_fields(self, record: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
        """``record`` holds exactly these values for these keys (others are not checked)."""
        self.assertEqual({key: record.get(key, "<missing>") for key in expected}, dict(expected))
