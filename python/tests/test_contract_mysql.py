"""The contract (docs/contract.md) through GrpcRunStore → server → MySQL (a database of its own)."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

from tests import contract  # noqa: E402
from tests.contract.watch_cases import WatchCaseTest, watch_case_rules  # noqa: E402
from tests.support import backends  # noqa: E402


class MysqlContractTest(*contract.RULES, backends.ServerTestCase):  # type: ignore[misc]
    """Every contract rule against a server on the MySQL backend."""

    backend = "mysql"


class MysqlScopedContractTest(*contract.SCOPED_RULES, backends.ServerTestCase):  # type: ignore[misc]
    """The scoped-token cases against a server on the MySQL backend that
    requires their tokens (AUTH_TOKENS_FILE)."""

    backend = "mysql"


class MysqlWatchContractTest(watch_case_rules("mysql"), WatchCaseTest):  # type: ignore[misc]
    """The watch cases (watch-*.json) on the MySQL backend: those that restart or
    add servers or change settings on server processes of their own, the
    others on one server the class shares."""

    backend = "mysql"
