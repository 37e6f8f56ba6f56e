"""What the suite needs (grpc, node, MySQL): missing under CI=true is a
failure; elsewhere the tests that need it are skipped with a loud message.
"""

from __future__ import annotations

import os
import shutil
import sys
import unittest
from typing import NoReturn

__all__ = ["in_ci", "missing", "require_grpc", "require_node"]


def in_ci() -> bool:
    """CI sets CI=true; there nothing may be skipped for want of a dependency."""
    return os.environ.get("CI") == "true"


def missing(what: str, why: str) -> NoReturn:
    """Fails (CI) or skips loudly (elsewhere) because ``what`` is not available."""
    if in_ci():
        raise RuntimeError(f"{what} is required in CI: {why}")
    print(f"\n!!!!!!!! SKIPPING {what} tests: {why} !!!!!!!!\n", file=sys.stderr, flush=True)
    raise unittest.SkipTest(f"{what}: {why}")


def require_grpc() -> None:
    """Call at the top of a test module, before importing runstore_client.

    Raising SkipTest while a module is imported makes unittest report the
    module as skipped; raising anything else makes it an error.
    """
    try:
        import google.protobuf  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as error:
        missing(
            "grpc",
            f"{error} (Debian: apt-get install python3-grpcio python3-protobuf)",
        )


def require_node() -> str:
    """The node executable that runs the server."""
    node = shutil.which("node")
    if node is None:
        missing("server", "node is not on PATH")
    return node
