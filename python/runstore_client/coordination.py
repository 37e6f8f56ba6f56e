"""Part 2's values between callers and the wire: leases, operation kinds,
cancel actions, grace periods and token usage per model.

As in arguments.py, only what cannot be sent is refused here (a lease that
is neither an instant nor a duration, a name with no enum value, a counter
that is not an integer); ranges are the server's rules, so callers see its
answer, worded the same way (client/src/coordination.ts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Union

from google.protobuf.duration_pb2 import Duration

from .arguments import check_counter
from .errors import invalid_argument
from .gen.runstore.v1 import run_store_pb2 as pb
from .timestamps import timestamp_to_proto

__all__ = [
    "CANCEL_ACTIONS",
    "DEFAULT_GRACE_SECONDS",
    "LeaseInput",
    "OPERATION_KINDS",
    "action_from_proto",
    "action_to_proto",
    "check_grace_seconds",
    "kind_from_proto",
    "kind_to_proto",
    "lease_to_proto",
    "usage_map_from_proto",
    "usage_map_to_proto",
]

#: The grace past a lease's expiry, in seconds, when none is given.
DEFAULT_GRACE_SECONDS = 10

#: A lease as callers hand it: an instant (ISO 8601 string or datetime), a
#: duration (timedelta) the store turns into an instant on its own clock, or
#: the wire form as a mapping: {"expires_at": instant} or {"duration_ms": n}.
LeaseInput = Union[str, datetime, timedelta, Mapping[str, Any]]

_KIND_TO_PROTO: dict[str, pb.OperationKind] = {
    "run": pb.OPERATION_KIND_RUN,
    "checkpoint_write": pb.OPERATION_KIND_CHECKPOINT_WRITE,
    "artifact_write": pb.OPERATION_KIND_ARTIFACT_WRITE,
    "delete": pb.OPERATION_KIND_DELETE,
}
_KIND_FROM_PROTO: dict[int, str] = {value: name for name, value in _KIND_TO_PROTO.items()}

_ACTION_TO_PROTO: dict[str, pb.CancelAction] = {
    "interrupt": pb.CANCEL_ACTION_INTERRUPT,
    "rollback": pb.CANCEL_ACTION_ROLLBACK,
}
_ACTION_FROM_PROTO: dict[int, str] = {value: name for name, value in _ACTION_TO_PROTO.items()}

#: Every operation kind; the first is the default.
OPERATION_KINDS: tuple[str, ...] = tuple(_KIND_TO_PROTO)
#: Every cancel action.
CANCEL_ACTIONS: tuple[str, ...] = tuple(_ACTION_TO_PROTO)

#: Usage counters of one model, in proto order; cache_read_tokens is optional.
_USAGE_FIELDS = ("input_tokens", "output_tokens", "total_tokens")
#: Every key a model's usage may have: the wire has no room for others.
_USAGE_KEYS = (*_USAGE_FIELDS, "cache_read_tokens")


def _name(field: str, value: object, table: Mapping[str, Any]) -> Any:
    # A str Enum (a runtime's own enum) counts as its value, as for statuses.
    name = getattr(value, "value", value)
    if not isinstance(name, str) or name not in table:
        raise invalid_argument(field, f"must be one of {', '.join(table)}, got {value!r}")
    return table[name]


def kind_to_proto(field: str, value: object) -> pb.OperationKind:
    """An operation kind name as its proto value."""
    kind: pb.OperationKind = _name(field, value, _KIND_TO_PROTO)
    return kind


def kind_from_proto(value: int) -> str | None:
    """A proto operation kind as its name; UNSPECIFIED is run; None when unknown."""
    return "run" if value == pb.OPERATION_KIND_UNSPECIFIED else _KIND_FROM_PROTO.get(value)


def action_to_proto(field: str, value: object) -> pb.CancelAction:
    """A cancel action name as its proto value."""
    action: pb.CancelAction = _name(field, value, _ACTION_TO_PROTO)
    return action


def action_from_proto(value: int) -> str | None:
    """A proto cancel action as its name; UNSPECIFIED (and unknown values) are None."""
    return _ACTION_FROM_PROTO.get(value)


def check_grace_seconds(field: str, value: object) -> int:
    """grace_seconds: an integer >= 0 (None is the default, 10)."""
    return DEFAULT_GRACE_SECONDS if value is None else check_counter(field, value)


def lease_to_proto(field: str, value: object) -> pb.Lease:
    """A lease in any accepted form (see LeaseInput) as the proto Lease.

    A duration is sent as such: the store adds it to its own clock when it
    writes, so workers' clocks need not agree. Fractions of a microsecond
    are rounded, as the TypeScript client does.
    """
    if isinstance(value, Mapping):
        instant, millis = value.get("expires_at"), value.get("duration_ms")
        unknown = set(value) - {"expires_at", "duration_ms"}
        if unknown or (instant is None) == (millis is None):
            raise invalid_argument(field, "must have exactly one of expires_at and duration_ms")
        if instant is not None:
            return pb.Lease(expires_at=timestamp_to_proto(instant, f"{field}.expires_at"))
        return pb.Lease(duration=_duration(f"{field}.duration", millis))
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return pb.Lease(duration=_micros_duration(micros))
    if isinstance(value, (str, datetime)):
        return pb.Lease(expires_at=timestamp_to_proto(value, field))
    raise invalid_argument(
        field,
        "must be an instant (ISO 8601 string or datetime), a timedelta, "
        f"or {{expires_at | duration_ms}}, got {type(value).__name__}",
    )


def _duration(field: str, millis: object) -> Duration:
    if (
        isinstance(millis, bool)
        or not isinstance(millis, (int, float))
        or not math.isfinite(millis)
    ):
        raise invalid_argument(field, f"must be a number of milliseconds, got {millis!r}")
    return _micros_duration(round(millis * 1000))


def _micros_duration(micros: int) -> Duration:
    # Duration's seconds and nanos carry the same sign.
    seconds = int(micros / 1_000_000)
    return Duration(seconds=seconds, nanos=(micros - seconds * 1_000_000) * 1000)


def usage_map_to_proto(field: str, value: object) -> dict[str, pb.ModelUsage]:
    """A token-usage-by-model map ({model: {input_tokens, output_tokens,
    total_tokens, cache_read_tokens?}}) as proto ModelUsage entries.

    A counter that is absent counts 0, except cache_read_tokens, which stays
    absent (absent differs from 0). Any other key of a model's usage is
    refused, naming it, rather than dropped (it could not be read back);
    the model name's length (1 to 128 characters) is the server's rule, the
    name "__proto__" is refused here.
    """
    if not isinstance(value, Mapping):
        raise invalid_argument(
            field, f"must be a dict keyed by model name, got {type(value).__name__}"
        )
    entries: dict[str, pb.ModelUsage] = {}
    for model, usage in value.items():
        if not isinstance(model, str):
            raise invalid_argument(f"{field} key", f"must be a string, got {model!r}")
        if model == "__proto__":
            # The server, written in JavaScript, would drop this map key without a word.
            raise invalid_argument(f"{field} key", 'must not be "__proto__"')
        if not isinstance(usage, Mapping):
            raise invalid_argument(f"{field}.{model}", "must be a dict of counters")
        for key in usage:
            if key not in _USAGE_KEYS:
                raise invalid_argument(
                    f"{field}.{model}.{key}",
                    f"is not a usage counter (a model's usage has only {', '.join(_USAGE_KEYS)})",
                )
        counters = {name: _counter(field, name, usage.get(name)) for name in _USAGE_FIELDS}
        cache = usage.get("cache_read_tokens")
        if cache is not None:
            counters["cache_read_tokens"] = check_counter(f"{field}.cache_read_tokens", cache)
        entries[model] = pb.ModelUsage(**counters)
    return entries


def _counter(field: str, name: str, value: object) -> int:
    return check_counter(f"{field}.{name}", 0 if value is None else value)


def usage_map_from_proto(entries: Mapping[str, pb.ModelUsage]) -> dict[str, dict[str, int]]:
    """Proto ModelUsage entries as the map the caller wrote, cache_read_tokens only when set."""
    usage_map: dict[str, dict[str, int]] = {}
    for model in sorted(entries):
        usage = entries[model]
        counters = {name: getattr(usage, name) for name in _USAGE_FIELDS}
        if usage.HasField("cache_read_tokens"):
            counters["cache_read_tokens"] = usage.cache_read_tokens
        usage_map[model] = counters
    return usage_map
