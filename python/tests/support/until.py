"""Waiting on a condition in a test: poll it, never sleep a guessed time."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

#: Seconds between two looks at the condition (what it reads is cheap: a
#: counter or the server's log lines, read by a thread of their own).
POLL_INTERVAL = 0.02


async def until(check: Callable[[], bool], timeout: float) -> bool:
    """True as soon as ``check()`` holds; False once ``timeout`` seconds pass without it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_INTERVAL)
    return True


async def until_async(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    """``until`` for a check that must be awaited (a metrics scrape, a query)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_INTERVAL)
    return True
