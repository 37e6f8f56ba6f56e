"""The base class of GrpcRunStore: DeerFlow's RunStore ABC when it can be.

When the DeerFlow package is importable and its ``RunStore`` ABC is the
seed's (abstract methods within the seed interface), GrpcRunStore subclasses
it so ``isinstance`` checks and type checkers accept it where that runtime
expects a store.

A later DeerFlow's ABC also declares part 2's methods abstract (start_run,
update_lease, claim_for_takeover, …) and expects its own result types
(LeaseRenewal, the ``(row, taken_over)`` tuple) and always-guarded updates:
GrpcRunStore answers part 2 in wire form instead, so it stands alone, and
``runstore_client.deerflow.DeerFlowRunStore`` is the store for that
DeerFlow. An ABC declaring an abstract method neither class knows (for
instance ``delete_by_thread``) would make GrpcRunStore impossible to create,
so then it stands alone too, with a RuntimeWarning naming what is missing.
"""

from __future__ import annotations

import importlib
import warnings

__all__ = [
    "COORDINATION_METHODS",
    "DEERFLOW_MODULES",
    "DEERFLOW_PART2_METHODS",
    "HISTORY_METHODS",
    "SEED_METHODS",
    "STORE_METHODS",
    "WATCH_METHODS",
    "choose_base",
    "deerflow_run_store",
]

#: Where DeerFlow has kept its RunStore ABC, most specific first.
DEERFLOW_MODULES: tuple[str, ...] = (
    "deerflow.runtime.runs.store.base",
    "deerflow.runtime.runs.store",
)

#: The seed's store interface (part 1), whose ABC GrpcRunStore can subclass.
SEED_METHODS: frozenset[str] = frozenset(
    {
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
    }
)

#: GrpcRunStore's part-2 methods (docs/contract.md, coordination between workers).
COORDINATION_METHODS: frozenset[str] = frozenset(
    {
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
    }
)

#: GrpcRunStore's history methods (docs/contract.md, "History").
HISTORY_METHODS: frozenset[str] = frozenset(
    {
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
    }
)

#: GrpcRunStore's live changes (docs/contract.md, "Live changes").
WATCH_METHODS: frozenset[str] = frozenset({"watch_runs"})

#: The methods GrpcRunStore implements.
STORE_METHODS: frozenset[str] = (
    SEED_METHODS | COORDINATION_METHODS | HISTORY_METHODS | WATCH_METHODS
)

#: The part-2 methods of DeerFlow's later RunStore ABC (DeerFlowRunStore's).
DEERFLOW_PART2_METHODS: frozenset[str] = (COORDINATION_METHODS - {"create_thread_operation"}) | {
    "create_thread_operation_atomic",
    "create_run_atomic",
}


def deerflow_run_store() -> type | None:
    """DeerFlow's RunStore ABC, or None when DeerFlow is not importable."""
    for name in DEERFLOW_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        candidate = getattr(module, "RunStore", None)
        if isinstance(candidate, type):
            return candidate
    return None


def choose_base() -> type:
    """DeerFlow's RunStore when importable and the seed's, else ``object``."""
    abc_class = deerflow_run_store()
    if abc_class is None:
        return object
    abstract = set(getattr(abc_class, "__abstractmethods__", ()))
    if abstract <= SEED_METHODS:
        return abc_class
    unknown = sorted(abstract - STORE_METHODS - DEERFLOW_PART2_METHODS)
    if unknown:
        warnings.warn(
            f"{abc_class.__module__}.RunStore declares abstract methods that GrpcRunStore "
            f"does not implement ({', '.join(unknown)}); GrpcRunStore does not subclass it",
            RuntimeWarning,
            stacklevel=2,
        )
    return object
