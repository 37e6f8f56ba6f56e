"""The value language of test/contract/cases/*.json (its README.md):
generators that build values too long or too odd to write literally, and
matchers for results that cannot be literal. test/contract/case-values.ts is
the same language in TypeScript; a change here is a change there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CaseMemory", "lookup", "mismatches", "resolve", "substitute_index"]

#: Fixed-width UTC with microseconds, as docs/contract.md "Timestamps" prescribes.
_TIMESTAMP_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


@dataclass
class CaseMemory:
    """What the matchers read: the marks and saved results of earlier steps."""

    #: Mark name → the mark's millisecond, fixed width without the zone ("…T00:00:00.123").
    marks: dict[str, str] = field(default_factory=dict)
    #: Save name → the result of the step that saved it.
    saved: dict[str, Any] = field(default_factory=dict)


def _is_special(value: Any) -> bool:
    """A generator or matcher: a dict whose every key starts with "$" (data never is)."""
    return isinstance(value, dict) and bool(value) and all(key.startswith("$") for key in value)


def _nest(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(1, levels):
        value = {"level": value}
    return value


_GENERATORS: dict[str, Callable[[Any], Any]] = {
    "$repeat": lambda argument: argument[0] * argument[1],
    "$concat": lambda argument: "".join(resolve(part) for part in argument),
    "$nest": _nest,
    "$number": float,  # "NaN", "Infinity", "-Infinity"
    "$list": lambda argument: [argument[0].replace("{n}", str(n)) for n in range(argument[1])],
    "$entries": lambda argument: {resolve(key): resolve(value) for key, value in argument},
}


def resolve(value: Any, memory: CaseMemory | None = None) -> Any:
    """The value a case means: generators replaced by what they generate, and
    given ``memory`` (a call's arguments), {"$saved": "name.path"} by that
    saved value (the previous page's next_page_token)."""
    if isinstance(value, list):
        return [resolve(item, memory) for item in value]
    if not isinstance(value, dict):
        return value
    if _is_special(value):
        key, argument = next(iter(value.items()))
        if key == "$saved" and memory is not None:
            return lookup(memory, argument)
        if key not in _GENERATORS or len(value) != 1:
            raise ValueError(f"{key} is a matcher, not a value")
        return _GENERATORS[key](argument)
    return {key: resolve(item, memory) for key, item in value.items()}


def substitute_index(value: Any, index: str) -> Any:
    """Every string in ``value`` with "{i}" replaced by ``index`` (a "range" step's copies)."""
    if isinstance(value, str):
        return value.replace("{i}", index)
    if isinstance(value, list):
        return [substitute_index(item, index) for item in value]
    if isinstance(value, dict):
        return {key: substitute_index(item, index) for key, item in value.items()}
    return value


def lookup(memory: CaseMemory, path: str) -> Any:
    """A saved result or a part of it: "name", "name.field", "name.0.run_id"."""
    name, *parts = path.split(".")
    if name not in memory.saved:
        raise KeyError(f'nothing was saved as "{name}"')
    value = memory.saved[name]
    for part in parts:
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _millisecond(value: Any) -> str | None:
    """The millisecond of a fixed-width timestamp: the clock granularity marks compare at."""
    if isinstance(value, str) and _TIMESTAMP_FORMAT.match(value):
        return value[:23]
    return None


def _mark(memory: CaseMemory, bound: Any) -> str:
    """A bound for $atOrAfter / $before: mark "m", or ["m", ms], the mark plus
    that many milliseconds (a lease the store computed from a duration)."""
    name, offset = (bound[0], bound[1]) if isinstance(bound, list) else (bound, 0)
    if name not in memory.marks:
        raise KeyError(f'no mark "{name}" before this step')
    at = memory.marks[name]
    if offset == 0:
        return at
    moved = datetime.fromisoformat(at) + timedelta(milliseconds=offset)
    return moved.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return f"{text[:200]}…" if len(text) > 200 else text


def _timestamp(actual: Any, _: Any, __: CaseMemory, path: str) -> list[str]:
    if _millisecond(actual) is None:
        return [f"{path}: expected a fixed-width UTC timestamp, got {_show(actual)}"]
    return []


def _at_or_after(actual: Any, name: Any, memory: CaseMemory, path: str) -> list[str]:
    at, bound = _millisecond(actual), _mark(memory, name)
    if at is not None and at >= bound:
        return []
    return [f"{path}: expected at or after mark {_show(name)} ({bound}), got {_show(actual)}"]


def _before(actual: Any, name: Any, memory: CaseMemory, path: str) -> list[str]:
    at, bound = _millisecond(actual), _mark(memory, name)
    if at is not None and at < bound:
        return []
    return [f"{path}: expected before mark {_show(name)} ({bound}), got {_show(actual)}"]


def _saved(actual: Any, name: str, memory: CaseMemory, path: str) -> list[str]:
    return mismatches(actual, lookup(memory, name), memory, path)


def _each_field(
    actual: dict[str, Any], fields: dict[str, Any], memory: CaseMemory, path: str
) -> list[str]:
    """How ``actual`` differs from ``fields`` on the keys of ``fields``."""
    problems: list[str] = []
    for key, expected in fields.items():
        if key in actual:
            problems += mismatches(actual[key], expected, memory, f"{path}.{key}")
        else:
            problems.append(f"{path}.{key}: missing")
    return problems


def _fields(actual: Any, fields: dict[str, Any], memory: CaseMemory, path: str) -> list[str]:
    if not isinstance(actual, dict):
        return [f"{path}: expected an object, got {_show(actual)}"]
    return _each_field(actual, fields, memory, path)


def _run_ids(actual: Any, ids: list[str], memory: CaseMemory, path: str) -> list[str]:
    if not isinstance(actual, list):
        return [f"{path}: expected a list, got {_show(actual)}"]
    run_ids = [row["run_id"] if isinstance(row, dict) else row for row in actual]
    return mismatches(run_ids, ids, memory, f"{path}[*].run_id")


def _non_empty(actual: Any, _: Any, __: CaseMemory, path: str) -> list[str]:
    if isinstance(actual, str) and actual:
        return []
    return [f"{path}: expected a non-empty string, got {_show(actual)}"]


def _length(actual: Any, length: int, _: CaseMemory, path: str) -> list[str]:
    if isinstance(actual, list) and len(actual) == length:
        return []
    return [f"{path}: expected {length} items, got {_show(actual)}"]


def _pair_up(actual: list[Any], expected: list[Any], memory: CaseMemory, path: str) -> bool:
    """Whether each expected item matches a different actual item (both lists
    of one length): a search over the assignments, small lists only."""
    fits = [[not mismatches(value, item, memory, path) for value in actual] for item in expected]
    taken = [False] * len(actual)

    def assign(i: int) -> bool:
        if i == len(expected):
            return True
        for j in range(len(actual)):
            if not taken[j] and fits[i][j]:
                taken[j] = True
                if assign(i + 1):
                    return True
                taken[j] = False
        return False

    return assign(0)


def _any_order(actual: Any, items: list[Any], memory: CaseMemory, path: str) -> list[str]:
    if not isinstance(actual, list) or len(actual) != len(items):
        return [f"{path}: expected {len(items)} items in any order, got {_show(actual)}"]
    if _pair_up(actual, items, memory, path):
        return []
    return [f"{path}: expected {_show(items)} in any order, got {_show(actual)}"]


def _one_of(actual: Any, alternatives: list[Any], memory: CaseMemory, path: str) -> list[str]:
    if any(not mismatches(actual, option, memory) for option in alternatives):
        return []
    return [f"{path}: expected one of {_show(alternatives)}, got {_show(actual)}"]


_MATCHERS: dict[str, Callable[[Any, Any, CaseMemory, str], list[str]]] = {
    "$timestamp": _timestamp,
    "$atOrAfter": _at_or_after,
    "$before": _before,
    "$saved": _saved,
    "$fields": _fields,
    "$runIds": _run_ids,
    "$nonEmpty": _non_empty,
    "$length": _length,
    "$anyOrder": _any_order,
    "$oneOf": _one_of,
}


def _without(value: Any, keys: list[str]) -> Any:
    return {k: v for k, v in value.items() if k not in keys} if isinstance(value, dict) else value


def _special_mismatches(
    actual: Any, expected: dict[str, Any], memory: CaseMemory, path: str
) -> list[str]:
    if any(key in _GENERATORS for key in expected):
        return mismatches(actual, resolve(expected), memory, path)
    if "$ignoring" in expected:
        keys = expected["$ignoring"]
        saved = _without(lookup(memory, expected["$saved"]), keys)
        return mismatches(_without(actual, keys), saved, memory, path)
    problems: list[str] = []
    for key, argument in expected.items():
        if key not in _MATCHERS:
            raise ValueError(f"{path}: unknown matcher {key}")
        problems += _MATCHERS[key](actual, argument, memory, path)
    return problems


def mismatches(actual: Any, expected: Any, memory: CaseMemory, path: str = "$") -> list[str]:
    """How ``actual`` differs from ``expected`` (a case's value, matchers
    allowed); empty when it matches. Dicts match with the same keys; scalars
    by type as well as value, so 1 is not 1.0 and True is not 1."""
    if _is_special(expected):
        return _special_mismatches(actual, expected, memory, path)
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {_show(expected)}, got {_show(actual)}"]
        problems: list[str] = []
        for i, item in enumerate(expected):
            problems += mismatches(actual[i], item, memory, f"{path}[{i}]")
        return problems
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected {_show(expected)}, got {_show(actual)}"]
        extra = [key for key in actual if key not in expected]
        problems = [f"{path}.{key}: not expected, got {_show(actual[key])}" for key in extra]
        return problems + _each_field(actual, expected, memory, path)
    if type(actual) is type(expected) and actual == expected:
        return []
    want, got = f"{_show(expected)} ({type(expected).__name__})", f"{_show(actual)} ({type(actual).__name__})"
    return [f"{path}: expected {want}, got {got}"]
