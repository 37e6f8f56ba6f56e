"""The RunStore server in a child process, started as an operator starts it."""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .requirements import require_node

__all__ = ["REPO_ROOT", "ServerProcess"]

#: The repository root: python/tests/support/server.py is three levels below it.
REPO_ROOT = Path(__file__).resolve().parents[3]

_LISTENING = re.compile(r"listening on (https?)://([^\s\"/]+):(\d+)")

_running: set[ServerProcess] = set()


class ServerProcess:
    """One server: `node --conditions=source --import tsx src/main.ts`.

    Its stdout and stderr (JSON log lines) are collected by a reader thread;
    ``start`` returns once the "listening on" line names the port.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.port = 0
        self.scheme = "http"
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, env: Mapping[str, str] | None = None, *, timeout: float = 60.0) -> ServerProcess:
        """Starts a server with PORT=0 (or env's PORT) and waits until it listens."""
        node = require_node()
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PORT": "0",
            "LOG_LEVEL": "info",
            **(env or {}),
        }
        process = subprocess.Popen(
            [node, "--conditions=source", "--import", "tsx", "src/main.ts"],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = cls(process)
        _running.add(server)
        deadline = time.monotonic() + timeout
        while not server._listening.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"server did not start:\n{server.output()}")
        return server

    @property
    def target(self) -> str:
        """The gRPC target of the server, "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the server printed so far."""
        return "".join(self._lines)

    def logged_calls(self, method: str, code: str | None = None) -> int:
        """The calls of RPC ``method`` (its proto name) the server logged so
        far, with ``code`` ("Unavailable", "ok") if given: one "call" line
        each at LOG_LEVEL=debug, read by a thread, so a call just answered
        may not be counted yet."""
        procedure = f"runstore.v1.RunStoreService/{method}"
        count = 0
        for line in self.output().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("msg") == "call" and entry.get("procedure") == procedure:
                count += code is None or entry.get("code") == code
        return count

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a graceful shutdown), then waits for the exit code."""
        _running.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"server ignored SIGTERM for {timeout} s:\n{self.output()}") from None
        self._finish()
        return code

    def kill(self) -> None:
        """SIGKILL, for a server that must not outlive a failed test (a no-op once stopped)."""
        _running.discard(self)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._finish()

    def _finish(self) -> None:
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            match = _LISTENING.search(line)
            if match and not self._listening.is_set():
                self.scheme, self.port = match.group(1), int(match.group(3))
                self._listening.set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()
