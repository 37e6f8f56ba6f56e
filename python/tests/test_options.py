"""Options and lifecycle: timeout, request size, retries, close(), async
context manager, event loops, and the refusal of nonsense options."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import socket  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import grpc  # noqa: E402

from runstore_client import (  # noqa: E402
    DeadlineExceededError,
    GrpcRunStore,
    ResourceExhaustedError,
    RetryPolicy,
    RunStoreError,
    TlsOptions,
    UnavailableError,
)
from runstore_client import retry as retry_module  # noqa: E402
from runstore_client.retry import backoff  # noqa: E402
from tests.support import backends  # noqa: E402

#: Retries that would go on for minutes: only a deadline or close() ends them early.
ENDLESS = RetryPolicy(max_attempts=10_000, initial_backoff=0.05, max_backoff=0.1)

#: A safety net for a call that should end by itself, far beyond when it
#: does: hitting it fails the test instead of hanging it (not a speed limit).
SAFETY_NET = 60.0


@contextmanager
def watched_backoffs() -> Iterator[tuple[asyncio.Event, mock.MagicMock]]:
    """Reports each retry's backoff draw: the event is set when the first
    sleep is about to start, and the mock counts the sleeps."""
    sleeping = asyncio.Event()

    def draw(*args: Any) -> float:
        sleeping.set()
        return backoff(*args)

    with mock.patch.object(retry_module, "backoff", side_effect=draw) as drawn:
        yield sleeping, drawn


def closed_port() -> int:
    """A local port nothing listens on (connections are refused: UNAVAILABLE)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OptionsTest(backends.ServerTestCase):
    backend = "memory"

    async def test_timeout_is_deadline_exceeded(self) -> None:
        async with GrpcRunStore(self.server.target, timeout=1e-6) as store:
            with self.assertRaises(DeadlineExceededError) as caught:
                await store.get("r1")
        self.assertEqual(caught.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertIsInstance(caught.exception, TimeoutError)

    async def test_timeout_bounds_retries_and_their_sleeps(self) -> None:
        async with GrpcRunStore(f"127.0.0.1:{closed_port()}", timeout=0.5, retry=ENDLESS) as store:
            # The last UNAVAILABLE when the next sleep would pass the deadline,
            # or DEADLINE_EXCEEDED when the deadline cut the last attempt off
            # (a slow refusal on a loaded machine): the deadline ends it either way.
            with watched_backoffs() as (_, drawn), self.assertRaises(
                (UnavailableError, DeadlineExceededError)
            ):
                await asyncio.wait_for(store.get("r1"), SAFETY_NET)
        # It slept between attempts, and ended with attempts left: the deadline ended it.
        self.assertGreater(drawn.call_count, 0)
        self.assertLess(drawn.call_count, ENDLESS.max_attempts - 1)

    async def test_retry_false_makes_one_attempt(self) -> None:
        async with GrpcRunStore(f"127.0.0.1:{closed_port()}", retry=False) as store:
            with self.assertRaises(UnavailableError) as caught:
                await store.put("r1", thread_id="t1")
        self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(caught.exception.retryable)

    async def test_request_larger_than_limit_is_resource_exhausted(self) -> None:
        big = {"blob": "x" * (5 * 1024 * 1024)}
        # Refused by this client (default limit 4 MiB, the server's default) …
        with self.assertRaises(ResourceExhaustedError) as caught:
            await self.store.put("big", thread_id="t1", kwargs=big)
        self.assertEqual(caught.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # … and by the server when the client's limit is raised past its own.
        async with GrpcRunStore(self.server.target, max_request_bytes=8 * 1024 * 1024) as store:
            with self.assertRaises(ResourceExhaustedError):
                await store.put("big", thread_id="t1", kwargs=big)
            self.assertFalse(caught.exception.retryable)
            self.assertIsNone(await store.get("big"))

    async def test_close_ends_calls_and_later_calls(self) -> None:
        store = GrpcRunStore(self.server.target)
        self.assertIsNone(await store.get("closed"))
        await store.close()
        await store.close()  # idempotent
        with self.assertRaises(RunStoreError) as caught:
            await store.get("closed")
        self.assertEqual(caught.exception.code, grpc.StatusCode.CANCELLED)
        self.assertEqual(caught.exception.details, "GrpcRunStore is closed")

    async def test_close_ends_a_call_waiting_to_retry(self) -> None:
        store = GrpcRunStore(f"127.0.0.1:{closed_port()}", retry=ENDLESS)
        with watched_backoffs() as (sleeping, _):
            call = asyncio.create_task(store.get("r1"))
            await asyncio.wait_for(sleeping.wait(), SAFETY_NET)
            self.assertFalse(call.done())
            await store.close()
            # ENDLESS would retry for minutes: only close() can end the call.
            with self.assertRaises(RunStoreError) as caught:
                await asyncio.wait_for(call, SAFETY_NET)
        self.assertEqual(caught.exception.code, grpc.StatusCode.CANCELLED)

    async def test_cancelling_the_callers_task_stays_a_cancellation(self) -> None:
        async with GrpcRunStore(f"127.0.0.1:{closed_port()}", retry=ENDLESS) as store:
            with watched_backoffs() as (sleeping, _):
                call = asyncio.create_task(store.get("r1"))
                await asyncio.wait_for(sleeping.wait(), SAFETY_NET)
            call.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await call

    async def test_async_context_manager_closes(self) -> None:
        async with GrpcRunStore(self.server.target) as store:
            self.assertIsNone(await store.get("ctx"))
        with self.assertRaises(RunStoreError) as caught:
            await store.get("ctx")
        self.assertEqual(caught.exception.code, grpc.StatusCode.CANCELLED)

    async def test_token_is_accepted_by_a_server_without_auth(self) -> None:
        async with GrpcRunStore(f"http://{self.server.target}", token="some-token-0123456789") as store:
            await store.put("token", thread_id="t-token")
            self.assertIsNotNone(await store.get("token"))
            await store.delete("token")

    def test_nonsense_options_are_refused_at_construction(self) -> None:
        target = "127.0.0.1:1"
        cases: list[tuple[type[Exception], Any]] = [
            (ValueError, lambda: GrpcRunStore("")),
            (ValueError, lambda: GrpcRunStore(target, timeout=0)),
            (ValueError, lambda: GrpcRunStore(target, timeout=-1.0)),
            (ValueError, lambda: GrpcRunStore(target, token="two words")),
            (ValueError, lambda: GrpcRunStore(target, token="")),
            (ValueError, lambda: GrpcRunStore(target, token="tökén-0123456789")),
            (TypeError, lambda: GrpcRunStore(target, retry=True)),  # type: ignore[arg-type]
            (ValueError, lambda: GrpcRunStore(target, max_request_bytes=0)),
            (ValueError, lambda: GrpcRunStore(target, keepalive_seconds=-1)),
            (ValueError, lambda: GrpcRunStore("http://127.0.0.1:1", tls=TlsOptions())),
            (ValueError, lambda: TlsOptions(certificate_chain=b"cert")),
            (TypeError, lambda: TlsOptions(root_certificates="not bytes")),  # type: ignore[arg-type]
            (ValueError, lambda: RetryPolicy(max_attempts=0)),
            (TypeError, lambda: RetryPolicy(max_attempts=2.5)),  # type: ignore[arg-type]
            (ValueError, lambda: RetryPolicy(initial_backoff=-0.1)),
            (ValueError, lambda: RetryPolicy(max_backoff=float("inf"))),
        ]
        for error, build in cases:
            with self.subTest(error=error.__name__), self.assertRaises(error):
                build()

    def test_call_queue_timeout_is_a_finite_number_of_seconds_or_none(self) -> None:
        self.assertIsNone(GrpcRunStore("127.0.0.1:1")._gate.queue_timeout)
        for good in (0.05, 3, None):
            with self.subTest(value=good):
                store = GrpcRunStore("127.0.0.1:1", call_queue_timeout=good)
                self.assertEqual(store._gate.queue_timeout, good)
        for bad in (0, -1, True, "1", float("inf"), float("nan")):
            with self.subTest(value=bad), self.assertRaises(ValueError) as caught:
                GrpcRunStore("127.0.0.1:1", call_queue_timeout=bad)  # type: ignore[arg-type]
            self.assertEqual(
                str(caught.exception),
                "call_queue_timeout must be a finite number of seconds > 0 or None,"
                f" got {bad!r}",
            )

    def test_max_queued_calls_is_an_integer_at_least_0_or_none(self) -> None:
        self.assertEqual(GrpcRunStore("127.0.0.1:1")._gate.max_queued, 1000)
        for good in (0, 1, 5000, None):
            with self.subTest(value=good):
                store = GrpcRunStore("127.0.0.1:1", max_queued_calls=good)
                self.assertEqual(store._gate.max_queued, good)
        for bad in (-1, True, 1.0, "1"):
            with self.subTest(value=bad), self.assertRaises(ValueError) as caught:
                GrpcRunStore("127.0.0.1:1", max_queued_calls=bad)  # type: ignore[arg-type]
            self.assertEqual(
                str(caught.exception), f"max_queued_calls must be an integer >= 0 or None, got {bad!r}"
            )

    def test_store_made_outside_a_loop_works_in_each_loop(self) -> None:
        """Made before any event loop runs, then used from two asyncio.run calls."""
        store = GrpcRunStore(self.server.target)

        async def put_then_count(run_id: str) -> int:
            await store.put(run_id, thread_id="t-loops")
            return len(await store.list_by_thread("t-loops"))

        async def clean_up() -> None:
            for run_id in ("loop-1", "loop-2"):
                await store.delete(run_id)
            await store.close()

        # A thread of its own: this test case's event loop is not running here,
        # but asyncio.run must not replace it either.
        with ThreadPoolExecutor(1) as pool:
            self.assertEqual(pool.submit(asyncio.run, put_then_count("loop-1")).result(), 1)
            self.assertEqual(pool.submit(asyncio.run, put_then_count("loop-2")).result(), 2)
            pool.submit(asyncio.run, clean_up()).result()

    def test_backoff_is_full_jitter_doubling_to_the_cap(self) -> None:
        policy = RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=0.3)
        top = [backoff(n, policy, rand=lambda: 1.0) for n in range(1, 6)]
        self.assertEqual(top, [0.05, 0.1, 0.2, 0.3, 0.3])
        self.assertEqual(backoff(3, policy, rand=lambda: 0.0), 0.0)
