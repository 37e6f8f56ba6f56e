"""How watch_runs counts its attempts and marks repeats, against a scripted
WatchRuns on a grpc.aio server in this process (test_watch.py has the real
server): each call of the script answers the cursor it was given with the
messages the test wants, then fails or ends."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import unittest  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402

from runstore_client import (  # noqa: E402
    AbortedError,
    GrpcRunStore,
    Heartbeat,
    RetryPolicy,
    RunChangeEvent,
    RunStoreError,
    UnavailableError,
    WatchEvent,
)
from runstore_client.gen.runstore.v1 import run_store_pb2 as pb  # noqa: E402

#: When every scripted change happened: 2026-01-01T00:00:00Z.
_AT = 1_767_225_600


def _heartbeat(sequence: int) -> pb.WatchRunsResponse:
    return pb.WatchRunsResponse(cursor=str(sequence))


def _change(sequence: int) -> pb.WatchRunsResponse:
    """A change at ``sequence`` (a new pending run), its cursor the sequence in decimal."""
    message = pb.WatchRunsResponse(cursor=str(sequence))
    change = message.change
    change.kind = pb.RUN_CHANGE_KIND_CREATED
    change.sequence = sequence
    change.changed_at.seconds = _AT
    run = change.run
    run.run_id, run.thread_id = f"run-{sequence}", "thread-1"
    run.status = pb.RUN_STATUS_PENDING
    run.multitask_strategy = pb.MULTITASK_STRATEGY_REJECT
    run.operation_kind = pb.OPERATION_KIND_RUN
    run.created_at.seconds = run.updated_at.seconds = _AT
    return message


#: A WatchRuns message.
Message = pb.WatchRunsResponse

#: A script: (the cursor's sequence, the call's number from 1, the call's context) -> messages.
Script = Callable[[int, int, Any], AsyncIterator[Message]]


class ScriptedWatchTest(unittest.IsolatedAsyncioTestCase):
    """A grpc.aio server whose WatchRuns runs the test's script."""

    async def serve(self, script: Script, max_attempts: int = 4) -> GrpcRunStore:
        self.cursors: list[str] = []

        async def watch_runs(
            request: pb.WatchRunsRequest, context: Any
        ) -> AsyncIterator[pb.WatchRunsResponse]:
            self.cursors.append(request.cursor)
            after = int(request.cursor) if request.cursor else 0
            async for message in script(after, len(self.cursors), context):
                yield message

        handler = grpc.method_handlers_generic_handler(
            "runstore.v1.RunStoreService",
            {
                "WatchRuns": grpc.unary_stream_rpc_method_handler(
                    watch_runs,
                    request_deserializer=pb.WatchRunsRequest.FromString,
                    response_serializer=pb.WatchRunsResponse.SerializeToString,
                )
            },
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.addAsyncCleanup(server.stop, None)
        policy = RetryPolicy(max_attempts=max_attempts, initial_backoff=0.001, max_backoff=0.001)
        store = GrpcRunStore(f"127.0.0.1:{port}", retry=policy)
        self.addAsyncCleanup(store.close)
        return store

    async def take(self, events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
        out: list[WatchEvent] = []
        async for event in events:
            out.append(event)
            if len(out) == n:
                break
        await events.aclose()  # type: ignore[attr-defined]
        return out

    async def test_attempts_count_since_the_last_message(self) -> None:
        async def script(after: int, call: int, context: Any) -> AsyncIterator[Message]:
            yield _heartbeat(after)
            yield _change(after + 1)
            await context.abort(grpc.StatusCode.ABORTED, "fell behind")

        store = await self.serve(script)
        events = await self.take(store.watch_runs(), 20)
        changes = [e for e in events if isinstance(e, RunChangeEvent)]
        self.assertEqual([c.sequence for c in changes], list(range(1, 11)))
        self.assertFalse(any(c.repeated for c in changes))
        self.assertEqual(self.cursors, ["", *(str(i) for i in range(1, 10))])

    async def test_attempts_run_out_after_max_attempts_calls_without_a_message(self) -> None:
        async def script(after: int, call: int, context: Any) -> AsyncIterator[Message]:
            if call == 1:
                yield _heartbeat(after)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database down")

        store = await self.serve(script)
        events = store.watch_runs()
        self.assertEqual(await anext(events), Heartbeat(cursor="0"))
        with self.assertRaises(UnavailableError) as caught:
            await anext(events)
        self.assertEqual(caught.exception.details, "database down")
        # The call that delivered the heartbeat is the first of maxAttempts (4)
        # attempts since that message; three more calls, none with a message.
        self.assertEqual(self.cursors, ["", "0", "0", "0"])

    async def test_a_stream_ended_without_an_error_is_resumed(self) -> None:
        async def script(after: int, call: int, context: Any) -> AsyncIterator[Message]:
            yield _heartbeat(after)
            yield _change(after + 1)

        store = await self.serve(script)
        events = await self.take(store.watch_runs(), 6)
        self.assertEqual([e.cursor for e in events], ["0", "1", "1", "2", "2", "3"])
        self.assertEqual(self.cursors, ["", "1", "2"])

    async def test_codes_a_new_call_cannot_mend_are_raised_at_once(self) -> None:
        for code in (
            grpc.StatusCode.OUT_OF_RANGE,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.PERMISSION_DENIED,
        ):
            with self.subTest(code=code):

                async def script(
                    after: int, call: int, context: Any, code: grpc.StatusCode = code
                ) -> AsyncIterator[pb.WatchRunsResponse]:
                    await context.abort(code, "no")
                    yield _heartbeat(after)  # never reached: makes this a generator

                store = await self.serve(script)
                with self.assertRaises(RunStoreError) as caught:
                    await anext(store.watch_runs())
                self.assertEqual(caught.exception.code, code)
                self.assertNotIsInstance(caught.exception, AbortedError)
                self.assertEqual(self.cursors, [""])

    async def test_repeated_marks_a_change_at_or_below_the_highest_yielded(self) -> None:
        async def script(after: int, call: int, context: Any) -> AsyncIterator[Message]:
            yield _heartbeat(after)
            if call > 1:
                yield _change(after)  # a server replaying the change at its cursor
            yield _change(after + 1)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "gone")

        store = await self.serve(script)
        events = await self.take(store.watch_runs(), 6)
        changes = [(e.sequence, e.repeated) for e in events if isinstance(e, RunChangeEvent)]
        self.assertEqual(changes, [(1, False), (1, True), (2, False)])


if __name__ == "__main__":
    unittest.main()
