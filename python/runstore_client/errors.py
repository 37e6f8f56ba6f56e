"""The exceptions GrpcRunStore raises: one class per gRPC status code that a
caller handles differently, all under RunStoreError.

Why not re-raise ``grpc.aio.AioRpcError``: a runtime swapping an in-process
store for this one should not import grpc to catch "bad input", and a bad
argument refused locally (before any RPC) must look exactly like the same
argument refused by the server. So both become ``InvalidArgumentError`` with
``code == grpc.StatusCode.INVALID_ARGUMENT`` and a message that starts with
the field's wire name (``"run_id must be 1 to 64 characters, got 0"``). The
original ``AioRpcError``, when there is one, is kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any

import grpc

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "OutOfRangeError",
    "ResourceExhaustedError",
    "RunIdTakenError",
    "RunStoreError",
    "ThreadConflictError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
    "invalid_argument",
]


class RunStoreError(Exception):
    """A call failed; ``code`` is the gRPC status, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (UNAVAILABLE or ABORTED).

        GrpcRunStore already retried UNAVAILABLE within the call's deadline;
        seeing it here means those attempts ran out, or the store refused
        the call itself for want of a place on the wire (max_queued_calls,
        call_queue_timeout: never sent, not repeated). Every RPC of the service
        is idempotent, so a caller may requeue the call. A conflict of part 2
        (ThreadConflictError, also ABORTED) is an answer and says False.
        """
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)


class InvalidArgumentError(RunStoreError, ValueError):
    """A field broke a rule of docs/contract.md; the message starts with the field name."""


class UnavailableError(RunStoreError):
    """The server or its database cannot serve the call now; try again later."""


class UnauthenticatedError(RunStoreError):
    """The bearer token is missing or not accepted, or the server requires a
    client certificate (mutual TLS) and none was sent or it refused this one
    (the message says which; tls_refusal.py)."""


class DeadlineExceededError(RunStoreError, TimeoutError):
    """The call's timeout passed before an answer arrived."""


class ResourceExhaustedError(RunStoreError):
    """The request is larger than the server (or this client) accepts."""


class OutOfRangeError(RunStoreError):
    """An answer cannot be represented, e.g. a token sum past 2^53-1."""


class FailedPreconditionError(RunStoreError):
    """The store's state refuses the call as it stands, e.g. delete_thread on a
    thread with an operation pending or running (unless forced)."""


class AbortedError(RunStoreError):
    """The call lost a race the store decided atomically (e.g. a busy thread)."""


class AlreadyExistsError(RunStoreError):
    """The write would duplicate a key another row holds (a run_id, an idempotency key)."""


class ThreadConflictError(AbortedError):
    """An admission was refused because the thread has an active operation.

    ``thread_id`` and ``conflicting_run_id`` come from the error's details
    (None when the server sent none). ``sqlstate`` / ``pgcode`` are
    PostgreSQL's unique-violation code, the signal DeerFlow's RunManager
    looks for (on the exception or its cause chain) to turn a refused
    admission into its own ConflictError. A conflict is an answer, not an
    outage: it is never retried, and ``retryable`` is False.
    """

    sqlstate = "23505"
    pgcode = "23505"

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        thread_id: str | None = None,
        conflicting_run_id: str | None = None,
    ) -> None:
        super().__init__(code, details)
        self.thread_id = thread_id
        self.conflicting_run_id = conflicting_run_id

    @property
    def retryable(self) -> bool:
        return False


class IdempotencyConflictError(AlreadyExistsError):
    """A write was refused because another row holds its idempotency key.

    ``existing`` is that row, as the store's reads return it, so the caller
    can reuse it without another call.
    """

    def __init__(self, code: grpc.StatusCode, details: str, *, existing: dict[str, Any]) -> None:
        super().__init__(code, details)
        self.existing = existing


class RunIdTakenError(AlreadyExistsError):
    """An admission was refused because its run_id is taken by a different
    operation (another thread, owner or kind; a retry of the same admission
    answers the stored row instead).

    DeerFlowRunStore raises it where DeerFlow's SQL store lets the primary
    key's IntegrityError through: ``sqlstate`` / ``pgcode`` are PostgreSQL's
    unique-violation code, which DeerFlow's RunManager turns into its
    ConflictError. Never retried: the same run_id stays taken.
    """

    sqlstate = "23505"
    pgcode = "23505"


_BY_CODE: dict[grpc.StatusCode, type[RunStoreError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
}


def error_for(code: grpc.StatusCode, details: str) -> RunStoreError:
    """The RunStoreError subclass for ``code`` (RunStoreError itself for the rest)."""
    return _BY_CODE.get(code, RunStoreError)(code, details)


def from_rpc_error(error: grpc.aio.AioRpcError) -> RunStoreError:
    """Translates a failed RPC; the caller raises it ``from error``."""
    return error_for(error.code(), error.details() or "")


def invalid_argument(field: str, problem: str) -> InvalidArgumentError:
    """A locally refused argument, worded as the server words its refusals."""
    return InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"{field} {problem}")
