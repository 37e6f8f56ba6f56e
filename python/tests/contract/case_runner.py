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
from typing import Any, NoReturn

from runstore_client import GrpcRunStore, RunStoreError
from runstore_client.errors import IdempotencyConflictError, ThreadConflictError

from .case_tokens import ADMIN_TOKEN, check_case_tokens, token_of
from .case_values import CaseMemory, lookup, mismatches, resolve, substitute_index
from .case_watch_format import (
    WATCH_ACTIONS,
    WATCH_MODIFIERS,
    WatchScope,
    check_server_keys,
    check_watch_step,
    needs_servers,
    watch_action_of,
)

from .case_servers import CaseServers, SharedCaseServers, WatchServers
from .case_watch import WatchSteps

__all__ = [
    "CASES_DIRECTORY",
    "CASE_METHODS",
    "ContractCase",
    "CaseStores",
    "case_rules",
    "load_cases",
    "run_case",
]

#: python/tests/contract/case_runner.py is four levels below the repository root.
CASES_DIRECTORY = Path(__file__).resolve().parents[3] / "test" / "contract" / "cases"

#: The store methods a step may call, by their contract names: every method
#: of the contract. test/contract/case-calls.ts keeps the same list.
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
    "list_by_thread_page",
    "list_pending_page",
    "list_inflight_page",
    "list_inflight_with_expired_lease_page",
    "search_runs_page",
    "search_runs",
    "get_run_stats",
    "list_threads_page",
    "list_threads",
    "delete_thread",
)

#: The record keys of part 1 (docs/contract.md before coordination). Part 1's
#: case files compare records on these only, so the fields part 2 added do not
#: change what they assert; coordination-*.json compare whole records.
#: test/contract/case-calls.ts keeps the same list.
PART_1_RECORD_KEYS: tuple[str, ...] = (
    "run_id",
    "thread_id",
    "assistant_id",
    "user_id",
    "model_name",
    "status",
    "multitask_strategy",
    "metadata",
    "kwargs",
    "error",
    "created_at",
    "updated_at",
    "total_input_tokens",
    "total_output_tokens",
    "total_tokens",
    "llm_call_count",
    "lead_agent_tokens",
    "subagent_tokens",
    "middleware_tokens",
    "message_count",
    "last_ai_message",
    "first_human_message",
)

#: What a step does: call a method, or one of these. Exactly one a step.
_ACTIONS = frozenset(CASE_METHODS) | {"parallel", "mark", "check"} | frozenset(WATCH_ACTIONS)

#: The keys a step may carry besides its action: a call's, or by action.
_MODIFIERS: dict[str, tuple[str, ...]] = {
    "call": ("expect", "error", "message", "details", "save", "range", "tally", "as"),
    "check": ("expect",),
    "parallel": (),
    "mark": (),
    **WATCH_MODIFIERS,
}

#: The keys a file and a case may carry.
_FILE_KEYS = ("spec", "cases", "remoteOnly", "tokens", "backends", "settings", "slowReader")
_CASE_KEYS = ("name", "steps", "remoteOnly", "tokens", "backends", "settings", "slowReader")

#: "CODE" or "CODE field", as cases/README.md writes an expected error.
_ERROR_FORMAT = re.compile(r"[A-Z][A-Z_]*( [^ ]+)?")

#: The methods that return nothing.
_VOID = frozenset(
    {"put", "delete", "update_model_name", "update_run_progress", "delete_thread_operation"}
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Step = dict[str, Any]

#: The store a step calls: given None (no "as"), the case's store; given a
#: token name of the case, the store as seen through that token.
CaseStores = Callable[[str | None], GrpcRunStore]


@dataclass(frozen=True)
class ContractCase:
    """One rule of docs/contract.md as data: the file (section) it is in, its wording, its steps."""

    file: str
    spec: str
    name: str
    steps: list[Step]
    #: The record keys results are compared on: part 1's for part 1's files,
    #: None (every key) for coordination-*.json and scoped-*.json.
    record_keys: tuple[str, ...] | None = None
    #: Only meaningful over the wire (a server feature, such as scoped tokens).
    remote_only: bool = False
    #: The bearer tokens its steps call with ("as"), its file's included;
    #: None for a case without tokens.
    tokens: dict[str, dict[str, Any]] | None = None
    #: The backends it runs on ("backends", its file's included); None: every backend.
    backends: tuple[str, ...] | None = None
    #: Server settings its servers start with (WATCH_WINDOW, …); None: the runners' defaults.
    settings: dict[str, int] | None = None
    #: It needs servers of its own (watch steps, restarts, replicas, settings).
    servers: bool = False
    #: Its watches must leave unread messages to HTTP/2 flow control (a slow
    #: reader): grpcio reads ahead, so this runner leaves it out (watch_cases.py).
    slow_reader: bool = False


def load_cases() -> list[ContractCase]:
    """Every case of every file, in file-name order; a file the runner would misread raises."""
    cases: list[ContractCase] = []
    for path in sorted(CASES_DIRECTORY.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        _check_case_file(document, f"test/contract/cases/{path.name}")
        keys = PART_1_RECORD_KEYS if _is_part_1_file(path.name) else None
        for case in document["cases"]:
            spec, name, steps = document["spec"], case["name"], case["steps"]
            remote_only, tokens = case["remoteOnly"], case.get("tokens")
            backends = tuple(case["backends"]) if case.get("backends") else None
            settings, servers = case.get("settings"), case["servers"]
            slow_reader = case.get("slowReader", False)
            cases.append(
                ContractCase(
                    path.stem,
                    spec,
                    name,
                    steps,
                    keys,
                    remote_only,
                    tokens,
                    backends,
                    settings,
                    servers,
                    slow_reader,
                )
            )
    return cases


def _is_part_1_file(file: str) -> bool:
    """Part 1's files compare records on part 1's keys; part 2's (coordination
    between workers), part 3's (history) and the scoped-token files compare
    whole records."""
    return not file.startswith(("coordination-", "history-", "scoped-", "watch-"))


def _check_case_file(document: Any, file: str) -> None:
    """Refuses a file whose keys the runner would skip over (a typo such as
    "expcet" would otherwise pass as "did not raise") and a case that asserts
    nothing, naming the file, the case and the step. Gives each case the
    file's "remoteOnly" and "tokens" (a case's own tokens add to the file's)."""
    if not (
        isinstance(document, dict)
        and isinstance(document.get("spec"), str)
        and isinstance(document.get("cases"), list)
    ):
        raise ValueError(f'{file}: needs "spec" (a string) and "cases" (a list)')
    _check_keys(document, _FILE_KEYS, file)
    if not isinstance(document.get("remoteOnly", False), bool):
        raise ValueError(f'{file}: "remoteOnly" must be a boolean')
    if "tokens" in document:
        check_case_tokens(document["tokens"], file)
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
        _check_keys(case, _CASE_KEYS, where)
        _inherit_scope(case, document, where)
        tokens = case.get("tokens")
        watches = WatchScope()
        steps = enumerate(case["steps"])
        assertions = sum(
            _check_step(step, tokens, f"{where}, step {j + 1}", watches) for j, step in steps
        )
        if assertions == 0:
            raise ValueError(f"{where}: asserts nothing (no expect, error or check)")
        check_server_keys(case, watches, where)
        case["servers"] = needs_servers(case["steps"], case.get("settings"))


def _check_keys(value: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ValueError(f'{where}: unknown key "{unknown[0]}" (allowed: {", ".join(allowed)})')


def _inherit_scope(case: dict[str, Any], document: dict[str, Any], where: str) -> None:
    """Sets a case's "remoteOnly" and "tokens" from its own and its file's
    (checked already), and checks them: tokens need a server, so a case with
    tokens is remote only."""
    remote_only = case.get("remoteOnly", document.get("remoteOnly", False))
    if not isinstance(remote_only, bool):
        raise ValueError(f'{where}: "remoteOnly" must be a boolean')
    case["remoteOnly"] = remote_only
    for key in ("backends", "settings", "slowReader"):
        if key not in case and key in document:
            case[key] = document[key]
    if "tokens" in case:
        check_case_tokens(case["tokens"], where)
    if "tokens" not in case and "tokens" not in document:
        return
    case["tokens"] = {**document.get("tokens", {}), **case.get("tokens", {})}
    if not remote_only:
        problem = 'a case with "tokens" needs "remoteOnly": true (tokens need a server)'
        raise ValueError(f"{where}: {problem}")


def _check_step(
    step: Any, tokens: dict[str, Any] | None, where: str, watches: WatchScope | None
) -> int:
    """Checks one step (and the steps of a parallel); returns how many
    assertions they hold. ``watches`` is None inside a parallel, where watch
    steps are refused."""

    def fail(problem: str) -> ValueError:
        return ValueError(f"{where}: {problem} in {json.dumps(step, ensure_ascii=False)}")

    if not isinstance(step, dict):
        raise fail("a step must be an object")
    actions = [key for key in step if key in _ACTIONS]
    if len(actions) != 1:
        problem = "needs one action (store method, parallel, mark, check or a watch step)"
        raise fail(f"{problem}, not {len(actions)}")
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
    if "details" in step and "error" not in step:
        raise fail('"details" goes with an "error"')
    if "message" in step and not (isinstance(step["message"], str) and "error" in step):
        raise fail('"message" (a string) goes with an "error"')
    if "as" in step and not (isinstance(step["as"], str) and tokens and step["as"] in tokens):
        raise fail(f'"as" must name a token of the case ({", ".join(tokens or {}) or "none"})')
    if "tally" in step and (
        not isinstance(step["tally"], str) or "expect" in step or "error" in step
    ):
        raise fail('"tally" must be a string, on a call with no "expect" or "error" (check it later)')
    if "save" in step and not isinstance(step["save"], str):
        raise fail('"save" must be a string')
    if "range" in step and not (type(step["range"]) is int and step["range"] > 0):
        raise fail('"range" must be a positive integer')
    if action == "mark" and not isinstance(step["mark"], str):
        raise fail('"mark" must be a string')
    if action == "check" and not (isinstance(step["check"], str) and "expect" in step):
        raise fail('"check" must be a string, with an "expect"')
    watch_action = watch_action_of(step)
    if watch_action is not None:
        if watches is None:
            raise fail("watch steps run one at a time, not in a parallel")

        def fail_watch(problem: str) -> NoReturn:
            raise fail(problem)

        return check_watch_step(step, watch_action, watches, fail_watch)
    if action == "parallel":
        if not isinstance(step["parallel"], list) or not step["parallel"]:
            raise fail('"parallel" must be a list of steps')
        inner_steps = enumerate(step["parallel"])
        return sum(
            _check_step(inner, tokens, f"{where}.{k + 1}", None) for k, inner in inner_steps
        )
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


@dataclass
class _Context:
    """What the steps of one case share: the marks and saved results, and the
    record keys results are compared on (None: every key)."""

    memory: CaseMemory
    record_keys: tuple[str, ...] | None
    stores: CaseStores
    #: The watch steps' state; None for a case without servers of its own.
    watch: WatchSteps | None = None


def _record(record: Any, keys: tuple[str, ...] | None) -> Any:
    if keys is None or not isinstance(record, dict):
        return record
    return {key: value for key, value in record.items() if key in keys}


def _records(records: Any, keys: tuple[str, ...] | None) -> Any:
    return [_record(record, keys) for record in records]


def _page(result: Any, keys: tuple[str, ...] | None) -> Any:
    return {**result, "items": _records(result["items"], keys)}


#: How each method's result holds records, for part 1's key filter.
_RECORD_SHAPES: dict[str, Callable[[Any, tuple[str, ...] | None], Any]] = {
    "get": _record,
    "claim_next_run": _record,
    "list_by_thread": _records,
    "list_pending": _records,
    "list_inflight": _records,
    "list_inflight_with_expired_lease": _records,
    "list_edit_regenerate_runs": _records,
    "create_thread_operation": lambda result, keys: {
        "run": _record(result["run"], keys),
        "taken_over": _records(result["taken_over"], keys),
    },
    "get_many_by_thread": lambda result, keys: {
        run_id: _record(record, keys) for run_id, record in result.items()
    },
    "list_by_thread_page": _page,
    "list_pending_page": _page,
    "list_inflight_page": _page,
    "list_inflight_with_expired_lease_page": _page,
    "search_runs_page": _page,
    "search_runs": _records,
}


#: The methods that answer an async iterator over pages: a step reads every item.
_ITERATORS = frozenset({"search_runs", "list_threads"})


def _stats(result: Any) -> Any:
    """Run statistics in wire form: by_status as the response's list of
    {status, runs}, in the answer's order."""
    by_status = [{"status": status, "runs": runs} for status, runs in result["by_status"].items()]
    return {**result, "by_status": by_status}


def _to_wire(method: str, result: Any, keys: tuple[str, ...] | None) -> Any:
    if method == "get_run_stats":
        return _stats(result)
    shape = _RECORD_SHAPES.get(method)
    return result if shape is None else shape(result, keys)


async def _invoke(method: str, call: Callable[..., Any], args: dict[str, Any]) -> Any:
    """Calls a store method with a step's arguments; an iterator's every item, in order."""
    if method in _ITERATORS:
        return [item async for item in call(**args)]
    return await call(**args)


def _conflict_details(error: RunStoreError, context: _Context, at: str) -> Any:
    """The typed detail of a conflict: a thread conflict as {thread_id,
    conflicting_run_id}, an idempotency conflict as the record holding the
    key; None when the error carries none."""
    if isinstance(error, ThreadConflictError):
        return {"thread_id": error.thread_id, "conflicting_run_id": error.conflicting_run_id}
    if isinstance(error, IdempotencyConflictError):
        return _record(error.existing, context.record_keys)
    if error.code.name in ("ABORTED", "ALREADY_EXISTS"):
        return None
    problem = f"only ABORTED and ALREADY_EXISTS carry details, got {error.code.name}"
    raise AssertionError(f"{at}: {problem}")


def _expect_error(error: RunStoreError, step: Step, context: _Context, at: str) -> None:
    code, _, field = step["error"].partition(" ")
    if error.code.name != code:
        message = f"{at}: expected {code}, got {error.code.name}: {error.details}"
        raise AssertionError(message) from error
    if field and not error.details.startswith(f"{field} "):
        raise AssertionError(f'{at}: the message should name {field}: "{error.details}"') from error
    if "message" in step and error.details != step["message"]:
        raise AssertionError(f'{at}: message "{error.details}", expected "{step["message"]}"')
    if "details" in step:
        details = _conflict_details(error, context, at)
        _expect_match(details, step["details"], context.memory, f"{at} details")


async def _run_call(step: Step, context: _Context, where: str) -> None:
    method = next(key for key in step if key in CASE_METHODS)
    store = context.stores(step.get("as"))
    call: Callable[..., Any] | None = getattr(store, method, None)
    if call is None:
        raise AssertionError(f"{where}: GrpcRunStore has no method {method}")
    at = f"{where} ({method})"
    memory = context.memory
    try:
        args = resolve(step[method], memory)
        result = _to_wire(method, await _invoke(method, call, args), context.record_keys)
    except RunStoreError as error:
        if "tally" in step:
            memory.saved.setdefault(step["tally"], []).append({"error": error.code.name})
        elif "error" in step:
            _expect_error(error, step, context, at)
        else:
            raise
        return
    if "tally" in step:
        memory.saved.setdefault(step["tally"], []).append(result)
        return
    if "error" in step:
        raise AssertionError(f"{at}: expected {step['error']}, but the call succeeded")
    if method in _VOID and result is not None:
        raise AssertionError(f"{at}: a method that returns nothing returned {result!r}")
    if "save" in step:
        memory.saved[step["save"]] = result
    if "expect" in step:
        _expect_match(result, step["expect"], memory, at)


async def _run_step(step: Step, context: _Context, where: str) -> None:
    memory = context.memory
    watch_action = watch_action_of(step)
    if watch_action is not None:
        if context.watch is None:
            raise AssertionError(f"{where}: a watch step needs CaseServers")
        await context.watch.run(step, watch_action, where)
    elif "mark" in step:
        memory.marks[step["mark"]] = await _take_mark()
    elif "parallel" in step:
        steps = enumerate(step["parallel"])
        await asyncio.gather(*(_run_step(s, context, f"{where}.{i + 1}") for i, s in steps))
    elif "range" in step:
        single = {key: value for key, value in step.items() if key != "range"}
        width = len(str(step["range"] - 1))
        copies = [substitute_index(single, str(i).zfill(width)) for i in range(step["range"])]
        await _run_step({"parallel": copies}, context, where)
    elif "check" in step:
        where = f"{where} ({step['check']})"
        _expect_match(lookup(memory, step["check"]), step["expect"], memory, where)
    else:
        await _run_call(step, context, where)


async def run_case(store: GrpcRunStore | CaseStores | WatchServers, case: ContractCase) -> None:
    """Runs a case's steps in order; the first mismatch raises AssertionError.
    ``store`` is the store every step calls, or for a case with tokens the
    CaseStores giving each step's store, or for a case that needs servers of
    its own (watch steps) its CaseServers, through which its calls go to the
    replica of the moment, or the class's shared server (SharedCaseServers)."""
    if isinstance(store, (CaseServers, SharedCaseServers)):
        await _run_with_servers(store, case)
        return
    stores = (lambda _name: store) if isinstance(store, GrpcRunStore) else store
    context = _Context(CaseMemory(), case.record_keys, stores)
    for i, step in enumerate(case.steps):
        await _run_step(step, context, f"step {i + 1}")


async def _run_with_servers(servers: WatchServers, case: ContractCase) -> None:
    token_of = _case_token_of(case, servers.requires_tokens)
    memory = CaseMemory()
    context = _Context(memory, case.record_keys, lambda _name: servers.store("a", None))

    def expect_failure(error: RunStoreError | None, step: Step, at: str) -> None:
        if error is None:
            raise AssertionError(f"{at}: expected {step['error']}, but the call succeeded")
        _expect_error(error, step, context, at)

    watch = WatchSteps(servers, memory, case.record_keys, token_of, expect_failure)
    context.watch = watch
    context.stores = lambda name: servers.store(watch.replica, token_of(name))
    try:
        for i, step in enumerate(case.steps):
            await _run_step(step, context, f"step {i + 1}")
    finally:
        await watch.close_all()


def _case_token_of(
    case: ContractCase, requires_tokens: bool
) -> Callable[[str | None], str | None]:
    """The bearer token of a step of a watch case: its "as" token's, else
    the unscoped admin token when the servers require tokens (a case with
    tokens, or a shared server started with some case's), else none."""
    tokens = case.tokens or {}

    def token(name: str | None) -> str | None:
        if name is not None:
            return token_of(tokens[name])
        return ADMIN_TOKEN if requires_tokens else None

    return token


def _test_method(case: ContractCase) -> Callable[[Any], Awaitable[None]]:
    async def test(self: Any) -> None:
        await run_case(self.case_stores(case), case)

    test.__doc__ = f"{case.spec}: {case.name}"
    return test


def add_test_method(methods: dict[str, Any], case: ContractCase, test: Any) -> None:
    """Adds ``test`` as ``test_<file>__<case name>``; two cases of one name are refused."""
    slug = re.sub(r"[^0-9a-z]+", "_", case.name.lower()).strip("_")
    name = f"test_{case.file.replace('-', '_')}__{slug}"
    if name in methods:
        raise ValueError(f"two cases are both named {name}")
    methods[name] = test


def case_rules(*, with_tokens: bool = False) -> type:
    """A mixin with one test method per case, ``test_<file>__<case name>``,
    for a ServerTestCase subclass: the cases without tokens, each calling
    ``self.store``; or (``with_tokens``) those with tokens, for a class whose
    server requires them and that gives each case its stores
    (scoped_cases.ScopedServer's ``case_stores``)."""
    methods: dict[str, Any] = {}
    for case in load_cases():
        # Cases with servers of their own: watch_cases.watch_case_rules.
        if case.servers or (case.tokens is not None) != with_tokens:
            continue
        add_test_method(methods, case, _test_method(case))
    if with_tokens:
        return type("ScopedCaseRules", (), methods)
    methods["case_stores"] = lambda self, _case: self.store
    return type("CaseRules", (), methods)
