"""A server per test class, and a GrpcRunStore on an empty store per test."""

from __future__ import annotations

import unittest
from typing import Any, ClassVar

from runstore_client import GrpcRunStore, InvalidArgumentError

from .mysql import ScratchDatabase, create_test_database
from .server import ServerProcess

__all__ = ["ServerProcess", "ServerTestCase", "TrackingStore"]


class TrackingStore(GrpcRunStore):
    """GrpcRunStore that remembers the run ids it put or admitted, so that a
    test on the in-memory backend (which has no "truncate") can remove them
    afterwards through the store's own delete."""

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target, **options)
        self.put_ids: set[object] = set()

    async def put(self, run_id: str, **fields: Any) -> None:
        self.put_ids.add(run_id)
        await super().put(run_id, **fields)

    async def create_thread_operation(self, run_id: str, **fields: Any) -> dict[str, Any]:
        self.put_ids.add(run_id)
        return await super().create_thread_operation(run_id, **fields)


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """One real server for the whole class, on the backend named by ``backend``
    ("memory" or "mysql", each MySQL class on a database of its own); every
    test gets ``self.store``, a fresh GrpcRunStore on an empty store."""

    backend: ClassVar[str] = "memory"
    #: The bearer token of ``self.store`` and of the clean-up; None for a
    #: server that requires none (``server_env`` sets what the server requires).
    token: ClassVar[str | None] = None
    server: ClassVar[ServerProcess]
    database: ClassVar[ScratchDatabase | None] = None
    store: TrackingStore

    @classmethod
    def setUpClass(cls) -> None:
        # Class cleanups run last-in first-out, also when a later step fails.
        super().setUpClass()
        env = cls.server_env()
        if cls.backend == "mysql":
            cls.database = create_test_database()
            cls.addClassCleanup(cls.database.drop)
            env["DATABASE_URL"] = cls.database.url
        cls.server = ServerProcess.start(env)
        cls.addClassCleanup(cls.server.stop)

    @classmethod
    def server_env(cls) -> dict[str, str]:
        """Settings the class's server starts with besides the database (none)."""
        return {}

    async def asyncSetUp(self) -> None:
        self.store = TrackingStore(self.server.target, token=self.token, timeout=30)

    async def asyncTearDown(self) -> None:
        await self.store.close()
        if self.database is not None:
            self.database.truncate()
            return
        async with GrpcRunStore(self.server.target, token=self.token, timeout=30) as cleaner:
            for run_id in self.store.put_ids:
                try:
                    await cleaner.delete(run_id)  # type: ignore[arg-type]
                except InvalidArgumentError:
                    pass  # an id the test used to provoke a refusal: never stored
