"""Instants as docs/contract.md "Timestamps" defines them, to and from the wire.

Written by hand rather than with ``datetime.fromisoformat`` because the rules
differ from it: an offset may be "+08", "+0530" or "+05:30", a naive string
is UTC, digits beyond microseconds are truncated (never rounded up), and only
years 1000..9999 (UTC) are valid: what every backend can hold. The accepted
syntax is exactly the TypeScript client's, so both refuse the same strings.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from .errors import invalid_argument

__all__ = ["format_timestamp", "parse_timestamp", "timestamp_to_proto"]

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})"
    r"(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$",
    re.ASCII,
)

#: Seconds since the epoch of 1000-01-01T00:00:00Z, the earliest valid instant.
MIN_SECONDS = calendar.timegm((1000, 1, 1, 0, 0, 0))
#: Seconds since the epoch of 9999-12-31T23:59:59Z; any microsecond of it is valid.
MAX_SECONDS = calendar.timegm((9999, 12, 31, 23, 59, 59))

_EPOCH = datetime(1970, 1, 1)


def parse_timestamp(value: object, field: str) -> tuple[int, int]:
    """A caller's instant as (UTC epoch seconds, microseconds).

    ``value`` is an ISO 8601 string (any offset, or none for UTC) or a
    ``datetime`` (naive means UTC). Raises InvalidArgumentError naming
    ``field`` when it is not a valid instant in 1000..9999.
    """
    if isinstance(value, datetime):
        return _from_datetime(value, field)
    if not isinstance(value, str):
        raise invalid_argument(
            field, f"must be an ISO 8601 string or a datetime, got {type(value).__name__}"
        )
    m = _ISO.match(value)
    if m is None:
        raise invalid_argument(field, f"must be an ISO 8601 timestamp, got {value!r}")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise invalid_argument(field, f"is not a valid date and time: {value!r}") from None
    if year < 1000:
        raise invalid_argument(field, f"is not a valid date and time: {value!r}")
    offset_minutes = 0
    if m.group(9) is not None:
        oh, om = int(m.group(10)), int(m.group(11) or 0)
        if oh > 23 or om > 59:
            raise invalid_argument(field, f"has an invalid UTC offset: {value!r}")
        offset_minutes = (-1 if m.group(9) == "-" else 1) * (oh * 60 + om)
    micros = int((m.group(7) or "")[:6].ljust(6, "0"))
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - offset_minutes * 60
    return _in_range(seconds, micros, field)


def _from_datetime(value: datetime, field: str) -> tuple[int, int]:
    # Arithmetic on the wall-clock fields rather than astimezone(), which
    # overflows for instants near year 1 or 9999 that are out of range anyway.
    offset = value.utcoffset()
    shift = 0 if offset is None else int(offset.total_seconds())
    seconds = calendar.timegm(value.timetuple()) - shift
    return _in_range(seconds, value.microsecond, field)


def _in_range(seconds: int, micros: int, field: str) -> tuple[int, int]:
    if seconds < MIN_SECONDS or seconds > MAX_SECONDS:
        raise invalid_argument(field, "must lie between years 1000 and 9999 (UTC)")
    return seconds, micros


def timestamp_to_proto(value: object, field: str) -> Timestamp:
    """A caller's instant as a protobuf Timestamp (microsecond precision)."""
    seconds, micros = parse_timestamp(value, field)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def format_timestamp(value: Timestamp) -> str:
    """A wire Timestamp in the fixed-width form ``2026-01-01T00:00:00.000000Z``.

    Nanoseconds are truncated to microseconds; string order is time order.
    """
    t = _EPOCH + timedelta(seconds=value.seconds)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{value.nanos // 1000:06d}Z"
    )
