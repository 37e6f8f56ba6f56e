"""The contract (docs/contract.md) through GrpcRunStore → server → in-memory store."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

from tests import contract  # noqa: E402
from tests.support import backends  # noqa: E402


class MemoryContractTest(*contract.RULES, backends.ServerTestCase):  # type: ignore[misc]
    """Every contract rule against a server on the in-memory backend."""

    backend = "memory"
