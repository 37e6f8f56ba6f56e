"""The result and error types DeerFlowRunStore answers with: DeerFlow's own
when the ``deerflow`` package is importable, else equivalents with the same
names, fields and attributes.

- ``LeaseRenewal(renewed, cancel_action=None)``: what renew_lease answers.
- ``StatusFinalization(finalized, cancel_action=None)``: what
  finalize_if_not_cancelled answers.
- ``RunIdempotencyConflict(existing)``: raised by create_thread_operation_atomic
  (and put) when another row holds the idempotency key; ``existing`` is that
  row. The class raised is a subclass of DeerFlow's (or of ours), and of
  IdempotencyConflictError.
- A thread conflict (a busy thread at admission) is a ThreadConflictError,
  which carries PostgreSQL's unique-violation code (``sqlstate == "23505"``)
  that DeerFlow's RunManager looks for; when DeerFlow's ``ConflictError`` is
  importable, the class raised is a subclass of it too.
- An admission whose run_id is taken by a different operation raises a
  RunIdTakenError, with the same code and, when importable, also a
  ConflictError: DeerFlow's SQL store lets the primary key's unique
  violation through there, which its RunManager turns into ConflictError.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc

from ..errors import IdempotencyConflictError, RunIdTakenError, ThreadConflictError

__all__ = [
    "LeaseRenewal",
    "RunIdempotencyConflict",
    "StatusFinalization",
    "idempotency_conflict",
    "make_finalization",
    "run_id_taken",
    "thread_conflict",
]


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_DEERFLOW_BASE = _module("deerflow.runtime.runs.store.base")


@dataclass(frozen=True)
class _LeaseRenewal:
    """The answer of renew_lease: whether the lease was extended, and the
    cancel request recorded on the run ("interrupt", "rollback" or None)."""

    renewed: bool
    cancel_action: str | None = None


@dataclass(frozen=True)
class _StatusFinalization:
    """The answer of finalize_if_not_cancelled: whether the status was
    written, and otherwise the cancel request that won (or None)."""

    finalized: bool
    cancel_action: str | None = None


class _RunIdempotencyConflict(RuntimeError):
    """Another row holds the idempotency key; ``existing`` is that row."""

    def __init__(self, existing: dict[str, Any]) -> None:
        super().__init__(f"idempotency key is held by run {existing.get('run_id')}")
        self.existing = existing


def _deerflow_type(name: str, fallback: type) -> Any:
    found = getattr(_DEERFLOW_BASE, name, None)
    if isinstance(found, type):
        return found
    # Ours go by DeerFlow's names (repr, tracebacks, logs).
    fallback.__name__ = fallback.__qualname__ = name
    return fallback


#: DeerFlow's LeaseRenewal, or ours.
LeaseRenewal: type = _deerflow_type("LeaseRenewal", _LeaseRenewal)
#: DeerFlow's StatusFinalization, or ours.
StatusFinalization: type = _deerflow_type("StatusFinalization", _StatusFinalization)
#: DeerFlow's RunIdempotencyConflict, or ours.
RunIdempotencyConflict: type = _deerflow_type("RunIdempotencyConflict", _RunIdempotencyConflict)


def make_finalization(finalized: bool, cancel_action: str | None) -> Any:
    """A StatusFinalization. A later DeerFlow's has ``durable_write_confirmed``:
    a finalization this store answers is a committed write, so it is True
    exactly when ``finalized`` is."""
    fields = {field.name for field in dataclasses.fields(StatusFinalization)}
    extra = {"durable_write_confirmed": finalized} if "durable_write_confirmed" in fields else {}
    return StatusFinalization(finalized=finalized, cancel_action=cancel_action, **extra)


@functools.cache
def _idempotency_conflict_class() -> type:
    class DeerFlowIdempotencyConflict(RunIdempotencyConflict, IdempotencyConflictError):  # type: ignore[misc]
        """RunIdempotencyConflict that is also this package's IdempotencyConflictError."""

        def __init__(self, existing: dict[str, Any], details: str) -> None:
            IdempotencyConflictError.__init__(
                self, grpc.StatusCode.ALREADY_EXISTS, details, existing=existing
            )

    DeerFlowIdempotencyConflict.__module__ = __name__
    return DeerFlowIdempotencyConflict


def idempotency_conflict(existing: dict[str, Any], details: str) -> Exception:
    """The RunIdempotencyConflict to raise, carrying the DeerFlow-shaped row."""
    error: Exception = _idempotency_conflict_class()(existing, details)
    return error


@functools.cache
def _with_conflict_error(ours: type, name: str) -> type:
    """``ours``, also a subclass of DeerFlow's ConflictError when that is
    importable. Imported at the first conflict, not at import: DeerFlow's
    manager module pulls in most of its runtime, and may itself import this
    package."""
    manager = _module("deerflow.runtime.runs.manager")
    conflict = getattr(manager, "ConflictError", None)
    if not (isinstance(conflict, type) and issubclass(conflict, Exception)):
        return ours
    doc = f"{ours.__name__} that is also DeerFlow's ConflictError."
    return type(name, (ours, conflict), {"__doc__": doc, "__module__": __name__})


def thread_conflict(source: ThreadConflictError | None, details: str) -> Exception:
    """The thread conflict to raise, with the thread and the active run when known."""
    error: Exception = _with_conflict_error(ThreadConflictError, "DeerFlowThreadConflict")(
        grpc.StatusCode.ABORTED,
        details,
        thread_id=getattr(source, "thread_id", None),
        conflicting_run_id=getattr(source, "conflicting_run_id", None),
    )
    return error


def run_id_taken(details: str) -> Exception:
    """The error to raise when an admission's run_id is taken by a different
    operation: a RunIdTakenError (``sqlstate == "23505"``, as DeerFlow's SQL
    store's primary-key violation), and DeerFlow's ConflictError when importable."""
    error: Exception = _with_conflict_error(RunIdTakenError, "DeerFlowRunIdTaken")(
        grpc.StatusCode.ALREADY_EXISTS, details
    )
    return error
