"""runstore_client: a drop-in Python RunStore backed by the RunStore gRPC server.

    from runstore_client import GrpcRunStore

    async with GrpcRunStore("127.0.0.1:50051", token="…") as store:
        await store.put("run-1", thread_id="thread-1")
        run = await store.get("run-1")

``runstore_client.deerflow.DeerFlowRunStore`` is the drop-in for DeerFlow's
current RunStore (several workers on one store). The behaviour contract is
docs/contract.md of the RunStore repository; the generated protobuf / gRPC
code is in ``runstore_client.gen.runstore.v1``.
"""

from __future__ import annotations

from .client import GrpcRunStore, TimestampInput
from .convert import MULTITASK_STRATEGIES, RUN_STATUSES
from .coordination import CANCEL_ACTIONS, OPERATION_KINDS, LeaseInput
from .errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    IdempotencyConflictError,
    InvalidArgumentError,
    OutOfRangeError,
    ResourceExhaustedError,
    RunIdTakenError,
    RunStoreError,
    ThreadConflictError,
    UnauthenticatedError,
    UnavailableError,
)
from .history import THREAD_STATUSES, DayStats, Page, RunStats, ThreadSummary, TokenTotals
from .options import TlsOptions
from .owner import AUTO
from .retry import DEFAULT_RETRY_POLICY, RetryPolicy
from .watch import RUN_CHANGE_KINDS, Heartbeat, RunChangeEvent, WatchEvent

__all__ = [
    "AUTO",
    "CANCEL_ACTIONS",
    "DEFAULT_RETRY_POLICY",
    "MULTITASK_STRATEGIES",
    "OPERATION_KINDS",
    "RUN_CHANGE_KINDS",
    "RUN_STATUSES",
    "THREAD_STATUSES",
    "AbortedError",
    "AlreadyExistsError",
    "DayStats",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "GrpcRunStore",
    "Heartbeat",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "LeaseInput",
    "OutOfRangeError",
    "Page",
    "ResourceExhaustedError",
    "RetryPolicy",
    "RunChangeEvent",
    "RunIdTakenError",
    "RunStats",
    "RunStoreError",
    "ThreadConflictError",
    "ThreadSummary",
    "TimestampInput",
    "TlsOptions",
    "TokenTotals",
    "UnauthenticatedError",
    "UnavailableError",
    "WatchEvent",
]

__version__ = "0.1.0"
