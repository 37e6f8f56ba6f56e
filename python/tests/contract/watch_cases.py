"""The watch cases (watch-*.json: watch steps, restarts, a second replica,
settings), one test method per case for a backend. A case that restarts,
stops or starts a server, switches replica, or has settings other than
the defaults runs on real server processes of its own
(case_servers.CaseServers): on memory a new, empty store each start; on
MySQL the class's database, emptied after each case. Every other case runs
on the class's one shared server (case_servers.SharedServer, started
before the first test with the tokens of every such case), which each case
leaves as it found it; its watches open "from now", so they see only the
case's own changes.
"""

from __future__ import annotations

import unittest
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from tests.support.mysql import ScratchDatabase, create_test_database

from .case_runner import ContractCase, add_test_method, load_cases, run_case
from .case_servers import CASE_SERVER_DEFAULTS, CaseServers, SharedServer
from .case_tokens import token_file_lines

__all__ = ["WatchCaseTest", "needs_own_servers", "watch_case_rules"]

_OTHER = {"memory": "mysql", "mysql": "memory"}

#: The steps that stop or start a server, or go to another replica.
_SERVER_ACTIONS = ("restartServer", "stopServer", "startServer", "replica")


def needs_own_servers(case: ContractCase) -> bool:
    """True when ``case`` cannot run on the shared server: it restarts, stops
    or starts a server, switches replica, has settings other than the
    defaults, or is a slow reader."""
    settings = case.settings or {}
    return (
        case.slow_reader
        or any(CASE_SERVER_DEFAULTS.get(name) != value for name, value in settings.items())
        or any(action in step for step in case.steps for action in _SERVER_ACTIONS)
    )


class WatchCaseTest(unittest.IsolatedAsyncioTestCase):
    """A test class of watch cases on ``backend`` ("memory" or "mysql", each
    MySQL class on databases of its own): some on servers of their own, the
    others on the class's shared server."""

    backend: ClassVar[str] = "memory"
    #: The database of the cases with servers of their own (MySQL).
    database: ClassVar[ScratchDatabase | None] = None
    #: Set once a server created the class's database (MySQL).
    _database_created: ClassVar[bool] = False
    #: The cases that run on the shared server (set by watch_case_rules).
    shared_cases: ClassVar[list[ContractCase]] = []
    #: The shared server, on a database of its own on MySQL.
    shared: ClassVar[SharedServer | None] = None

    @classmethod
    def setUpClass(cls) -> None:
        # Class cleanups run last-in first-out, also when a later step fails.
        super().setUpClass()
        if cls.backend == "mysql":
            cls.database = create_test_database()
            cls.addClassCleanup(cls.database.drop)
        if cls.shared_cases:
            cls.shared = cls._start_shared_server()
            cls.addClassCleanup(cls.shared.close)

    @classmethod
    def _start_shared_server(cls) -> SharedServer:
        database = None
        if cls.backend == "mysql":
            database = create_test_database()
            cls.addClassCleanup(database.drop)
        scopes = [scope for case in cls.shared_cases for scope in (case.tokens or {}).values()]
        with_tokens = any(case.tokens is not None for case in cls.shared_cases)
        return SharedServer(database, token_file_lines(scopes) if with_tokens else None)

    async def run_on_shared_server(self, case: ContractCase) -> None:
        """Runs ``case`` on the class's shared server, then removes what it wrote."""
        assert self.shared is not None
        servers = self.shared.for_case()
        try:
            await run_case(servers, case)
        finally:
            await servers.close()

    async def run_with_servers(self, case: ContractCase) -> None:
        """Runs ``case`` on servers of its own, with its tokens and settings."""
        tokens = case.tokens
        lines = None if tokens is None else token_file_lines(tokens.values())
        url = None if self.database is None else self.database.url
        servers = CaseServers(url, lines, case.settings)
        try:
            await servers.start("a")
            type(self)._database_created = True
            await run_case(servers, case)
        finally:
            await servers.close()
            if self.database is not None and self._database_created:
                self.database.truncate()


def _test_method(case: ContractCase) -> Callable[[Any], Awaitable[None]]:
    own = needs_own_servers(case)

    async def test(self: WatchCaseTest) -> None:
        if own:
            await self.run_with_servers(case)
        else:
            await self.run_on_shared_server(case)

    test.__doc__ = f"{case.spec}: {case.name}"
    return test


def _left_out_test(backend: str, left_out: list[ContractCase]) -> Callable[[Any], None]:
    other = _OTHER[backend]

    def test(_self: Any) -> None:
        # Counted from the files as loaded: each is for the other backend only.
        if not left_out:
            raise AssertionError(f"no case is for {other} only")
        for case in left_out:
            if case.backends is None or backend in case.backends or other not in case.backends:
                raise AssertionError(f"{case.name}: not a case for {other} only")

    count = len(left_out)
    test.__doc__ = f"leaves out the {count} cases for {other} only, which the {other} runner runs"
    return test


def _slow_reader_test(left_out: list[ContractCase]) -> Callable[[Any], None]:
    def test(_self: Any) -> None:
        if not left_out or not all(case.slow_reader for case in left_out):
            raise AssertionError("the slow-reader cases left out are not all marked slowReader")

    test.__doc__ = (
        f"leaves out the {len(left_out)} slowReader cases: grpcio's aio stub reads every "
        "message the server sends whether or not the test reads (60 changes of 100 KB, "
        "no ABORTED), so a reader that falls behind cannot be shown; the TypeScript runners "
        "read streams over bare HTTP/2 and run them"
    )
    return test


def watch_case_rules(backend: str) -> type:
    """A mixin with one test method per watch case that runs on ``backend``,
    ``test_<file>__<case name>``, for a WatchCaseTest subclass, and the list
    of those that run on its shared server (``shared_cases``); and the tests
    that count the cases it leaves out: the other backend's ("backends") and
    the slow-reader ones."""
    methods: dict[str, Any] = {}
    other_backend: list[ContractCase] = []
    slow_reader: list[ContractCase] = []
    shared: list[ContractCase] = []
    for case in load_cases():
        if not case.servers:
            continue
        if case.backends is not None and backend not in case.backends:
            other_backend.append(case)
        elif case.slow_reader:
            slow_reader.append(case)
        else:
            add_test_method(methods, case, _test_method(case))
            if not needs_own_servers(case):
                shared.append(case)
    methods["shared_cases"] = shared
    methods["test_leaves_out_the_other_backends_cases"] = _left_out_test(backend, other_backend)
    methods["test_leaves_out_the_slow_reader_cases"] = _slow_reader_test(slow_reader)
    return type("WatchCaseRules", (), methods)
