"""The base class of GrpcRunStore: DeerFlow's RunStore ABC when it can be.

When the DeerFlow package is importable, GrpcRunStore subclasses its
``RunStore`` ABC so ``isinstance`` checks and type checkers accept it where
the runtime expects a store. DeerFlow's ABC has changed over its versions;
one that declares abstract methods GrpcRunStore does not implement (for
instance ``delete_by_thread``) would make GrpcRunStore impossible to create,
so then it stands alone, with a RuntimeWarning naming what is missing.
"""

from __future__ import annotations

import importlib
import warnings

__all__ = ["DEERFLOW_MODULES", "STORE_METHODS", "choose_base"]

#: Where DeerFlow has kept its RunStore ABC, most specific first.
DEERFLOW_MODULES: tuple[str, ...] = (
    "deerflow.runtime.runs.store.base",
    "deerflow.runtime.runs.store",
)

#: The methods GrpcRunStore implements: the Python store interface.
STORE_METHODS: frozenset[str] = frozenset(
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


def _deerflow_run_store() -> type | None:
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
    """DeerFlow's RunStore when importable and implementable, else ``object``."""
    abc_class = _deerflow_run_store()
    if abc_class is None:
        return object
    missing = sorted(set(getattr(abc_class, "__abstractmethods__", ())) - STORE_METHODS)
    if missing:
        warnings.warn(
            f"{abc_class.__module__}.RunStore declares abstract methods that GrpcRunStore "
            f"does not implement ({', '.join(missing)}); GrpcRunStore does not subclass it",
            RuntimeWarning,
            stacklevel=2,
        )
        return object
    return abc_class
