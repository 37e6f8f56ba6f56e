"""metadata / kwargs: caller values to ``google.protobuf.Struct`` and back.

A runtime hands kwargs it got from a request: pydantic models, datetimes,
sets, enums. The original SQL store never failed on them (its ``_safe_json``
fell back to ``model_dump()``, ``dict()`` and ``str()``), so neither does
this client. What JSON itself cannot say is converted the way the
TypeScript client converts it: NaN and infinities become None, a container
that contains itself becomes the string "[Circular]", and an integer a JSON
number (a double on the wire) cannot hold exactly becomes its decimal string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.struct_pb2 import ListValue, Struct, Value

from .errors import invalid_argument

__all__ = ["MAX_JSON_DEPTH", "json_object", "struct_from_dict", "struct_to_dict"]

#: The deepest nesting of dicts and lists metadata / kwargs may have (31
#: containers: MariaDB's JSON_DEPTH limit of 32 counts the leaves too).
MAX_JSON_DEPTH = 31

#: The largest integer a double (a JSON number on the wire) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1

_CIRCULAR = "[Circular]"


def json_object(field: str, value: object) -> dict[str, Any]:
    """The caller's metadata / kwargs as a plain JSON object (a deep copy).

    None gives {}. Anything that is not a mapping, nor a model whose
    ``model_dump()`` / ``dict()`` gives one, is refused with an
    InvalidArgumentError naming ``field``, as is nesting deeper than
    MAX_JSON_DEPTH and a key "__proto__" (which the server, written in
    JavaScript, would drop without a word). Values inside are converted,
    never refused.
    """
    if value is None:
        return {}
    if isinstance(value, (str, bytes, int, float, list, tuple, set, frozenset)):
        raise invalid_argument(field, f"must be a JSON object (a dict), got {type(value).__name__}")
    converted = _Converter(field).value(value, 0)
    if not isinstance(converted, dict):
        raise invalid_argument(field, f"must be a JSON object (a dict), got {type(value).__name__}")
    return converted


class _Converter:
    """One conversion: knows the objects on the current path, to spot cycles."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.path: set[int] = set()

    def value(self, obj: object, depth: int) -> Any:
        """``obj`` as JSON; ``depth`` is the number of containers around it."""
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, str):
            return str.__str__(obj)  # a str subclass (a str Enum) as its plain value
        if isinstance(obj, int):
            number = int(obj)
            return number if abs(number) <= MAX_SAFE_INTEGER else str(number)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else None
        if isinstance(obj, (Mapping, list, tuple)):
            container: Mapping[Any, Any] | list[Any] | tuple[Any, ...] = obj
            return self.enter(obj, lambda: self.items(container, depth))
        for method in ("model_dump", "dict"):
            dumped = _call(obj, method)
            if dumped is not None:
                return self.enter(obj, lambda: self.value(dumped, depth))
        # Every value json.dumps accepts was handled above: what is left is
        # what the SQL store's json.dumps refused and it stored as str().
        return str(obj)

    def enter(self, obj: object, convert: Callable[[], Any]) -> Any:
        """``convert()``, or "[Circular]" when ``obj`` already encloses this spot."""
        if id(obj) in self.path:
            return _CIRCULAR
        self.path.add(id(obj))
        try:
            return convert()
        finally:
            self.path.discard(id(obj))

    def items(self, obj: Mapping[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> Any:
        if depth + 1 > MAX_JSON_DEPTH:
            raise invalid_argument(self.field, f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        if not isinstance(obj, Mapping):
            return [self.value(v, depth + 1) for v in obj]
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = _key(k)
            if key == "__proto__":
                # The server's JSON objects are JavaScript objects, which
                # cannot carry this key: it would be dropped without a word.
                raise invalid_argument(self.field, 'must not have a key named "__proto__"')
            out[key] = self.value(v, depth + 1)
        return out


def _call(obj: object, method: str) -> object | None:
    """``obj.method()`` when it exists and works (pydantic v2 / v1 models), else None."""
    function = getattr(obj, method, None)
    if not callable(function):
        return None
    try:
        result: object = function()
    except Exception:  # noqa: BLE001 - any failure means "not a model": fall back to str()
        return None
    return result


def _key(key: object) -> str:
    """A dict key as JSON spells it: json.dumps's spelling for scalars, str() for the rest."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def struct_from_dict(value: dict[str, Any]) -> Struct:
    """A JSON object (as json_object returns it) as a Struct."""
    struct = Struct()
    struct.update(value)
    return struct


def struct_to_dict(struct: Struct) -> dict[str, Any]:
    """A Struct from the server as a dict.

    JSON numbers travel as doubles; an integral one within +-(2^53-1) comes
    back as an int, so ``{"n": 42}`` round-trips as 42, not 42.0.
    """
    return {key: _from_value(item) for key, item in struct.fields.items()}


def _from_value(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return _from_list(value.list_value)
    return None


def _from_list(values: ListValue) -> list[Any]:
    return [_from_value(item) for item in values.values]
