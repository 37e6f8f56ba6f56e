"""Checks of the arguments the wire cannot carry, done before any RPC.

Only what cannot be sent is refused here: a non-string where a string goes,
a string with a lone surrogate (not encodable as UTF-8), a status name with
no enum value, a counter or limit that is not an integer in range, a
non-boolean flag. Every other rule (id lengths, "__proto__" model names,
JSON depth on the server's side, …) is the server's, so callers see its
answer. Either way the error is an InvalidArgumentError naming the field,
with the same wording as the server's.
"""

from __future__ import annotations

from .errors import invalid_argument

__all__ = [
    "COUNTER_FIELDS",
    "MAX_COUNTER",
    "MAX_LIMIT",
    "check_bool",
    "check_counter",
    "check_limit",
    "check_model_name",
    "check_required_text",
    "check_text",
]

#: The eight counters of a run, in proto order (their wire and keyword names).
COUNTER_FIELDS: tuple[str, ...] = (
    "total_input_tokens",
    "total_output_tokens",
    "total_tokens",
    "llm_call_count",
    "lead_agent_tokens",
    "subagent_tokens",
    "middleware_tokens",
    "message_count",
)

#: The largest counter value (2^53-1): every client language holds it exactly.
MAX_COUNTER = 2**53 - 1

#: The largest ``limit`` of list_by_thread.
MAX_LIMIT = 10_000


def check_text(field: str, value: object) -> str | None:
    """An optional string as sent: None stays None (unset on the wire)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_argument(field, f"must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: the wire cannot carry it, and a replacement
        # character would silently make a different value.
        raise invalid_argument(field, "must be valid Unicode (it has a lone surrogate)") from None
    return str.__str__(value)


def check_required_text(field: str, value: object) -> str:
    """A string that must be given (ids); its length is the server's rule."""
    text = check_text(field, value)
    if text is None:
        raise invalid_argument(field, "must be a string, got None")
    return text


def check_counter(field: str, value: object) -> int:
    """A token counter: an integer in 0..2^53-1 (bool is refused, 1.0 too)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_argument(field, f"must be an integer, got {value!r}")
    if value < 0:
        raise invalid_argument(field, f"must be >= 0, got {value}")
    if value > MAX_COUNTER:
        raise invalid_argument(field, f"must be <= {MAX_COUNTER}, got {value}")
    return int(value)


def check_limit(field: str, value: object) -> int:
    """list_by_thread's limit: an integer in 0..10000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_argument(field, f"must be an integer, got {value!r}")
    if value < 0 or value > MAX_LIMIT:
        raise invalid_argument(field, f"must be between 0 and {MAX_LIMIT}, got {value}")
    return int(value)


def check_bool(field: str, value: object) -> bool:
    """A flag: True or False, nothing truthy."""
    if not isinstance(value, bool):
        raise invalid_argument(field, f"must be a boolean, got {type(value).__name__}")
    return value


def check_model_name(value: object) -> str | None:
    """A model name as sent: a non-string (a number, an enum of a runtime's
    config) becomes ``str(value)``, as DeerFlow's SQL store stores it; the
    trimming and the 128-character cut are the server's."""
    if value is None or isinstance(value, str):
        return check_text("model_name", value)
    return check_text("model_name", str(value))
