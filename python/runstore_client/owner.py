"""Which user a call acts for when the caller does not say: the AUTO default.

DeerFlow's SQL store gives its ``user_id`` parameters a sentinel default,
AUTO, that reads the user the gateway's auth middleware put in DeerFlow's
request context (``deerflow.runtime.user_context``). Behind an authenticated
gateway every run is then stored with its owner and every read is filtered
by it, without the runtime passing ``user_id`` around. Both stores of this
package do the same:

- ``user_id`` omitted (AUTO), with DeerFlow's user-context module
  importable: whatever DeerFlow's own ``resolve_user_id`` answers, the
  current user's id, and, when no user is set, the RuntimeError it raises
  (a call outside an authenticated request must say ``user_id=None`` to
  bypass isolation, as with DeerFlow's store: never an unowned row or an
  unfiltered read by accident);
- ``user_id`` omitted without that module: no user (no filter on reads, no
  owner on writes), part 1's behaviour;
- an explicit string: that user;
- an explicit ``None``: no user, whatever the context.

DeerFlow's own AUTO object, when a caller passes it explicitly, counts as
AUTO too.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Final

__all__ = ["AUTO", "AutoUser", "resolve_user_id"]

#: Where DeerFlow keeps its request-scoped user.
_DEERFLOW_USER_CONTEXT = "deerflow.runtime.user_context"
#: The module and its packages: any of them missing means "no DeerFlow".
_CONTEXT_PACKAGES = frozenset({"deerflow", "deerflow.runtime", _DEERFLOW_USER_CONTEXT})


class AutoUser:
    """The type of AUTO: "the current user" (see the module doc)."""

    _instance: AutoUser | None = None

    def __new__(cls) -> AutoUser:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AUTO"

    def __reduce__(self) -> str:
        return "AUTO"


#: The default of every ``user_id`` parameter: resolved per call, see the module doc.
AUTO: Final[AutoUser] = AutoUser()


_import_failed = False


def _user_context() -> ModuleType | None:
    """DeerFlow's user-context module, or None when it does not exist. A
    missing module is looked for once (a search of sys.path on every call
    would cost each call), but a module the application imports later is
    still found. Any other import failure propagates: it is not "no
    DeerFlow", so it must not mean "no user"."""
    global _import_failed
    module = sys.modules.get(_DEERFLOW_USER_CONTEXT)
    if module is not None or _import_failed:
        return module
    try:
        return importlib.import_module(_DEERFLOW_USER_CONTEXT)
    except ModuleNotFoundError as error:
        if error.name not in _CONTEXT_PACKAGES:
            raise
        _import_failed = True
        return None


def _is_auto(value: object, context: ModuleType | None) -> bool:
    if value is AUTO:
        return True
    deerflow_auto = getattr(context, "_AutoSentinel", None)
    return isinstance(deerflow_auto, type) and isinstance(value, deerflow_auto)


def resolve_user_id(value: object, *, method_name: str = "repository method") -> object:
    """The user a call acts for: ``value`` itself unless it is AUTO (ours or
    DeerFlow's), which DeerFlow's user context resolves (see the module doc;
    ``method_name`` names the caller in DeerFlow's error) or, without
    DeerFlow, becomes None.

    Anything else is returned as given; the call then checks it like any
    argument.
    """
    if value is None or isinstance(value, str):
        return value
    context = _user_context()
    if not _is_auto(value, context):
        return value
    if context is None:
        return None
    resolver = getattr(context, "resolve_user_id", None)
    if callable(resolver):
        return resolver(getattr(context, "AUTO", value), method_name=method_name)
    return _current_user_id(context, method_name)


def _current_user_id(context: ModuleType, method_name: str) -> str:
    """For a user-context module without ``resolve_user_id``: its current
    user's id, or the RuntimeError DeerFlow's resolver raises."""
    current = getattr(context, "get_current_user", None)
    user = current() if callable(current) else None
    if user is None:
        raise RuntimeError(
            f"{method_name} called with user_id=AUTO but no user context is set; "
            "pass an explicit user_id, or user_id=None to bypass isolation"
        )
    return str(user.id)
