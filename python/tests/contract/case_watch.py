"""How the watch steps of a case run (test/contract/cases/README.md, "Watch
steps"): each watch is a WatchRuns call through the generated grpc stub (not
the SDK's watch_runs), on a channel of its own, read message by message.
test/contract/case-watch.ts does the same with the Connect client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from runstore_client import RunStoreError
from runstore_client.convert import run_from_proto, status_to_proto
from runstore_client.coordination import kind_to_proto
from runstore_client.gen.runstore.v1 import run_store_pb2 as pb
from runstore_client.gen.runstore.v1 import run_store_pb2_grpc as pb_grpc
from runstore_client.timestamps import format_timestamp

from .case_values import CaseMemory, mismatches, resolve
from .case_watch_format import expected_count

if TYPE_CHECKING:
    from .case_servers import WatchServers

__all__ = ["WatchSteps"]

#: How long one read may wait for a message: a bound, so a hung stream fails naming the step.
READ_BOUND_SECONDS = 20.0

#: A change's kind as the cases write it, by RunChangeKind value.
_KINDS = {
    pb.RUN_CHANGE_KIND_CREATED: "created",
    pb.RUN_CHANGE_KIND_UPDATED: "updated",
    pb.RUN_CHANGE_KIND_DELETED: "deleted",
}

#: A fixed-width UTC timestamp, as changed_at must be.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

Step = dict[str, Any]

#: Checks a failed (or not failed) call against a step's "error" and "message".
ExpectFailure = Callable[[RunStoreError | None, Step, str], None]


@dataclass
class _Stream:
    """One open WatchRuns call on a channel of its own."""

    replica: str
    channel: grpc.aio.Channel
    call: Any


@dataclass
class _Watch:
    """A watch of a case, across its resumes."""

    filter: dict[str, Any]
    token: str | None
    #: The cursor of the last message received ("" before the first).
    cursor: str
    #: The highest sequence received (-1 before the first change).
    sequence: int = -1
    stream: _Stream | None = None
    #: Changes received that no expectChanges has matched yet (read before an error).
    unmatched: list[dict[str, Any]] = field(default_factory=list)


def _request(filter_: dict[str, Any], cursor: str) -> pb.WatchRunsRequest:
    """The WatchRunsRequest of a case's filter (wire names) and a cursor."""
    request = pb.WatchRunsRequest(
        statuses=[status_to_proto("statuses", s) for s in filter_.get("statuses", [])],
        active_only=filter_.get("active_only", False),
        operation_kinds=[
            kind_to_proto("operation_kinds", k) for k in filter_.get("operation_kinds", [])
        ],
        cursor=cursor,
    )
    if "user_id" in filter_:
        request.user_id = filter_["user_id"]
    if "thread_id" in filter_:
        request.thread_id = filter_["thread_id"]
    return request


async def _next_message(stream: _Stream, at: str) -> pb.WatchRunsResponse:
    """The next message of a stream; a RunStoreError for the status that
    ended it; fails after READ_BOUND_SECONDS (without waiting for the read
    to notice its cancellation: the stream is closed after a failure)."""
    read = asyncio.ensure_future(stream.call.read())
    done, _ = await asyncio.wait({read}, timeout=READ_BOUND_SECONDS)
    if not done:
        read.cancel()
        raise AssertionError(f"{at}: no message within {READ_BOUND_SECONDS} s")
    try:
        message = read.result()
    except grpc.aio.AioRpcError as error:
        raise RunStoreError(error.code(), error.details() or "") from error
    if message is grpc.aio.EOF:
        code = await stream.call.code()
        if code != grpc.StatusCode.OK:
            raise RunStoreError(code, await stream.call.details() or "")
        raise AssertionError(f"{at}: the stream ended without an error")
    return message  # type: ignore[no-any-return]


class WatchSteps:
    """The watch steps of one case: the watches it opened and the replica
    its steps go through."""

    def __init__(
        self,
        servers: WatchServers,
        memory: CaseMemory,
        record_keys: tuple[str, ...] | None,
        token_of: Callable[[str | None], str | None],
        expect_failure: ExpectFailure,
    ) -> None:
        self._servers = servers
        self._memory = memory
        self._record_keys = record_keys
        self._token_of = token_of
        self._expect_failure = expect_failure
        self._watches: dict[str, _Watch] = {}
        #: The replica the case's calls and new watches go through.
        self.replica = "a"

    async def run(self, step: Step, action: str, where: str) -> None:
        """Runs one watch step."""
        at = f"{where} ({action})"
        name = step[action]
        if action == "watch":
            await self._open(step, name, at)
        elif action == "resumeWatch":
            await self._resume(step, name, at)
        elif action == "expectChanges":
            await self._expect_changes(step, self._watches[name], at)
        elif action == "closeWatch":
            await self._close(self._watches[name])
        elif action == "restartServer":
            await self._stop_server(self.replica)
            await self._servers.start(self.replica)
        elif action == "stopServer":
            await self._stop_server(self.replica)
        elif action == "startServer":
            await self._servers.start(self.replica)
        elif action == "replica":
            await self._servers.start(name)
            self.replica = name

    async def close_all(self) -> None:
        """Ends every stream (the case is over)."""
        for watch in self._watches.values():
            await self._close(watch)

    async def _open(self, step: Step, name: str, at: str) -> None:
        if name in self._watches:
            await self._close(self._watches[name])
        filter_ = dict(resolve(step.get("filter", {}), self._memory))
        cursor = filter_.pop("cursor", "")
        watch = _Watch(filter_, self._token_of(step.get("as")), cursor)
        self._watches[name] = watch
        await self._start(watch, watch.token, step, at)
        if "save" in step and watch.stream is not None:
            self._memory.saved[step["save"]] = {"cursor": watch.cursor}

    async def _resume(self, step: Step, name: str, at: str) -> None:
        watch = self._watches[name]
        await self._close(watch)
        token = self._token_of(step["as"]) if "as" in step else watch.token
        await self._start(watch, token, step, at)

    async def _start(self, watch: _Watch, token: str | None, step: Step, at: str) -> None:
        """Opens a call from the watch's cursor on the current replica and
        reads its first message: a heartbeat with a cursor, or the step's error."""
        channel = self._servers.watch_channel(self.replica)
        stub = pb_grpc.RunStoreServiceStub(channel)  # type: ignore[no-untyped-call]
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        call = stub.WatchRuns(_request(watch.filter, watch.cursor), metadata=metadata)
        watch.stream = _Stream(self.replica, channel, call)
        try:
            message = await _next_message(watch.stream, at)
        except RunStoreError as error:
            if "error" not in step:
                raise
            await self._close(watch)
            self._expect_failure(error, step, at)
            return
        if "error" in step:
            await self._close(watch)
            self._expect_failure(None, step, at)
            return
        if message.HasField("change"):
            raise AssertionError(f"{at}: the first message must be a heartbeat, got a change")
        if not message.cursor:
            raise AssertionError(f"{at}: the first heartbeat has no cursor")
        watch.cursor = message.cursor

    async def _expect_changes(self, step: Step, watch: _Watch, at: str) -> None:
        """Reads the changes the step expects (heartbeats skipped), then one
        more message, which must be a heartbeat: nothing else was pending.
        With an "error", reads until the stream fails with it; the changes
        read on the way wait for the next expectChanges."""
        if "error" in step:
            await self._read_until_error(watch, step, at)
            return
        count = expected_count(step["changes"])
        assert count is not None
        deadline = asyncio.get_running_loop().time() + READ_BOUND_SECONDS
        while len(watch.unmatched) < count:
            if asyncio.get_running_loop().time() > deadline:
                got = len(watch.unmatched)
                raise AssertionError(f"{at}: {got} of {count} changes within {READ_BOUND_SECONDS} s")
            await self._receive(watch, at)
        if len(watch.unmatched) > count:
            raise AssertionError(f"{at}: {len(watch.unmatched)} changes came, {count} expected")
        await self._expect_heartbeat(watch, at)
        changes, watch.unmatched = watch.unmatched, []
        expected = step["changes"]
        if isinstance(expected, list):
            expected = [{"left_filter": False, **change} for change in expected]
        problems = mismatches(changes, expected, self._memory)
        if problems:
            raise AssertionError(f"{at}:\n  " + "\n  ".join(problems))

    async def _read_until_error(self, watch: _Watch, step: Step, at: str) -> None:
        deadline = asyncio.get_running_loop().time() + READ_BOUND_SECONDS
        try:
            while True:
                if asyncio.get_running_loop().time() > deadline:
                    got = len(watch.unmatched)
                    problem = f"no {step['error']} within {READ_BOUND_SECONDS} s ({got} changes read)"
                    raise AssertionError(f"{at}: {problem}")
                await self._receive(watch, at)
        except RunStoreError as error:
            await self._close(watch)
            self._expect_failure(error, step, at)

    async def _receive(self, watch: _Watch, at: str) -> None:
        """Reads one message: a change joins the unmatched ones, a heartbeat moves the cursor."""
        message = await _next_message(self._open_stream(watch, at), at)
        watch.cursor = message.cursor
        if message.HasField("change"):
            watch.unmatched.append(self._change_of(watch, message.change, at))

    async def _expect_heartbeat(self, watch: _Watch, at: str) -> None:
        message = await _next_message(self._open_stream(watch, at), at)
        watch.cursor = message.cursor
        if message.HasField("change"):
            extra = json.dumps(self._change_of(watch, message.change, at), ensure_ascii=False)
            raise AssertionError(
                f"{at}: a change came after the expected ones, before a heartbeat: {extra}"
            )

    @staticmethod
    def _open_stream(watch: _Watch, at: str) -> _Stream:
        if watch.stream is None:
            raise AssertionError(f"{at}: the watch has no open stream")
        return watch.stream

    def _change_of(self, watch: _Watch, change: pb.RunChange, at: str) -> dict[str, Any]:
        """A change in wire form, after checking what every change must be: a
        sequence above every one the watch received (no repeat, in order,
        across resumes) and a fixed-width changed_at."""
        if change.sequence <= watch.sequence:
            problem = f"sequence {change.sequence} after {watch.sequence}: repeated or out of order"
            raise AssertionError(f"{at}: {problem}")
        watch.sequence = change.sequence
        changed_at = format_timestamp(change.changed_at) if change.HasField("changed_at") else ""
        if not _TIMESTAMP.fullmatch(changed_at):
            raise AssertionError(f"{at}: changed_at {changed_at!r} is not a fixed-width timestamp")
        record = run_from_proto(change.run)
        if self._record_keys is not None:
            record = {key: value for key, value in record.items() if key in self._record_keys}
        return {
            "kind": _KINDS.get(change.kind, f"unknown {change.kind}"),
            "run": record,
            "left_filter": change.left_filter,
        }

    @staticmethod
    async def _close(watch: _Watch) -> None:
        stream, watch.stream = watch.stream, None
        if stream is not None:
            stream.call.cancel()
            await stream.channel.close()

    async def _stop_server(self, replica: str) -> None:
        """Stops the replica's server after ending the streams open on it (as
        its clients see a restart)."""
        for watch in self._watches.values():
            if watch.stream is not None and watch.stream.replica == replica:
                await self._close(watch)
        await self._servers.stop(replica)
