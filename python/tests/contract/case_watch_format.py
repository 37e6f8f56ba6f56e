"""The watch steps of the cases (test/contract/cases/README.md, "Watch
steps"): what a step that opens, reads, resumes or closes a WatchRuns
stream, or restarts the case's server or switches replica, may say, and the
case keys that go with them ("backends", "settings"). Checked on load, so a
typo fails the load naming the file, the case and the step.
test/contract/case-watch-format.ts is the same in TypeScript; a change here
is a change there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

__all__ = [
    "BACKENDS",
    "CASE_SETTINGS",
    "WATCH_ACTIONS",
    "WATCH_MODIFIERS",
    "WatchScope",
    "check_server_keys",
    "check_watch_step",
    "expected_count",
    "needs_servers",
    "watch_action_of",
]

#: The actions of the watch steps, next to the store methods, parallel, mark and check.
WATCH_ACTIONS: tuple[str, ...] = (
    "watch",
    "expectChanges",
    "closeWatch",
    "resumeWatch",
    "restartServer",
    "stopServer",
    "startServer",
    "replica",
)

#: The keys each watch action may carry besides itself.
WATCH_MODIFIERS: dict[str, tuple[str, ...]] = {
    "watch": ("filter", "as", "error", "message", "save"),
    "expectChanges": ("changes", "error", "message"),
    "closeWatch": (),
    "resumeWatch": ("as", "error", "message"),
    "restartServer": (),
    "stopServer": (),
    "startServer": (),
    "replica": (),
}

#: The backends a case may be limited to ("backends").
BACKENDS: tuple[str, ...] = ("memory", "mysql")

#: The server settings a case may give its servers ("settings"): positive
#: integers, environment variable names as docs/operations.md lists them.
CASE_SETTINGS: tuple[str, ...] = (
    "WATCH_WINDOW",
    "WATCH_HEARTBEAT_MS",
    "WATCH_POLL_MS",
    "WATCH_LOG_MAX",
    "MAX_RUN_WATCHERS",
)

#: The keys of a watch step's "filter": WatchRunsRequest's, wire names.
_FILTER_KEYS = ("user_id", "thread_id", "statuses", "active_only", "operation_kinds", "cursor")

#: The keys of an expected change; kind and run are required.
_CHANGE_KEYS = ("kind", "run", "left_filter")

_CHANGE_KINDS = ("created", "updated", "deleted")

#: The replica names a case may switch to: "a" (every case starts on it) and "b".
_REPLICAS = ("a", "b")

Fail = Callable[[str], NoReturn]


def watch_action_of(step: dict[str, Any]) -> str | None:
    """The step's watch action, or None for another step."""
    return next((action for action in WATCH_ACTIONS if action in step), None)


def expected_count(changes: Any) -> int | None:
    """How many changes an "expectChanges" step reads: the length of its
    list, or the ``$length`` (or the ``$anyOrder`` list's length) of its matcher."""
    if isinstance(changes, list):
        return len(changes)
    if not isinstance(changes, dict):
        return None
    if type(changes.get("$length")) is int:
        return int(changes["$length"])
    any_order = changes.get("$anyOrder")
    return len(any_order) if isinstance(any_order, list) else None


def _check_filter(value: Any, fail: Fail) -> None:
    if not isinstance(value, dict):
        fail('"filter" must be an object of WatchRunsRequest fields')
    unknown = [key for key in value if key not in _FILTER_KEYS]
    if unknown:
        fail(f'unknown filter key "{unknown[0]}" (allowed: {", ".join(_FILTER_KEYS)})')


def _check_change(change: Any, fail: Fail, index: int) -> None:
    at = f"change {index + 1}"
    if not (isinstance(change, dict) and "kind" in change and "run" in change):
        fail(f'{at} needs "kind" and "run"')
    unknown = [key for key in change if key not in _CHANGE_KEYS]
    if unknown:
        fail(f'{at}: unknown key "{unknown[0]}" (allowed: {", ".join(_CHANGE_KEYS)})')
    if change["kind"] not in _CHANGE_KINDS:
        fail(f'{at}: "kind" must be one of {", ".join(_CHANGE_KINDS)}')
    if "left_filter" in change and not isinstance(change["left_filter"], bool):
        fail(f'{at}: "left_filter" must be a boolean')


def _check_expect_changes(step: dict[str, Any], fail: Fail) -> None:
    if "error" in step:
        if "changes" in step:
            fail('"changes" and "error" do not go together: the error ends the read')
        return
    if "changes" not in step:
        fail('"expectChanges" needs "changes" (or an "error")')
    changes = step["changes"]
    if isinstance(changes, list):
        for i, change in enumerate(changes):
            _check_change(change, fail, i)
    elif expected_count(changes) is None:
        fail('"changes" must be a list of changes, or a matcher with "$length" or "$anyOrder"')


@dataclass
class WatchScope:
    """What one case's watch steps have said so far: the watches opened (a
    later step may only name one of them) and whether a replica was named."""

    watches: set[str] = field(default_factory=set)
    uses_replica: bool = False
    uses_watch: bool = False


def check_watch_step(step: dict[str, Any], action: str, scope: WatchScope, fail: Fail) -> int:
    """Checks a watch step's own rules (its modifiers are checked by the
    caller); returns how many assertions it holds."""
    value = step[action]
    if action == "watch":
        if not isinstance(value, str) or not value:
            fail('"watch" must name the watch (a string)')
        if "filter" in step:
            _check_filter(step["filter"], fail)
        if "save" in step and not isinstance(step["save"], str):
            fail('"save" must be a string')
        scope.watches.add(value)
        scope.uses_watch = True
        return 1
    if action in ("expectChanges", "closeWatch", "resumeWatch"):
        if not isinstance(value, str) or value not in scope.watches:
            fail(f'"{action}" must name a watch opened by an earlier step')
        if action == "expectChanges":
            _check_expect_changes(step, fail)
        return 0 if action == "closeWatch" else 1
    if action == "replica":
        if value not in _REPLICAS:
            fail(f'"replica" must be one of {", ".join(_REPLICAS)}')
        scope.uses_replica = True
        return 0
    if value is not True:
        fail(f'"{action}" must be true')
    return 0


def check_server_keys(case: dict[str, Any], scope: WatchScope, where: str) -> None:
    """Checks a case's "backends" and "settings" (its own, or its file's) and
    that its watch steps fit them: watch steps need a server (remoteOnly),
    and a second replica needs a store two servers share (MySQL only)."""
    backends, settings = case.get("backends"), case.get("settings")
    if not isinstance(case.get("slowReader", False), bool):
        raise ValueError(f'{where}: "slowReader" must be a boolean')
    if backends is not None and not (
        isinstance(backends, list) and backends and all(b in BACKENDS for b in backends)
    ):
        raise ValueError(f'{where}: "backends" must be a non-empty list of {", ".join(BACKENDS)}')
    if settings is not None:
        if not isinstance(settings, dict):
            raise ValueError(f'{where}: "settings" must be an object')
        for name, setting in settings.items():
            if name not in CASE_SETTINGS:
                allowed = ", ".join(CASE_SETTINGS)
                raise ValueError(f'{where}: unknown setting "{name}" (allowed: {allowed})')
            if type(setting) is not int or setting <= 0:
                raise ValueError(f'{where}: setting "{name}" must be a positive integer')
    if (scope.uses_watch or settings is not None) and case.get("remoteOnly") is not True:
        problem = (
            'a case with watch steps or "settings" needs "remoteOnly": true (a server feature)'
        )
        raise ValueError(f"{where}: {problem}")
    if scope.uses_replica and backends != ["mysql"]:
        problem = (
            'a case with "replica" needs "backends": ["mysql"] (two servers share one database)'
        )
        raise ValueError(f"{where}: {problem}")


def needs_servers(steps: list[dict[str, Any]], settings: Any) -> bool:
    """True when the case needs servers of its own: it watches, restarts,
    switches replica or sets settings."""
    return settings is not None or any(watch_action_of(step) is not None for step in steps)
