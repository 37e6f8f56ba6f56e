"""A venv with the OpenTelemetry API, for the tracing tests; made once.

Debian 12 has no python3-opentelemetry, but the machine image keeps the
wheels on disk (WHEELS, the files of the local index /opt/pypi/simple). The
venv sees Debian's grpcio and protobuf (``--system-site-packages``) and gets
opentelemetry-api from WHEELS alone (``--no-index``). It is cached under
node_modules/.cache (the temp dir when there is no node_modules), one per
Python version and wheel, and built under a lock, so suites running at the
same time share it. No wheel is a failure naming WHEELS, never a skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .server import REPO_ROOT

__all__ = ["WHEELS", "tracing_python"]

#: Where the machine image keeps its Python wheels.
WHEELS = Path("/opt/pypi/files")


def tracing_python() -> Path:
    """The python of the venv that has opentelemetry-api, made on first use."""
    wheel = _api_wheel()
    venv = _cache() / f"py{sys.version_info.major}.{sys.version_info.minor}-{wheel.stem}"
    with open(_cache() / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            _build(venv, wheel)
            (venv / "ready").touch()
    return venv / "bin" / "python"


def _api_wheel() -> Path:
    wheels = sorted(WHEELS.glob("opentelemetry_api-*-py3-none-any.whl"))
    if not wheels:
        raise RuntimeError(
            f"the tracing tests need the opentelemetry_api wheel in {WHEELS} (the machine image's)"
        )
    return wheels[-1]


def _cache() -> Path:
    node_modules = REPO_ROOT / "node_modules"
    base = node_modules / ".cache" if node_modules.is_dir() else Path(tempfile.gettempdir())
    cache = base / "runstore-python-tracing"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _build(venv: Path, wheel: Path) -> None:
    # No configured index or find-links: only the files in WHEELS.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index"]
    for command in (
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        [*pip, "--find-links", str(WHEELS), str(wheel)],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"{command} exited {result.returncode}:\n{output}")
