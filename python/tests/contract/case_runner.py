"""Runs the contract cases of test/contract/cases/*.json (the same files the
TypeScript suite runs) against a GrpcRunStore: one unittest method per case.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from runstore_client import GrpcRunStore, RunStoreError
from runstore_client.base import STORE_METHODS

from .case_values import CaseMemory, lookup, mismatches, resolve, substitute_index

__all__ = ["CASES_DIRECTORY", "ContractCase", "case_rules", "load_cases", "run_case"]

#: python/tests/contract/case_runner.py is four levels below the repository root.
CASES_DIRECTORY = Path(__file__).resolve().parents[3] / "test" / "contract" / "cases"

#: The methods that return nothing.
_VOID = frozenset({"put", "delete", "update_model_name", "update_run_progress"})

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Step = dict[str, Any]


@dataclass(frozen=True)
class ContractCase:
    """One rule of docs/contract.md as data: the file (section) it is in, its wording, its steps."""

    file: str
    spec: str
    name: str
    steps: list[Step]


def load_cases() -> list[ContractCase]:
    """Every case of every file, in file-name order."""
    cases: list[ContractCase] = []
    for path in sorted(CASES_DIRECTORY.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            cases.append(ContractCase(path.stem, document["spec"], case["name"], case["steps"]))
    return cases


async def _take_mark() -> str:
    """A mark: waits until the wall clock's millisecond moves on, then records
    it. Every timestamp written before the mark is then earlier than it, and
    every one written after is at or after it (at millisecond granularity,
    which this process and the server share). The wait is the clock's
    granularity, at most 1 ms, not a synchronisation sleep."""
    start = time.time_ns() // 1_000_000
    while (now := time.time_ns() // 1_000_000) <= start:
        await asyncio.sleep(0)
    return (_EPOCH + timedelta(milliseconds=now)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def _expect_match(actual: Any, expected: Any, memory: CaseMemory, where: str) -> None:
    problems = mismatches(actual, expected, memory)
    if problems:
        raise AssertionError(f"{where}:\n  " + "\n  ".join(problems))


async def _run_call(store: GrpcRunStore, step: Step, memory: CaseMemory, where: str) -> None:
    method = next((key for key in step if key in STORE_METHODS), None)
    if method is None:
        raise ValueError(f"{where}: no store call in {step!r}")
    call: Callable[..., Awaitable[Any]] = getattr(store, method)
    at = f"{where} ({method})"
    expected_error: str | None = step.get("error")
    try:
        result = await call(**resolve(step[method]))
    except RunStoreError as error:
        if expected_error is None:
            raise
        code, _, field = expected_error.partition(" ")
        if error.code.name != code:
            message = f"{at}: expected {code}, got {error.code.name}: {error.details}"
            raise AssertionError(message) from error
        if field and not error.details.startswith(f"{field} "):
            raise AssertionError(f'{at}: the message should name {field}: "{error.details}"') from error
        return
    if expected_error is not None:
        raise AssertionError(f"{at}: expected {expected_error}, but the call succeeded")
    if method in _VOID and result is not None:
        raise AssertionError(f"{at}: a method that returns nothing returned {result!r}")
    if "save" in step:
        memory.saved[step["save"]] = result
    if "expect" in step:
        _expect_match(result, step["expect"], memory, at)


async def _run_step(store: GrpcRunStore, step: Step, memory: CaseMemory, where: str) -> None:
    if "mark" in step:
        memory.marks[step["mark"]] = await _take_mark()
    elif "parallel" in step:
        await asyncio.gather(
            *(_run_step(store, s, memory, f"{where}.{i + 1}") for i, s in enumerate(step["parallel"]))
        )
    elif "range" in step:
        single = {key: value for key, value in step.items() if key != "range"}
        width = len(str(step["range"] - 1))
        copies = [substitute_index(single, str(i).zfill(width)) for i in range(step["range"])]
        await _run_step(store, {"parallel": copies}, memory, where)
    elif "check" in step:
        where = f"{where} ({step['check']})"
        _expect_match(lookup(memory, step["check"]), step["expect"], memory, where)
    else:
        await _run_call(store, step, memory, where)


async def run_case(store: GrpcRunStore, case: ContractCase) -> None:
    """Runs a case's steps in order; the first mismatch raises AssertionError."""
    memory = CaseMemory()
    for i, step in enumerate(case.steps):
        await _run_step(store, step, memory, f"step {i + 1}")


def _test_method(case: ContractCase) -> Callable[[Any], Awaitable[None]]:
    async def test(self: Any) -> None:
        await run_case(self.store, case)

    test.__doc__ = f"{case.spec}: {case.name}"
    return test


def case_rules() -> type:
    """A mixin with one test method per case, ``test_<file>__<case name>``,
    for a ServerTestCase subclass (which provides ``self.store``)."""
    methods: dict[str, Any] = {}
    for case in load_cases():
        slug = re.sub(r"[^0-9a-z]+", "_", case.name.lower()).strip("_")
        name = f"test_{case.file.replace('-', '_')}__{slug}"
        if name in methods:
            raise ValueError(f"two cases are both named {name}")
        methods[name] = _test_method(case)
    return type("CaseRules", (), methods)
