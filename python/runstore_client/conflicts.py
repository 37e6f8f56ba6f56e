"""Part 2's conflicts, decoded from the error details the server sends.

The server attaches a typed detail to an expected refusal (docs/contract.md,
part 2, "Errors"): ``runstore.v1.ThreadConflict`` to ABORTED when a thread is
busy, ``runstore.v1.IdempotencyConflict`` (with the row holding the key) to
ALREADY_EXISTS. gRPC carries details in the ``grpc-status-details-bin``
trailer as a serialized ``google.rpc.Status`` whose ``details`` are
``google.protobuf.Any``. That message is read here from its three fields by
hand, so the client needs no googleapis-common-protos package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import DecodeError

from .errors import IdempotencyConflictError, RunStoreError, ThreadConflictError
from .gen.runstore.v1 import run_store_pb2 as pb

__all__ = [
    "STATUS_DETAILS_KEY",
    "conflict_from_rpc_error",
    "idempotency_reference",
    "status_details",
]

#: The trailer that carries a google.rpc.Status with the error's details.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_TYPE_URL_PREFIX = "type.googleapis.com/"

# google.rpc.Status: 1 code (varint), 2 message (bytes), 3 details (Any, repeated).
_DETAILS_FIELD = 3
_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise DecodeError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The length-delimited fields of a message as (number, bytes); others are skipped."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            _, at = _varint(data, at)
        elif wire == _WIRE_LEN:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise DecodeError("truncated field")
            yield number, data[at : at + size]
            at += size
        elif wire in (_WIRE_I64, _WIRE_I32):
            at += 8 if wire == _WIRE_I64 else 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")


def status_details(error: grpc.aio.AioRpcError) -> list[AnyMessage]:
    """The details of a failed call (empty when it has none or they do not decode)."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return [
                    AnyMessage.FromString(field)
                    for number, field in _fields(value)
                    if number == _DETAILS_FIELD
                ]
            except DecodeError:
                return []
    return []


def _detail(details: list[AnyMessage], message: type[Any]) -> Any:
    name = message.DESCRIPTOR.full_name
    for detail in details:
        if detail.type_url.removeprefix(_TYPE_URL_PREFIX) == name:
            try:
                return message.FromString(detail.value)
            except DecodeError:
                return None
    return None


def conflict_from_rpc_error(
    error: grpc.aio.AioRpcError, row_from_proto: Callable[[pb.Run], dict[str, Any]]
) -> RunStoreError | None:
    """The conflict ``error`` is, with its detail; None when it is not one.

    ABORTED with a ThreadConflict detail is a ThreadConflictError naming the
    thread and the active run; ALREADY_EXISTS with an IdempotencyConflict
    detail is an IdempotencyConflictError carrying the existing row,
    converted with ``row_from_proto``. Without a detail (a run_id taken by
    another operation) the caller maps the error by its code.
    """
    code, message = error.code(), error.details() or ""
    if code == grpc.StatusCode.ABORTED:
        detail = _detail(status_details(error), pb.ThreadConflict)
        if detail is None:
            return None
        return ThreadConflictError(
            code, message, thread_id=detail.thread_id, conflicting_run_id=detail.conflicting_run_id
        )
    if code == grpc.StatusCode.ALREADY_EXISTS:
        detail = _detail(status_details(error), pb.IdempotencyConflict)
        if detail is not None and detail.existing.HasField("created_at"):
            return IdempotencyConflictError(code, message, existing=row_from_proto(detail.existing))
    return None


def idempotency_reference(error: grpc.aio.AioRpcError) -> str | None:
    """The run id an idempotency conflict names when its row was too large
    for a trailer: the server then sends a reference (a Run with only run_id
    and idempotency_key, no created_at) and the caller reads the row itself."""
    if error.code() != grpc.StatusCode.ALREADY_EXISTS:
        return None
    detail = _detail(status_details(error), pb.IdempotencyConflict)
    if detail is None or not detail.HasField("existing") or detail.existing.HasField("created_at"):
        return None
    return str(detail.existing.run_id)
