"""Test databases on the MySQL / MariaDB server, reached with the mysql CLI.

Each test class gets a database of its own, runstore_py_<random>, which the
RunStore server creates and migrates at start-up and the test drops at the
end. No MySQL server (or no mysql CLI) is a failure, unless the caller opted
out with RUNSTORE_SKIP=mysql.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import unittest
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .requirements import missing, opted_out

__all__ = ["MYSQL_SERVER_URL", "ScratchDatabase", "create_test_database", "mysql_address"]

#: The server the tests use; override with TEST_MYSQL_URL (no database part).
MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


def mysql_address() -> tuple[str, int]:
    """Host and port of the MySQL server."""
    url = urlsplit(MYSQL_SERVER_URL)
    return url.hostname or "127.0.0.1", url.port or 3306


def _mysql(sql: str, *, database: str | None = None, timeout: float = 20.0) -> None:
    """Runs ``sql`` with the mysql CLI; raises with the CLI's message on failure."""
    url = urlsplit(MYSQL_SERVER_URL)
    command = [
        "mysql",
        "--protocol=TCP",
        f"--host={url.hostname or '127.0.0.1'}",
        f"--port={url.port or 3306}",
        f"--user={unquote(url.username or 'root')}",
        "--connect-timeout=3",
        "--batch",
    ]
    env = dict(os.environ)
    if url.password:
        env["MYSQL_PWD"] = unquote(url.password)
    if database is not None:
        command.append(database)
    result = subprocess.run(
        [*command, "-e", sql], env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"mysql failed: {result.stderr.strip()}")


@dataclass
class ScratchDatabase:
    """A database of one test class; the server creates and migrates it."""

    name: str

    @property
    def url(self) -> str:
        """DATABASE_URL for the server."""
        return f"{MYSQL_SERVER_URL.rstrip('/')}/{self.name}"

    def url_through(self, port: int) -> str:
        """DATABASE_URL reaching the MySQL server through 127.0.0.1:``port`` (a TcpProxy)."""
        url = urlsplit(MYSQL_SERVER_URL)
        credentials = url.netloc.rpartition("@")[0]
        return f"mysql://{credentials}@127.0.0.1:{port}/{self.name}"

    def truncate(self) -> None:
        """Empties the runs table, so the next test starts from nothing."""
        _mysql("TRUNCATE TABLE runs", database=self.name)

    def drop(self) -> None:
        """Drops the database (safe to call twice)."""
        _mysql(f"DROP DATABASE IF EXISTS `{self.name}`")


def create_test_database() -> ScratchDatabase:
    """A fresh database name, after checking the MySQL server answers."""
    if opted_out("mysql"):
        raise unittest.SkipTest("MySQL: opted out by RUNSTORE_SKIP=mysql")
    if shutil.which("mysql") is None:
        missing(
            "MySQL",
            "the mysql client is not on PATH (apt-get install mariadb-client)",
            part="mysql",
        )
    try:
        _mysql("SELECT 1", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        missing("MySQL", f"no MySQL server at {MYSQL_SERVER_URL}: {error}", part="mysql")
    return ScratchDatabase(f"runstore_py_{secrets.token_hex(6)}")
