"""The retry hint of the server's overload refusal.

When the server refuses a call for overload (docs/operations.md,
"Overload"), it does so before the call touched the store and answers
UNAVAILABLE with a ``google.rpc.RetryInfo`` detail in the
``grpc-status-details-bin`` trailer and the same delay in milliseconds in
the ``grpc-retry-pushback-ms`` trailer. Either one says: wait at least this
long, and repeating the call is safe whatever the RPC. RetryInfo is read by
hand (its one field is a ``google.protobuf.Duration``), like the conflicts'
details, so no googleapis-common-protos package is needed.
"""

from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError

from .conflicts import status_details

__all__ = ["PUSHBACK_KEY", "retry_delay"]

#: The trailer gRPC's own retry machinery reads: the hint in whole milliseconds.
PUSHBACK_KEY = "grpc-retry-pushback-ms"

_RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
# google.rpc.RetryInfo: 1 retry_delay (google.protobuf.Duration).
_RETRY_DELAY_FIELD = b"\x0a"


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    """The seconds an UNAVAILABLE asks the caller to wait, from its RetryInfo
    detail, else its grpc-retry-pushback-ms trailer; None for any other error
    and for an UNAVAILABLE with neither (it may have been applied)."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    for detail in status_details(error):
        if detail.type_url == _RETRY_INFO_TYPE:
            seconds = _retry_info_seconds(detail.value)
            if seconds is not None:
                return seconds
    return _pushback_seconds(error)


def _retry_info_seconds(value: bytes) -> float | None:
    """RetryInfo's retry_delay in seconds; None when it does not decode."""
    if not value.startswith(_RETRY_DELAY_FIELD) or len(value) < 2:
        return None
    size = value[1]
    if size & 0x80 or len(value) != 2 + size:
        return None  # a Duration is never 128 bytes long
    try:
        duration = Duration.FromString(value[2:])
    except DecodeError:
        return None
    seconds = duration.seconds + duration.nanos / 1e9
    return seconds if seconds >= 0 else None


def _pushback_seconds(error: grpc.aio.AioRpcError) -> float | None:
    for key, value in error.trailing_metadata() or ():
        if key == PUSHBACK_KEY and isinstance(value, str) and value.isdigit():
            return int(value) / 1000.0
    return None
