"""What the language-specific contract rules and the runtime scenarios share."""

from __future__ import annotations

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


def now_timestamp() -> str:
    """Now, fixed-width UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The run ids of listed rows, in order."""
    return [row["run_id"] for row in rows]


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
