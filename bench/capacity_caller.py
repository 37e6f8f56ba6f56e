"""The capacity bench's Python caller: one asyncio process, one GrpcRunStore,
playing a step's schedule (bench/capacity-schedule.ts) open-loop, as an agent
runtime's event loop would. Same protocol as bench/capacity-caller.ts:
argv[1] is the spec (JSON: target, scheduleFile, timeoutMs, seedConcurrency,
optionally callQueueTimeoutMs: the SDK's call_queue_timeout, 0 for none, and
maxQueuedCalls: its max_queued_calls, null for any number);
seeds the initial runs and prints "ready"; starts on the first line of stdin;
prints "measuring" and "measured" at the window's bounds; once every call is
answered or the grace has passed prints one JSON line (sentUs, endUs, codes)
and exits, whatever is still outstanding.

    PYTHONPATH=python /usr/bin/python3 bench/capacity_caller.py '{"target": …}'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from runstore_client import GrpcRunStore, RunStoreError

Event = list[Any]  # [at ms, op, run id, thread id, tokens, after]
METADATA = {"source": "bench", "step": 0}
#: Calls fired at most between two yields to the event loop while behind schedule.
SEND_BATCH = 32


def code_name(error: BaseException) -> str:
    """A failure's gRPC status name (RESOURCE_EXHAUSTED, …), or the exception's class name."""
    if isinstance(error, RunStoreError):
        return str(error.code.name)
    return type(error).__name__


async def call(store: GrpcRunStore, event: Event) -> None:
    """One event's call on the store."""
    _, op, run_id, thread_id, tokens, _ = event
    if op == "progress":
        await store.update_run_progress(
            run_id, total_tokens=tokens, last_ai_message=f"step {tokens // 100}"
        )
    elif op == "complete":
        await store.update_run_completion(run_id, status="success", total_tokens=tokens)
    elif op == "put":
        await store.put(run_id, thread_id=thread_id, metadata=METADATA)
    else:
        await store.update_status(run_id, "running")


async def seed(store: GrpcRunStore, initial: list[list[str]], concurrency: int) -> None:
    """Puts and starts the initial runs, ``concurrency`` at a time."""
    pending = iter(initial)

    async def worker() -> None:
        for run_id, thread_id in pending:
            await store.put(run_id, thread_id=thread_id, metadata=METADATA)
            await store.update_status(run_id, "running")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Player:
    """Plays the events from ``start``: each sent at its time (a start when
    its put is answered), each send and answer recorded in µs from ``start``."""

    def __init__(self, store: GrpcRunStore, schedule: dict[str, Any]) -> None:
        self.store = store
        self.events: list[Event] = schedule["events"]
        self.sent_us = [-1] * len(self.events)
        self.end_us = [-1] * len(self.events)
        self.codes: dict[str, str] = {}
        self.chained = {e[5]: i for i, e in enumerate(self.events) if e[5] >= 0}
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.outstanding = 0
        # The step ends once the window is over, every call fired and answered (or the grace passed).
        self.window_over = False
        self.all_fired = False
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def now_us(self) -> int:
        return round((self.loop.time() - self.start) * 1_000_000)

    def fire(self, i: int) -> None:
        self.outstanding += 1
        task = self.loop.create_task(self.run(i))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, i: int) -> None:
        self.sent_us[i] = self.now_us()
        try:
            await call(self.store, self.events[i])
        except Exception as error:  # every failure is a figure, not a crash
            self.codes[str(i)] = code_name(error)
        self.end_us[i] = self.now_us()
        self.outstanding -= 1
        following = self.chained.get(i)
        if following is not None:
            self.fire(following)
        else:
            self.end_if_done()

    async def send_all(self) -> None:
        behind = 0
        for i, event in enumerate(self.events):
            delay = self.start + event[0] / 1000 - self.loop.time()
            if delay > 0:
                behind = 0
                await asyncio.sleep(delay)
            elif (behind := behind + 1) % SEND_BATCH == 0:
                # Behind schedule: let the calls fired so far go out before
                # firing more, or none would be sent until the sender caught up.
                await asyncio.sleep(0)
            if event[5] < 0:
                self.fire(i)
        self.all_fired = True
        self.end_if_done()

    def end_if_done(self) -> None:
        if self.window_over and self.all_fired and self.outstanding == 0:
            self.done.set()

    def end_window(self) -> None:
        print("measured", flush=True)
        self.window_over = True
        self.end_if_done()


    async def play(self, warmup_ms: float, duration_ms: float, grace_ms: float) -> None:
        window_end = (warmup_ms + duration_ms) / 1000
        self.loop.call_at(self.start + warmup_ms / 1000, lambda: print("measuring", flush=True))
        self.loop.call_at(self.start + window_end, self.end_window)
        self.loop.call_at(self.start + window_end + grace_ms / 1000, self.done.set)
        sender = self.loop.create_task(self.send_all())
        await self.done.wait()
        sender.cancel()


async def main(spec: dict[str, Any]) -> None:
    with open(spec["scheduleFile"], encoding="utf-8") as file:
        schedule = json.load(file)
    target = spec["target"].removeprefix("http://")
    options: dict[str, Any] = {}
    if "callQueueTimeoutMs" in spec:
        queue_ms = spec["callQueueTimeoutMs"]
        options["call_queue_timeout"] = queue_ms / 1000 if queue_ms > 0 else None
    if "maxQueuedCalls" in spec:
        options["max_queued_calls"] = spec["maxQueuedCalls"]
    store = GrpcRunStore(target, timeout=spec["timeoutMs"] / 1000, **options)
    await seed(store, schedule["initial"], spec["seedConcurrency"])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    player = Player(store, schedule)
    await player.play(schedule["warmupMs"], schedule["durationMs"], schedule["graceMs"])
    records = {"sentUs": player.sent_us, "endUs": player.end_us, "codes": player.codes}
    sys.stdout.write(json.dumps(records, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    # Outstanding calls are abandoned: the process ends with them.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
