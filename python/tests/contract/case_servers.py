"""The servers of the watch cases (test/contract/cases/README.md, "Watch
steps"). A case that restarts, stops or starts a server, switches replica
or has settings of its own gets CaseServers: real server processes,
replica "a" from the start and "b" on first use, on the class's backend;
stopped (SIGTERM, no grace) and started again on the same port (a restart),
so the clients of the case reach the new process at the same address. On
memory a restart is a new, empty store; on MySQL every process uses the
class's database. Every other watch case runs on SharedServer: one server
process per test class with the default settings, left as the case found
it (its runs deleted on memory, its database's runs truncated on MySQL).
test/contract/case-servers.ts is the same for the TypeScript runners.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import grpc

from runstore_client import GrpcRunStore, InvalidArgumentError
from tests.support.backends import TrackingStore
from tests.support.mysql import ScratchDatabase
from tests.support.server import ServerProcess

from .case_tokens import ADMIN_TOKEN

__all__ = [
    "CASE_SERVER_DEFAULTS",
    "CaseServers",
    "SharedCaseServers",
    "SharedServer",
    "WatchServers",
    "server_env",
]

#: Every case server's settings unless its case says otherwise (as
#: test/contract/case-settings.ts): heartbeats every 100 ms, so that "no
#: further change is pending" is quick to show, and MySQL's change log
#: looked at every 10 ms, well within a heartbeat.
CASE_SERVER_DEFAULTS: Mapping[str, int] = {"WATCH_HEARTBEAT_MS": 100, "WATCH_POLL_MS": 10}

#: Every case server stops without a grace period for calls in flight
#: (README: "graceful, no grace"); the server's default waits up to 10 s.
_NO_GRACE = {"SHUTDOWN_GRACE_MS": "0"}


def server_env(
    database_url: str | None, tokens_file: Path | None, settings: Mapping[str, int] | None
) -> dict[str, str]:
    """The environment of a case server: the defaults under ``settings``,
    no shutdown grace, the database (MySQL) and the tokens it requires."""
    merged = {**CASE_SERVER_DEFAULTS, **(settings or {})}
    env = {name: str(value) for name, value in merged.items()} | _NO_GRACE
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if tokens_file is not None:
        env["AUTH_TOKENS_FILE"] = str(tokens_file)
    return env


def write_token_file(token_lines: list[str]) -> Path:
    """A tokens file of these lines in a new temporary directory (the caller removes it)."""
    directory = Path(tempfile.mkdtemp(prefix="runstore-watch-tokens-"))
    tokens = directory / "tokens"
    tokens.write_text("\n".join(token_lines) + "\n", encoding="utf-8")
    return tokens


def watch_channel(target: str) -> grpc.aio.Channel:
    """A channel to ``target`` on a connection of its own (a local
    subchannel pool), for one watch stream: a stream the test does not
    read must not hold up the others. (grpcio reads a stream's messages
    whether or not the test reads them, even without its BDP probe: the
    slowReader cases are left out, watch_cases.py.)"""
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1)]
    return grpc.aio.insecure_channel(target, options=options)


class CaseServers:
    """The server processes of one case and the clients its steps use."""

    def __init__(
        self,
        database_url: str | None,
        token_lines: list[str] | None,
        settings: Mapping[str, int] | None,
    ) -> None:
        tokens = None if token_lines is None else write_token_file(token_lines)
        self._directory = None if tokens is None else tokens.parent
        self._env = server_env(database_url, tokens, settings)
        #: Every call needs a token (the unscoped admin's when a step names none).
        self.requires_tokens = tokens is not None
        self._servers: dict[str, ServerProcess | None] = {}
        self._ports: dict[str, int] = {}
        self._stores: dict[tuple[str, str | None], GrpcRunStore] = {}

    async def start(self, replica: str) -> None:
        """Starts the replica's server (on its earlier port after a stop); a no-op while it runs."""
        if self._servers.get(replica) is not None:
            return
        env = dict(self._env)
        if replica in self._ports:
            env["PORT"] = str(self._ports[replica])
        server = await asyncio.to_thread(ServerProcess.start, env)
        self._servers[replica] = server
        self._ports[replica] = server.port

    async def stop(self, replica: str) -> None:
        """Stops the replica's server (SIGTERM, a graceful shutdown) and its clients."""
        for key in [key for key in self._stores if key[0] == replica]:
            await self._stores.pop(key).close()
        server = self._servers.get(replica)
        self._servers[replica] = None
        if server is not None:
            await asyncio.to_thread(server.stop)

    def _target(self, replica: str) -> str:
        return f"127.0.0.1:{self._ports[replica]}"

    def store(self, replica: str, token: str | None) -> GrpcRunStore:
        """The store the case's calls go through on ``replica`` with ``token``."""
        key = (replica, token)
        if key not in self._stores:
            self._stores[key] = GrpcRunStore(self._target(replica), token=token, timeout=30)
        return self._stores[key]

    def watch_channel(self, replica: str) -> grpc.aio.Channel:
        """A channel to ``replica`` for one watch stream (``watch_channel``)."""
        return watch_channel(self._target(replica))

    async def close(self) -> None:
        """Closes the clients and stops every server."""
        for replica in list(self._servers):
            await self.stop(replica)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


class SharedServer:
    """The one server of a test class's watch cases that need none of their
    own: started once with the default settings and, when ``token_lines``
    is given, the tokens of every such case; each case's calls go through
    ``for_case`` and leave the store as they found it."""

    def __init__(self, database: ScratchDatabase | None, token_lines: list[str] | None) -> None:
        tokens = None if token_lines is None else write_token_file(token_lines)
        self._directory = None if tokens is None else tokens.parent
        self.database = database
        self.requires_tokens = tokens is not None
        url = None if database is None else database.url
        try:
            self.process = ServerProcess.start(server_env(url, tokens, None))
        except BaseException:
            self._remove_tokens()
            raise

    def for_case(self) -> SharedCaseServers:
        """The servers one case sees: this one as replica "a"."""
        return SharedCaseServers(self)

    def close(self) -> None:
        """Stops the server (SIGTERM) and removes its tokens file."""
        try:
            self.process.stop()
        finally:
            self._remove_tokens()

    def _remove_tokens(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


class SharedCaseServers:
    """A case's view of a SharedServer, with CaseServers' interface: replica
    "a" only, never stopped; ``close`` removes what the case wrote (memory:
    each run and thread operation it put, through the store's own delete;
    MySQL: the runs table truncated, which logs no change)."""

    def __init__(self, shared: SharedServer) -> None:
        self._shared = shared
        self.requires_tokens = shared.requires_tokens
        self._stores: dict[str | None, TrackingStore] = {}

    async def start(self, replica: str) -> None:
        """Replica "a" runs already; a case that starts another has servers of its own."""
        _only_replica_a(replica, "start")

    async def stop(self, replica: str) -> None:
        """Refused: a case that stops a server has servers of its own."""
        raise AssertionError(f"a case on the shared server cannot stop replica {replica}")

    def store(self, replica: str, token: str | None) -> TrackingStore:
        """The store the case's calls go through with ``token``."""
        _only_replica_a(replica, "call")
        if token not in self._stores:
            target = self._shared.process.target
            self._stores[token] = TrackingStore(target, token=token, timeout=30)
        return self._stores[token]

    def watch_channel(self, replica: str) -> grpc.aio.Channel:
        """A channel to the shared server for one watch stream (``watch_channel``)."""
        _only_replica_a(replica, "watch")
        return watch_channel(self._shared.process.target)

    async def close(self) -> None:
        """Closes the case's clients and removes what it wrote."""
        put_ids: set[object] = set()
        for store in self._stores.values():
            put_ids |= store.put_ids
            await store.close()
        self._stores.clear()
        if self._shared.database is not None:
            await asyncio.to_thread(self._shared.database.truncate)
            return
        token = ADMIN_TOKEN if self.requires_tokens else None
        async with GrpcRunStore(self._shared.process.target, token=token, timeout=30) as cleaner:
            for run_id in put_ids:
                try:
                    await cleaner.delete(run_id)  # type: ignore[arg-type]
                except InvalidArgumentError:
                    pass  # an id the case used to provoke a refusal: never stored


def _only_replica_a(replica: str, what: str) -> None:
    if replica != "a":
        raise AssertionError(f"a case on the shared server cannot {what} on replica {replica}")


#: The servers a watch case's steps go through: its own, or the shared one.
WatchServers = CaseServers | SharedCaseServers
