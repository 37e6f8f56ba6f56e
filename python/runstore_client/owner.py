"""Which user a call acts for when the caller does not say: the AUTO default.

DeerFlow's SQL store gives its ``user_id`` parameters a sentinel default,
AUTO, that reads the user the gateway's auth middleware put in DeerFlow's
request context (``deerflow.runtime.user_context``). Behind an authenticated
gateway every run is then stored with its owner and every read is filtered
by it, without the runtime passing ``user_id`` around. Both stores of this
package do the same:

- ``user_id`` omitted (AUTO): the id of DeerFlow's current user when the
  ``deerflow`` package is importable and a user is set; otherwise no user
  (no filter on reads, no owner on writes);
- an explicit string: that user;
- an explicit ``None``: no user, whatever the context.

DeerFlow's own resolver raises when AUTO meets an empty context; this one
falls back to no user instead, so code paths that never set a user (startup
recovery, CLIs, tests) keep part 1's behaviour. DeerFlow's own AUTO object,
when a caller passes it explicitly, counts as AUTO too.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Final

__all__ = ["AUTO", "AutoUser", "resolve_user_id"]

#: Where DeerFlow keeps its request-scoped user.
_DEERFLOW_USER_CONTEXT = "deerflow.runtime.user_context"


class AutoUser:
    """The type of AUTO: "the current user, if any"."""

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
    """DeerFlow's user-context module, or None. A failed import is tried once
    (a search of sys.path on every call would cost each call), but a module
    the application imports later is still found."""
    global _import_failed
    module = sys.modules.get(_DEERFLOW_USER_CONTEXT)
    if module is not None or _import_failed:
        return module
    try:
        return importlib.import_module(_DEERFLOW_USER_CONTEXT)
    except ImportError:
        _import_failed = True
        return None


def _is_auto(value: object, context: ModuleType | None) -> bool:
    if value is AUTO:
        return True
    deerflow_auto = getattr(context, "_AutoSentinel", None)
    return isinstance(deerflow_auto, type) and isinstance(value, deerflow_auto)


def resolve_user_id(value: object) -> object:
    """The user a call acts for: ``value`` itself unless it is AUTO (ours or
    DeerFlow's), which becomes DeerFlow's current user's id (a string) or None.

    Anything else is returned as given; the call then checks it like any
    argument.
    """
    if value is None or isinstance(value, str):
        return value
    context = _user_context()
    if not _is_auto(value, context):
        return value
    current = getattr(context, "get_current_user", None)
    user = current() if callable(current) else None
    user_id = getattr(user, "id", None)
    return None if user_id is None else str(user_id)
