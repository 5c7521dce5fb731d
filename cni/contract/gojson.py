"""JSON values read as Go's encoding/json reads them: the configs operators run were written for it.

Keys. A key sets the field whose name it equals, else the one it equals case-insensitively; the
keys of an object are applied in document order, so when several set one field the last one wins;
a null leaves the field as it was, so such a key counts as absent. `field_for` is that rule;
`get` reads one field by it and the schema validator folds whole objects by it.

Types. An integer is not a boolean (nor 1.0): `is_type` with JSON Schema's type names. `read` gives a
field's value of one type, or its empty value when absent, and raises the caller's error otherwise.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

_PYTHON_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}
_EMPTY: dict[str, Any] = {"object": None, "string": "", "integer": None}


def field_index(names: Iterable[str]) -> dict[str, str]:
    """Field names by their folded form, for `field_for`."""
    return {name.lower(): name for name in names}


def field_for(key: str, fields: dict[str, str]) -> str | None:
    """The field a key sets (exact name first, then case-insensitively), or None for an unknown key."""
    if key in fields.values():
        return key
    return fields.get(key.lower())


def get(obj: dict[str, Any], field: str) -> Any:
    """The value `obj` gives `field` under Go's rule (None when no key sets it)."""
    value = None
    fields = {field.lower(): field}
    for key, item in obj.items():
        if item is not None and field_for(key, fields) == field:
            value = item
    return value


def is_type(value: Any, name: str) -> bool:
    """Whether value is of the JSON Schema type `name`."""
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)  # Go refuses 1.0 for an int
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PYTHON_TYPES[name])


def type_name(value: Any) -> str:
    """The JSON type of a decoded value, as Go's errors name it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    for name, python_type in _PYTHON_TYPES.items():
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def read(value: Any, name: str, where: str, fail: Callable[[str, str, Any], Exception]) -> Any:
    """value when it is of type `name` ("object", "array", "string", "integer"); when absent the
    type's empty value ({} never: an absent object is None, an absent array a new []); otherwise
    `fail(where, name, value)` is raised."""
    if value is None:
        return [] if name == "array" else _EMPTY[name]
    if is_type(value, name):
        return value
    raise fail(where, name, value)
