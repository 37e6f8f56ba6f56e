"""A server process's Prometheus metrics (METRICS_PORT=0), read in tests."""

from __future__ import annotations

import json
import re
import urllib.request

from .server import ServerProcess

__all__ = ["metric", "metrics_url"]


def metrics_url(server: ServerProcess) -> str:
    """The server's metrics endpoint, from its "serving Prometheus metrics" log line."""
    for line in server.output().splitlines():
        if "serving Prometheus metrics" in line:
            return str(json.loads(line)["url"])
    raise AssertionError(f"no metrics URL in:\n{server.output()}")


def metric(url: str, name: str, labels: str = "") -> float:
    """The sum of the samples of ``name`` whose labels contain ``labels``."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    pattern = rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$"
    return sum(
        float(value)
        for found, value in re.findall(pattern, text, re.MULTILINE)
        if labels in found
    )
