"""The lifecycle bench's Python caller (bench/lifecycle.ts): one asyncio
process, one GrpcRunStore, ``concurrency`` workers each running agent-run
lifecycles back to back, as an agent runtime's event loop drives the store.
A lifecycle is ten calls: put, start, five progress snapshots, completion,
get and list_by_thread (the same as bench/load.ts's lifecycle workload).

argv[1] is the spec (JSON: target, concurrency, warmupMs, durationMs, tag).
Prints "measuring" and "measured" at the window's bounds, then one JSON line:
the latencies (µs) of the lifecycles finished in the window, the calls
answered in it, the calls that failed in it by gRPC status (a lifecycle
with a failed call is abandoned, not counted, and the worker goes on) and
the process's CPU (µs) over it.

    PYTHONPATH=python /usr/bin/python3 bench/lifecycle_caller.py '{"target": …}'
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from runstore_client import GrpcRunStore, RunStoreError

METADATA = {"source": "bench", "step": 0}


class Window:
    """The measured window: which lifecycles count, and the CPU spent in it."""

    def __init__(self) -> None:
        self.open = False
        self.calls = 0
        self.failed: dict[str, int] = {}
        self.latencies_us: list[int] = []
        self.cpu_start = 0.0
        self.cpu_us = 0

    def answered(self, _answer: object) -> None:
        if self.open:
            self.calls += 1

    def failure(self, error: RunStoreError) -> None:
        if self.open:
            name = str(error.code.name)
            self.failed[name] = self.failed.get(name, 0) + 1

    def begin(self) -> None:
        print("measuring", flush=True)
        self.cpu_start = time.process_time()
        self.open = True

    def end(self) -> None:
        self.cpu_us = round((time.process_time() - self.cpu_start) * 1_000_000)
        self.open = False
        print("measured", flush=True)


async def lifecycle(store: GrpcRunStore, run_id: str, thread_id: str, window: Window) -> None:
    """One agent run from put to completion, then read back; each answer
    inside the window is counted."""
    window.answered(await store.put(run_id, thread_id=thread_id, metadata=METADATA))
    window.answered(await store.update_status(run_id, "running"))
    for k in range(1, 6):
        snapshot = {"total_tokens": k * 100, "last_ai_message": f"step {k}"}
        window.answered(await store.update_run_progress(run_id, **snapshot))
    window.answered(await store.update_run_completion(run_id, status="success", total_tokens=600))
    window.answered(await store.get(run_id))
    window.answered(await store.list_by_thread(thread_id, limit=10))


async def worker(
    store: GrpcRunStore, spec: dict[str, Any], w: int, window: Window, stop: asyncio.Event
) -> None:
    """Lifecycles back to back until the window has ended; each one that
    finished inside the window is counted."""
    i = 0
    while not stop.is_set():
        began = time.perf_counter()
        i += 1
        try:
            await lifecycle(store, f"{spec['tag']}-w{w}-{i}", f"{spec['tag']}-t{w}", window)
        except RunStoreError as error:  # a refusal is a figure, not a crash
            window.failure(error)
            continue
        if window.open:
            window.latencies_us.append(round((time.perf_counter() - began) * 1_000_000))


async def main(spec: dict[str, Any]) -> None:
    async with GrpcRunStore(spec["target"].removeprefix("http://")) as store:
        window = await measure(store, spec)
    result = {
        "latenciesUs": window.latencies_us,
        "calls": window.calls,
        "failed": window.failed,
        "callerCpuUs": window.cpu_us,
    }
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def measure(store: GrpcRunStore, spec: dict[str, Any]) -> Window:
    """Runs the workers through warm-up and window; the window's figures."""
    window = Window()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(spec["warmupMs"] / 1000, window.begin)
    window_end = (spec["warmupMs"] + spec["durationMs"]) / 1000
    loop.call_later(window_end, lambda: (window.end(), stop.set()))
    workers = range(spec["concurrency"])
    await asyncio.gather(*(worker(store, spec, w, window, stop) for w in workers))
    return window


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
