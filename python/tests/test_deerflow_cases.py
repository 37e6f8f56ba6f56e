"""The shared contract cases (test/contract/cases/*.json) through
DeerFlowRunStore, on the memory and the MySQL backend.

The case runner calls stores the way GrpcRunStore is called (the contract's
method and argument names) and compares results in wire form. DeerFlowCalls
is the adapter: it calls DeerFlowRunStore with DeerFlow's names and turns
its answers back into wire form. What differs is the adapter's, not the
store's: DeerFlow's rows have no ``queued`` key (DeerFlow refuses enqueue),
so the cases' expectations are read without it, and DeerFlow's updates are
guarded by default while the cases' default is part 1's unguarded write.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import dataclasses  # noqa: E402
import re  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

from runstore_client import IdempotencyConflictError  # noqa: E402
from runstore_client.deerflow import DeerFlowRunStore  # noqa: E402
from runstore_client.deerflow.rows import TIMESTAMP_KEYS  # noqa: E402
from tests.contract.case_runner import ContractCase, load_cases, run_case  # noqa: E402
from tests.support.backends import ServerTestCase  # noqa: E402

Row = dict[str, Any]


def wire_timestamp(value: str | None) -> str | None:
    """DeerFlow's ``…+00:00`` (fraction optional) as the fixed-width ``…Z`` form."""
    if value is None:
        return None
    return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wire_row(row: Row | None) -> Row | None:
    if row is None:
        return None
    return {
        key: wire_timestamp(value) if key in TIMESTAMP_KEYS else value for key, value in row.items()
    }


def _wire_rows(rows: list[Row]) -> list[Row | None]:
    return [wire_row(row) for row in rows]


class DeerFlowCalls:
    """The cases' calls, made on a DeerFlowRunStore; answers in wire form.

    ``put_ids`` (every run id written) lets ServerTestCase remove them from
    the in-memory backend after each case.
    """

    def __init__(self, store: DeerFlowRunStore) -> None:
        self.store = store
        self.put_ids: set[object] = set()

    async def close(self) -> None:
        await self.store.close()

    async def _call(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except IdempotencyConflictError as error:
            error.existing = wire_row(error.existing) or {}
            raise

    async def put(self, run_id: Any, **fields: Any) -> None:
        self.put_ids.add(run_id)
        await self._call(self.store.put(run_id, **fields))

    async def get(self, run_id: Any, **options: Any) -> Row | None:
        return wire_row(await self.store.get(run_id, **options))

    async def list_by_thread(self, thread_id: Any, **options: Any) -> list[Row | None]:
        return _wire_rows(await self.store.list_by_thread(thread_id, **options))

    async def update_status(
        self, run_id: Any, status: Any, *, guarded: Any = False, **options: Any
    ) -> bool | None:
        return await self.store.update_status(run_id, status, guarded=guarded, **options)

    async def delete(self, run_id: Any, **options: Any) -> None:
        await self.store.delete(run_id, **options)

    async def update_model_name(self, run_id: Any, model_name: Any) -> None:
        await self.store.update_model_name(run_id, model_name)

    async def update_run_completion(
        self, run_id: Any, *, guarded: Any = False, **fields: Any
    ) -> Any:
        return await self.store.update_run_completion(run_id, guarded=guarded, **fields)

    async def update_run_progress(self, run_id: Any, **fields: Any) -> None:
        await self.store.update_run_progress(run_id, **fields)

    async def list_pending(self, **options: Any) -> list[Row | None]:
        return _wire_rows(await self.store.list_pending(**options))

    async def list_inflight(self, **options: Any) -> list[Row | None]:
        return _wire_rows(await self.store.list_inflight(**options))

    async def aggregate_tokens_by_thread(self, thread_id: Any, **options: Any) -> Any:
        return await self.store.aggregate_tokens_by_thread(thread_id, **options)

    async def create_thread_operation(
        self, run_id: Any, *, lease: Any = None, user_id: Any = None, **fields: Any
    ) -> dict[str, Any]:
        # DeerFlow's user_id=None is the current user: none here, as the
        # contract's omitted / null user_id.
        self.put_ids.add(run_id)
        row, taken = await self._call(
            self.store.create_thread_operation_atomic(
                run_id, lease_expires_at=lease, user_id=user_id, **fields
            )
        )
        return {"run": wire_row(row), "taken_over": _wire_rows(taken)}

    async def start_run(self, run_id: Any) -> bool:
        return await self.store.start_run(run_id)

    async def renew_lease(self, run_id: Any, *, lease: Any = None, **fields: Any) -> dict[str, Any]:
        renewal = await self.store.renew_lease(run_id, lease_expires_at=lease, **fields)
        return {"renewed": renewal.renewed, "cancel_action": renewal.cancel_action}

    async def update_lease(self, run_id: Any, *, lease: Any = None, **fields: Any) -> bool:
        return await self.store.update_lease(run_id, lease_expires_at=lease, **fields)

    async def request_cancel(self, run_id: Any, **fields: Any) -> str | None:
        return await self.store.request_cancel(run_id, **fields)

    async def finalize_if_not_cancelled(self, run_id: Any, **fields: Any) -> dict[str, Any]:
        done = await self.store.finalize_if_not_cancelled(run_id, **fields)
        return {"finalized": done.finalized, "cancel_action": done.cancel_action}

    async def claim_for_takeover(
        self, run_id: Any, *, grace_seconds: Any = 10, **fields: Any
    ) -> bool:
        return await self.store.claim_for_takeover(run_id, grace_seconds=grace_seconds, **fields)

    async def list_inflight_with_expired_lease(self, **options: Any) -> list[Row | None]:
        return _wire_rows(await self.store.list_inflight_with_expired_lease(**options))

    async def claim_next_run(self, *, lease: Any = None, **fields: Any) -> Row | None:
        return wire_row(await self.store.claim_next_run(lease_expires_at=lease, **fields))

    async def delete_thread_operation(self, run_id: Any, **fields: Any) -> None:
        await self.store.delete_thread_operation(run_id, **fields)

    async def get_many_by_thread(
        self, thread_id: Any, run_ids: Any, **options: Any
    ) -> dict[str, Any]:
        rows = await self.store.get_many_by_thread(thread_id, run_ids, **options)
        return {run_id: wire_row(row) for run_id, row in rows.items()}

    async def list_successful_regenerate_sources(self, thread_id: Any, **options: Any) -> list[str]:
        return sorted(await self.store.list_successful_regenerate_sources(thread_id, **options))

    async def list_edit_regenerate_runs(self, thread_id: Any, **options: Any) -> list[Row | None]:
        return _wire_rows(await self.store.list_edit_regenerate_runs(thread_id, **options))


def without_queued(value: Any) -> Any:
    """An expected value with every ``queued`` key removed (DeerFlow's rows have none)."""
    if isinstance(value, list):
        return [without_queued(item) for item in value]
    if isinstance(value, dict):
        return {key: without_queued(item) for key, item in value.items() if key != "queued"}
    return value


def _for_deerflow(step: dict[str, Any]) -> dict[str, Any]:
    adapted = {
        key: without_queued(value) if key in ("expect", "details") else value
        for key, value in step.items()
    }
    if "parallel" in adapted:
        adapted["parallel"] = [_for_deerflow(inner) for inner in adapted["parallel"]]
    return adapted


def _test_method(case: ContractCase) -> Callable[[Any], Awaitable[None]]:
    adapted = dataclasses.replace(case, steps=[_for_deerflow(step) for step in case.steps])

    async def test(self: Any) -> None:
        # Every step calls the one DeerFlowCalls (run_case takes a CaseStores for this).
        await run_case(lambda _name: self.store, adapted)

    test.__doc__ = f"DeerFlowRunStore, {case.spec}: {case.name}"
    return test


def deerflow_case_rules() -> type:
    """A mixin with one test method per shared case of parts 1 and 2, run through
    DeerFlowCalls. Part 3's history-*.json cases call methods DeerFlow's store
    interface has no counterpart for in this adapter (DeerFlowRunStore's
    history methods are tested in test_history_client.py), and remote-only
    cases need a server with tokens (test_contract_*.py run both)."""
    methods: dict[str, Any] = {}
    for case in load_cases():
        if case.remote_only or case.file.startswith("history-"):
            continue
        slug = re.sub(r"[^0-9a-z]+", "_", case.name.lower()).strip("_")
        methods[f"test_{case.file.replace('-', '_')}__{slug}"] = _test_method(case)
    return type("DeerFlowCaseRules", (), methods)


class DeerFlowCaseTestCase(ServerTestCase):
    """ServerTestCase whose ``self.store`` is DeerFlowCalls over a DeerFlowRunStore."""

    backend: ClassVar[str] = "memory"

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        await self.store.close()
        self.store = DeerFlowCalls(DeerFlowRunStore(self.server.target, timeout=30))  # type: ignore[assignment]


class DeerFlowMemoryCasesTest(deerflow_case_rules(), DeerFlowCaseTestCase):  # type: ignore[misc]
    backend = "memory"


class DeerFlowMysqlCasesTest(deerflow_case_rules(), DeerFlowCaseTestCase):  # type: ignore[misc]
    backend = "mysql"
