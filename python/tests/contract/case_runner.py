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

from .case_values import CaseMemory, lookup, mismatches, resolve, substitute_index

__all__ = [
    "CASES_DIRECTORY",
    "CASE_METHODS",
    "ContractCase",
    "case_rules",
    "load_cases",
    "run_case",
]

#: python/tests/contract/case_runner.py is four levels below the repository root.
CASES_DIRECTORY = Path(__file__).resolve().parents[3] / "test" / "contract" / "cases"

#: The store methods a step may call, by their contract names: every method
#: of the contract, including those GrpcRunStore may not have yet (a call to
#: one fails). test/contract/case-runner.ts keeps the same list.
CASE_METHODS: tuple[str, ...] = (
    "put",
    "get",
    "list_by_thread",
    "update_status",
    "delete",
    "update_model_name",
    "update_run_completion",
    "update_run_progress",
    "list_pending",
    "list_inflight",
    "aggregate_tokens_by_thread",
    "create_thread_operation",
    "start_run",
    "renew_lease",
    "update_lease",
    "request_cancel",
    "finalize_if_not_cancelled",
    "claim_for_takeover",
    "list_inflight_with_expired_lease",
    "claim_next_run",
    "delete_thread_operation",
    "get_many_by_thread",
    "list_successful_regenerate_sources",
    "list_edit_regenerate_runs",
)

#: What a step does: call a method, or one of these. Exactly one a step.
_ACTIONS = frozenset(CASE_METHODS) | {"parallel", "mark", "check"}

#: The keys a step may carry besides its action: a call's, or by action.
_MODIFIERS: dict[str, tuple[str, ...]] = {
    "call": ("expect", "error", "save", "range"),
    "check": ("expect",),
    "parallel": (),
    "mark": (),
}

#: "CODE" or "CODE field", as cases/README.md writes an expected error.
_ERROR_FORMAT = re.compile(r"[A-Z][A-Z_]*( [^ ]+)?")

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
    """Every case of every file, in file-name order; a file the runner would misread raises."""
    cases: list[ContractCase] = []
    for path in sorted(CASES_DIRECTORY.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        _check_case_file(document, f"test/contract/cases/{path.name}")
        for case in document["cases"]:
            cases.append(ContractCase(path.stem, document["spec"], case["name"], case["steps"]))
    return cases


def _check_case_file(document: Any, file: str) -> None:
    """Refuses a file whose keys the runner would skip over (a typo such as
    "expcet" would otherwise pass as "did not raise") and a case that asserts
    nothing, naming the file, the case and the step."""
    if not (
        isinstance(document, dict)
        and isinstance(document.get("spec"), str)
        and isinstance(document.get("cases"), list)
    ):
        raise ValueError(f'{file}: needs "spec" (a string) and "cases" (a list)')
    for i, case in enumerate(document["cases"]):
        where = f"{file}: case {i + 1}"
        if isinstance(case, dict):
            where += f' "{case.get("name")}"'
        if not (
            isinstance(case, dict)
            and isinstance(case.get("name"), str)
            and isinstance(case.get("steps"), list)
            and case["steps"]
        ):
            raise ValueError(f'{where}: needs "name" (a string) and "steps" (a list of steps)')
        steps = enumerate(case["steps"])
        assertions = sum(_check_step(step, f"{where}, step {j + 1}") for j, step in steps)
        if assertions == 0:
            raise ValueError(f"{where}: asserts nothing (no expect, error or check)")


def _check_step(step: Any, where: str) -> int:
    """Checks one step (and the steps of a parallel); returns how many assertions they hold."""

    def fail(problem: str) -> ValueError:
        return ValueError(f"{where}: {problem} in {json.dumps(step, ensure_ascii=False)}")

    if not isinstance(step, dict):
        raise fail("a step must be an object")
    actions = [key for key in step if key in _ACTIONS]
    if len(actions) != 1:
        raise fail(f"needs one action (store method, parallel, mark or check), not {len(actions)}")
    action = actions[0]
    is_call = action in CASE_METHODS
    allowed = _MODIFIERS["call" if is_call else action]
    for key in step:
        if key != action and key not in allowed:
            raise fail(f'unknown key "{key}" (next to {action}: {", ".join(allowed) or "none"})')
    error = step.get("error")
    if "error" in step and not (isinstance(error, str) and _ERROR_FORMAT.fullmatch(error)):
        raise fail('"error" must be a string "CODE" or "CODE field"')
    if "error" in step and ("expect" in step or "save" in step):
        raise fail('"error" is for a call that fails: it has no result to expect or save')
    if "save" in step and not isinstance(step["save"], str):
        raise fail('"save" must be a string')
    if "range" in step and not (type(step["range"]) is int and step["range"] > 0):
        raise fail('"range" must be a positive integer')
    if action == "mark" and not isinstance(step["mark"], str):
        raise fail('"mark" must be a string')
    if action == "check" and not (isinstance(step["check"], str) and "expect" in step):
        raise fail('"check" must be a string, with an "expect"')
    if action == "parallel":
        if not isinstance(step["parallel"], list) or not step["parallel"]:
            raise fail('"parallel" must be a list of steps')
        inner_steps = enumerate(step["parallel"])
        return sum(_check_step(inner, f"{where}.{k + 1}") for k, inner in inner_steps)
    if is_call and not isinstance(step[action], dict):
        raise fail(f"the arguments of {action} must be an object")
    return 1 if "expect" in step or "error" in step else 0


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
    method = next(key for key in step if key in CASE_METHODS)
    call: Callable[..., Awaitable[Any]] | None = getattr(store, method, None)
    if call is None:
        raise AssertionError(f"{where}: GrpcRunStore has no method {method} yet")
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
