"""The servers of a case that needs its own (test/contract/cases/README.md,
"Watch steps"): real server processes, replica "a" from the start and "b"
on first use, on the class's backend; stopped (SIGTERM) and started again
on the same port (a restart), so the clients of the case reach the new
process at the same address. On memory a restart is a new, empty store; on
MySQL every process uses the class's database.
test/contract/case-servers.ts is the same for the TypeScript runners.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import grpc

from runstore_client import GrpcRunStore
from tests.support.server import ServerProcess

__all__ = ["CASE_SERVER_DEFAULTS", "CaseServers"]

#: Every case server's settings unless its case says otherwise (as
#: test/contract/case-settings.ts): heartbeats every 100 ms, so that "no
#: further change is pending" is quick to show, and MySQL's change log
#: looked at every 10 ms, well within a heartbeat.
CASE_SERVER_DEFAULTS: Mapping[str, int] = {"WATCH_HEARTBEAT_MS": 100, "WATCH_POLL_MS": 10}


class CaseServers:
    """The server processes of one case and the clients its steps use."""

    def __init__(
        self,
        database_url: str | None,
        token_lines: list[str] | None,
        settings: Mapping[str, int] | None,
    ) -> None:
        merged = {**CASE_SERVER_DEFAULTS, **(settings or {})}
        self._env = {name: str(value) for name, value in merged.items()}
        if database_url is not None:
            self._env["DATABASE_URL"] = database_url
        self._directory: Path | None = None
        if token_lines is not None:
            self._directory = Path(tempfile.mkdtemp(prefix="runstore-watch-tokens-"))
            tokens = self._directory / "tokens"
            tokens.write_text("\n".join(token_lines) + "\n", encoding="utf-8")
            self._env["AUTH_TOKENS_FILE"] = str(tokens)
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
        """A channel to ``replica`` on a connection of its own (a local
        subchannel pool), for one watch stream: a stream the test does not
        read must not hold up the others. (grpcio reads a stream's messages
        whether or not the test reads them, even without its BDP probe: the
        slowReader cases are left out here, watch_cases.py.)"""
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1)]
        return grpc.aio.insecure_channel(self._target(replica), options=options)

    async def close(self) -> None:
        """Closes the clients and stops every server."""
        for replica in list(self._servers):
            await self.stop(replica)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
