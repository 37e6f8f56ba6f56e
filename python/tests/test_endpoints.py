"""Several replicas in one GrpcRunStore (issue 16 item 3): a list of targets
becomes grpcio's multi-address target with the round_robin policy. Three
server processes share one MariaDB database (reached through a TcpProxy, so
the database can be taken away from all of them), and each logs one "call"
line per RPC with its code (LOG_LEVEL=debug): the counts below are read
from those lines."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import unittest  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from runstore_client import GrpcRunStore, UnavailableError  # noqa: E402
from runstore_client.deerflow import DeerFlowRunStore  # noqa: E402
from runstore_client.targets import AUTHORITY, ROUND_ROBIN, channel_target  # noqa: E402
from tests.support.mysql import ScratchDatabase, create_test_database, mysql_address  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402
from tests.support.until import until  # noqa: E402


class TargetListTest(unittest.TestCase):
    """What a list of targets becomes, and the lists refused (naming the entry)."""

    def test_a_list_is_a_multi_address_target_with_round_robin(self) -> None:
        ipv4 = channel_target(["127.0.0.1:50051", "10.0.0.2:50052"], None)
        self.assertEqual(ipv4.target, "ipv4:127.0.0.1:50051,10.0.0.2:50052")
        self.assertEqual(ipv4.options, (ROUND_ROBIN, (AUTHORITY, "127.0.0.1:50051")))
        ipv6 = channel_target(["[::1]:1", "[0:0::2]:2"], None)
        self.assertEqual(ipv6.target, "ipv6:[::1]:1,[::2]:2")
        https = channel_target(["https://10.0.0.1:1", "https://10.0.0.2:1"], None)
        self.assertEqual(https.target, "ipv4:10.0.0.1:1,10.0.0.2:1")
        self.assertIsNotNone(https.tls)

    def test_a_target_string_keeps_its_policy_unless_it_names_several_addresses(self) -> None:
        self.assertEqual(channel_target("127.0.0.1:1", None).options, ())
        self.assertEqual(channel_target("dns:///runstore:50051", None).options, ())
        built = channel_target("ipv4:127.0.0.1:1,127.0.0.1:2", None)
        self.assertEqual(built.target, "ipv4:127.0.0.1:1,127.0.0.1:2")
        self.assertEqual(built.options, (ROUND_ROBIN, (AUTHORITY, "127.0.0.1:1")))
        # A policy or an authority the caller chose is left alone.
        chosen = [("grpc.lb_policy_name", "pick_first"), (AUTHORITY, "runstore:1")]
        self.assertEqual(channel_target("ipv4:127.0.0.1:1,127.0.0.1:2", None, chosen).options, ())

    def test_bad_lists_are_refused_naming_the_entry(self) -> None:
        cases: list[tuple[Any, type[Exception], str]] = [
            ([], ValueError, "target is an empty list: give at least one 'host:port'"),
            (["127.0.0.1:1", 7], TypeError, "target[1] must be a 'host:port' string, got int"),
            (
                ["127.0.0.1:1", "replica-b:50051"],
                ValueError,
                "target[1]: 'replica-b' is not an IP address; a list of replicas takes addresses "
                "(grpcio resolves no names in a multi-address target): give a DNS name that "
                "resolves to every replica as one target, 'dns:///name:port', instead",
            ),
            (
                ["127.0.0.1:1", "127.0.0.1:70000"],
                ValueError,
                "target[1]: '127.0.0.1:70000' needs a port from 1 to 65535, as 'host:port'",
            ),
            (
                ["127.0.0.1:1", "127.0.0.1:1"],
                ValueError,
                "target[1] repeats target[0] ('127.0.0.1:1')",
            ),
            (
                ["127.0.0.1:1", "[::1]:2"],
                ValueError,
                "target[1] ('[::1]:2'): IPv4 and IPv6 addresses cannot be mixed in one grpcio "
                "multi-address target",
            ),
            (
                ["http://127.0.0.1:1", "https://127.0.0.1:2"],
                ValueError,
                "target[1] is 'https://127.0.0.1:2' but target[0] is 'http://127.0.0.1:1': every "
                "replica takes the same form (they share the TLS settings)",
            ),
            (["::1:5"], ValueError, "target[0]: an IPv6 address goes in brackets, '[::1]:5'"),
            (5, TypeError, "target must be a string or a list of 'host:port' strings, got int"),
        ]
        for target, kind, message in cases:
            with self.subTest(target=target):
                for make in (GrpcRunStore, DeerFlowRunStore):
                    with self.assertRaises(kind) as caught:
                        make(target)
                    self.assertEqual(str(caught.exception), message)


class ReplicasTest(unittest.IsolatedAsyncioTestCase):
    database: ClassVar[ScratchDatabase]
    proxy: ClassVar[TcpProxy]
    servers: ClassVar[list[ServerProcess]]
    env: ClassVar[dict[str, str]]

    @classmethod
    def setUpClass(cls) -> None:
        # Class cleanups run last-in first-out, also when a later step fails.
        cls.database = create_test_database()
        cls.addClassCleanup(cls.database.drop)
        cls.proxy = TcpProxy(*mysql_address())
        cls.addClassCleanup(cls.proxy.close)
        cls.env = {
            "DATABASE_URL": cls.database.url_through(cls.proxy.port),
            "DB_CONNECT_TIMEOUT_MS": "1000",
            "LOG_LEVEL": "debug",  # one "call" line per RPC, with its code
        }
        # The first one migrates the database; the other two start together.
        cls.servers = [ServerProcess.start(cls.env)]
        cls.addClassCleanup(cls.servers[0].stop)
        with ThreadPoolExecutor(2) as pool:
            for server in pool.map(lambda _: ServerProcess.start(cls.env), range(2)):
                cls.servers.append(server)
                cls.addClassCleanup(server.stop)

    def tearDown(self) -> None:
        self.database.truncate()

    @staticmethod
    def calls(server: ServerProcess, method: str, code: str | None = None) -> int:
        return server.logged_calls(method, code)

    def counts(self, method: str, code: str | None = None) -> list[int]:
        return [server.logged_calls(method, code) for server in self.servers]

    async def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
        """Polls ``check`` (the log lines are read by a thread of their own)."""
        if not await until(check, timeout):
            self.fail(f"timed out waiting for {what}")

    async def connect_all(
        self, store: GrpcRunStore, run_id: str, servers: list[ServerProcess]
    ) -> None:
        """Calls until every one of ``servers`` has answered a Get of this
        store's: each address connected, so round robin has them all in its
        rotation (earlier tests' Gets are settled first, not counted)."""
        await self.settle()
        before = [self.calls(server, "Get") for server in servers]
        for _ in range(500):
            if all(self.calls(s, "Get") > b for s, b in zip(servers, before)):
                await self.settle()
                return
            await store.get(run_id)
            await asyncio.sleep(0.01)  # paces the probing Gets; the loop ends on the counts
        self.fail("not every replica answered a Get")

    async def settle(self) -> None:
        """A marker call on each replica, waited for in its log: once its
        line is read, every line before it is too, so counts taken now are
        final for the calls made so far (earlier tests' included)."""
        before = self.counts("ListPending")
        for server in self.servers:
            async with GrpcRunStore(server.target, retry=False, timeout=30) as once:
                try:
                    await once.list_pending()
                except UnavailableError:
                    pass  # the database is away: the call is logged all the same
        await self.wait_for(
            "the markers",
            lambda: all(a > b for a, b in zip(self.counts("ListPending"), before)),
        )

    async def test_calls_go_round_robin_and_any_replica_reads_what_another_wrote(self) -> None:
        async with GrpcRunStore([s.target for s in self.servers], timeout=30) as store:
            await store.put("spread-1", thread_id="t-spread", status="running")
            await self.connect_all(store, "spread-1", self.servers)
            before = self.counts("Get")
            runs = [await store.get("spread-1") for _ in range(30)]
            self.assertEqual({(r or {}).get("thread_id") for r in runs}, {"t-spread"})
            await self.wait_for(
                "30 more Get lines", lambda: sum(self.counts("Get")) == sum(before) + 30
            )
            self.assertEqual([a - b for a, b in zip(self.counts("Get"), before)], [10, 10, 10])

    async def test_a_target_string_built_by_the_caller_spreads_too(self) -> None:
        two = self.servers[:2]
        target = "ipv4:" + ",".join(s.target for s in two)
        async with GrpcRunStore(target, timeout=30) as store:
            await self.connect_all(store, "none", two)
            before = [self.calls(s, "Get") for s in two]
            for _ in range(20):
                self.assertIsNone(await store.get("none"))
            total = sum(before) + 20
            await self.wait_for(
                "20 more Get lines", lambda: sum(self.calls(s, "Get") for s in two) == total
            )
            self.assertEqual([self.calls(s, "Get") - b for s, b in zip(two, before)], [10, 10])

    async def test_deerflow_store_takes_a_list(self) -> None:
        async with DeerFlowRunStore([s.target for s in self.servers], timeout=30) as store:
            await store.put("df-1", thread_id="t-df", user_id=None)
            for _ in range(3):
                row = await store.get("df-1", user_id=None)
                self.assertEqual((row or {}).get("thread_id"), "t-df")

    async def test_a_replica_killed_under_load_calls_keep_succeeding(self) -> None:
        extra = await asyncio.to_thread(ServerProcess.start, self.env)
        self.addCleanup(extra.kill)
        targets = [self.servers[0].target, self.servers[1].target, extra.target]
        async with GrpcRunStore(targets, timeout=30) as store:
            load = _Load(store, workers=4)
            try:
                await self.wait_for("60 calls before the kill", lambda: load.done >= 60)
                extra.kill()
                killed_at = load.done
                await self.wait_for("60 calls after the kill", lambda: load.done >= killed_at + 60)
            finally:
                await load.stop()
            self.assertEqual(load.errors, [])
            missing = [run_id for run_id in load.written if await store.get(run_id) is None]
            self.assertEqual(missing, [])
            print(
                f"REPORT endpoints (python, SIGKILL): {load.done} calls by 4 tasks, one of 3 "
                f"replicas killed after {killed_at}; {len(load.errors)} failed, "
                f"{len(load.written)} acknowledged puts, {len(missing)} missing"
            )

    async def test_database_down_single_attempt_once_idempotent_on_each_replica(self) -> None:
        async with GrpcRunStore([s.target for s in self.servers], timeout=30) as store:
            await store.put("down-1", thread_id="t-down", status="pending")
            await self.connect_all(store, "down-1", self.servers)
            before_start = sum(self.counts("StartRun"))
            before_get = self.counts("Get", "Unavailable")
            self.proxy.cut()
            try:
                with self.assertRaises(UnavailableError):
                    await store.start_run("down-1")
                with self.assertRaises(UnavailableError):
                    await store.get("down-1")
                await self.settle()
            finally:
                self.proxy.forward()
            self.assertEqual(sum(self.counts("StartRun")) - before_start, 1)
            gets = [a - b for a, b in zip(self.counts("Get", "Unavailable"), before_get)]
            # 4 attempts (the default policy), each retry on the next replica.
            self.assertEqual(sorted(gets), [1, 1, 2])
            # Once the database is back, the run is as it was: pending.
            async with GrpcRunStore([s.target for s in self.servers], timeout=30) as later:
                run = await later.get("down-1")
            self.assertEqual((run or {}).get("status"), "pending")


class _Load:
    """``workers`` tasks of put, get and update_status on runs of their own
    until stop(); every failure is kept, every acknowledged put listed."""

    def __init__(self, store: GrpcRunStore, workers: int) -> None:
        self.store = store
        self.done = 0
        self.errors: list[str] = []
        self.written: list[str] = []
        self._stopped = False
        self._tasks = [asyncio.create_task(self._loop(w)) for w in range(workers)]

    async def _loop(self, worker: int) -> None:
        i = 0
        while not self._stopped:
            run_id = f"load-{worker}-{i}"
            try:
                await self.store.put(run_id, thread_id="t-load")
                self.written.append(run_id)
                run = await self.store.get(run_id)
                if (run or {}).get("run_id") != run_id:
                    raise AssertionError(f"get {run_id} answered {run!r}")
                if await self.store.update_status(run_id, "running") is not True:
                    raise AssertionError(f"update_status {run_id}")
            except Exception as error:  # noqa: BLE001 - every failure is the test's finding
                self.errors.append(f"{type(error).__name__}: {error}")
            self.done += 3
            i += 1

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*self._tasks)
