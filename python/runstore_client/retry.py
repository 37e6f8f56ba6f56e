"""Retries of UNAVAILABLE, done in the adapter rather than by gRPC.

Why here: gRPC's service-config retry policy commits a call once response
headers arrive, and the RunStore server (connect-node) sends its headers
before an error status, which travels in the trailers. So the UNAVAILABLE
the server answers when its database is down would never be retried by
gRPC itself. Repeating an RPC after UNAVAILABLE is safe for every RPC of
RunStoreService except the four in SINGLE_ATTEMPT_RPCS, which are made once,
unless the UNAVAILABLE is the server's overload refusal: it carries a retry
hint (RetryInfo, retry_info.py) and was sent before the call touched the
store, so after it every RPC is repeated, no sooner than the hint.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import grpc

from .call_gate import BacklogRefusal
from .retry_info import retry_delay

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "SINGLE_ATTEMPT_RPCS",
    "RetryPolicy",
    "backoff",
    "call_with_retry",
    "policy_for",
    "retry_policy",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How UNAVAILABLE is retried: attempts in all, and the backoff bounds in seconds."""

    #: Attempts in all, the first included; 1 means no retry.
    max_attempts: int = 4
    #: Upper bound of the first sleep; each later bound doubles.
    initial_backoff: float = 0.05
    #: Cap on the sleep bound.
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        # Refused once, at construction: a typo must not become an endless
        # or instant retry loop in production.
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError(f"max_attempts must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("initial_backoff", "max_backoff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not value >= 0 or value == float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


#: 4 attempts, sleeps bounded by 50 ms doubling up to 2 s, as the TypeScript client.
DEFAULT_RETRY_POLICY = RetryPolicy()


def retry_policy(retry: RetryPolicy | Literal[False] | None) -> RetryPolicy:
    """The policy a store runs with: None is the default, False one attempt."""
    if retry is None:
        return DEFAULT_RETRY_POLICY
    if retry is False:
        return RetryPolicy(max_attempts=1)
    if not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, False or None, got {retry!r}")
    return retry


#: The RPCs GrpcRunStore makes once, never retried on a plain UNAVAILABLE
#: (the only code it retries; one with a retry hint, the server's overload
#: refusal before running, is retried for every RPC, these four included);
#: every other RPC is retried. UNAVAILABLE does not prove
#: the first attempt did nothing, and these four answer a repeat differently
#: from the first attempt: a StartRun that applied answers False (the worker
#: would abandon its own run), ClaimNextRun claims a second run (the first is
#: orphaned until its lease expires), FinalizeIfNotCancelled answers
#: finalized False with no cancel action, ClaimForTakeover answers False (no
#: worker knows it won). The caller reads the row (get) instead. They are the
#: RPCs without an idempotency_level in the proto.
SINGLE_ATTEMPT_RPCS = frozenset(
    {"StartRun", "ClaimNextRun", "FinalizeIfNotCancelled", "ClaimForTakeover"}
)


def policy_for(method: str, policy: RetryPolicy) -> RetryPolicy:
    """The policy the RPC ``method`` (its proto name) runs with: one attempt
    for SINGLE_ATTEMPT_RPCS, ``policy`` for every other."""
    return RetryPolicy(max_attempts=1) if method in SINGLE_ATTEMPT_RPCS else policy


def backoff(retry: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """The sleep before retry number ``retry`` (1 for the first), in seconds.

    "Full jitter": uniform in [0, min(max_backoff, initial_backoff * 2^(retry-1))),
    so clients that failed together do not come back together.
    """
    bound = min(policy.max_backoff, policy.initial_backoff * 2.0 ** (retry - 1))
    return rand() * bound


def is_retryable(
    error: BaseException, idempotent: bool = True, hint: float | None = None
) -> bool:
    """Only UNAVAILABLE: the one code gRPC documents as "retry with a backoff".
    A plain one may have been applied, so it is retried only for an
    ``idempotent`` call; one with a retry ``hint`` was refused before running.
    The gate's own refusal of a call that waited too long for a place on the
    wire (call_gate.BacklogRefusal) is not: the repeat would join the same queue."""
    if not isinstance(error, grpc.aio.AioRpcError) or isinstance(error, BacklogRefusal):
        return False
    return error.code() == grpc.StatusCode.UNAVAILABLE and (idempotent or hint is not None)


async def call_with_retry(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    timeout: float | None,
    policy: RetryPolicy,
    stopped: asyncio.Event | None = None,
    idempotent: bool = True,
) -> T:
    """Runs ``attempt(timeout)`` and repeats it while it fails with UNAVAILABLE.

    A call that is not ``idempotent`` (SINGLE_ATTEMPT_RPCS) is repeated only
    after an UNAVAILABLE with a retry hint (retry_info.py): the server's
    overload refusal, sent before the call touched the store. After a hint,
    every call sleeps max(the jittered backoff, the hint).

    ``timeout`` (seconds, None for none) bounds the whole call, sleeps
    included: each attempt gets what is left of it, and when the next sleep
    would reach the deadline the last UNAVAILABLE is raised at once. When
    ``stopped`` is set during a sleep, the last error is raised at once.
    Any other error is raised after its one attempt.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    n = 1
    while True:
        remaining = timeout if deadline is None or n == 1 else deadline - time.monotonic()
        try:
            return await attempt(remaining)
        except grpc.aio.AioRpcError as error:
            hint = retry_delay(error)
            if not is_retryable(error, idempotent, hint) or n >= policy.max_attempts:
                raise
            delay = max(backoff(n, policy), hint or 0.0)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise
            if await _sleep(delay, stopped):
                raise
        n += 1


async def _sleep(seconds: float, stopped: asyncio.Event | None) -> bool:
    """Sleeps; True when ``stopped`` was set first."""
    if stopped is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stopped.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
