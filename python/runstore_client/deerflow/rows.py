"""Rows as DeerFlow's SQL store returns them.

DeerFlow's ``RunRepository`` answers a row as the dict of its table's columns
(metadata and kwargs under those names) with every timestamp as
``datetime.isoformat()`` of a UTC datetime: ``2026-01-01T00:00:00.123456+00:00``,
and without the fraction when it is zero (``2026-01-01T00:00:00+00:00``).
GrpcRunStore's records hold the same fields, in the fixed-width ``…Z`` form,
plus ``queued``, which DeerFlow's table does not have (DeerFlow refuses the
enqueue strategy, so none of its rows is ever queued): it is left out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..arguments import COUNTER_FIELDS

__all__ = ["DEERFLOW_ROW_KEYS", "TIMESTAMP_KEYS", "deerflow_row", "deerflow_timestamp"]

#: The keys of a row, as DeerFlow's runs table names its columns.
DEERFLOW_ROW_KEYS: frozenset[str] = frozenset(
    {
        "run_id",
        "thread_id",
        "assistant_id",
        "user_id",
        "status",
        "operation_kind",
        "model_name",
        "multitask_strategy",
        "metadata",
        "kwargs",
        "error",
        "stop_reason",
        *COUNTER_FIELDS,
        "first_human_message",
        "last_ai_message",
        "token_usage_by_model",
        "follow_up_to_run_id",
        "owner_worker_id",
        "lease_expires_at",
        "cancel_action",
        "cancel_requested_at",
        "idempotency_key",
        "created_at",
        "updated_at",
    }
)

#: The keys that hold instants.
TIMESTAMP_KEYS: tuple[str, ...] = (
    "created_at",
    "updated_at",
    "lease_expires_at",
    "cancel_requested_at",
)


def deerflow_timestamp(value: str | None) -> str | None:
    """A fixed-width UTC timestamp (``…T00:00:00.000000Z``) as DeerFlow writes
    one (``…T00:00:00+00:00``); None stays None."""
    if value is None:
        return None
    instant = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return instant.isoformat()


def deerflow_row(record: dict[str, Any]) -> dict[str, Any]:
    """A GrpcRunStore record as DeerFlow's store returns the row (a new dict)."""
    row = {key: value for key, value in record.items() if key in DEERFLOW_ROW_KEYS}
    for key in TIMESTAMP_KEYS:
        row[key] = deerflow_timestamp(row.get(key))
    return row
