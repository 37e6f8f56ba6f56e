"""The contract (docs/contract.md) through GrpcRunStore → server → in-memory store."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

from tests import contract  # noqa: E402
from tests.contract.watch_cases import WatchCaseTest, watch_case_rules  # noqa: E402
from tests.support import backends  # noqa: E402


class MemoryContractTest(*contract.RULES, backends.ServerTestCase):  # type: ignore[misc]
    """Every contract rule against a server on the in-memory backend."""

    backend = "memory"


class MemoryScopedContractTest(*contract.SCOPED_RULES, backends.ServerTestCase):  # type: ignore[misc]
    """The scoped-token cases against a server on the in-memory backend that
    requires their tokens (AUTH_TOKENS_FILE)."""

    backend = "memory"


class MemoryWatchContractTest(watch_case_rules("memory"), WatchCaseTest):  # type: ignore[misc]
    """The watch cases (watch-*.json) on the in-memory backend: those that restart or
    add servers or change settings on server processes of their own, the
    others on one server the class shares."""

    backend = "memory"
