"""What the suite needs (grpc, node, openssl, MySQL). Anything missing is a
failure, unless the caller opted out of that part by name with
RUNSTORE_SKIP (a comma list: ``python``, ``mysql``); then the tests that need
it are skipped, and ``npm test`` names the part in its closing line.
"""

from __future__ import annotations

import os
import shutil
import unittest
from typing import Literal, NoReturn

__all__ = ["missing", "opted_out", "require_grpc", "require_node"]

Part = Literal["python", "mysql"]


def opted_out(part: Part) -> bool:
    """True when RUNSTORE_SKIP names ``part``: its tests are skipped, not failed."""
    names = os.environ.get("RUNSTORE_SKIP", "").split(",")
    return part in {name.strip().lower() for name in names}


def missing(what: str, why: str, *, part: Part = "python") -> NoReturn:
    """Skips (``part`` opted out) or fails because ``what`` is not available."""
    if opted_out(part):
        raise unittest.SkipTest(f"{what}: {why} (opted out by RUNSTORE_SKIP={part})")
    raise RuntimeError(
        f"{what} is required: {why}; `npm test` installs it, or opt out with RUNSTORE_SKIP={part}"
    )


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
