"""Config validation against the plugin's JSON Schema in conf/schemas/.

The schemas are the one source of truth for what a config may hold. `jsonschema` costs ~70 ms
to import, more than a whole reference plugin call, so this module checks the small subset of
JSON Schema our schemas use (type, properties, required, enum, const, minimum, maximum,
minLength, maxLength, pattern, items, minItems, maxItems, anyOf, $ref to $defs); the tests hold
it to jsonschema's verdicts on the same schemas.

Validation also normalises keys: Go's JSON decoder matches keys case-insensitively, so a config
the reference plugins accept with `"bandWidth"` is accepted here and handed over as `"bandwidth"`.
Unknown keys are kept and ignored, as Go ignores them, and a known key whose value is null counts
as absent, as Go's decoder leaves such a field at its zero value.
"""

from __future__ import annotations

import os
import sys

from cni import fastjson

from .errors import INVALID_CONFIG, UNSUPPORTED_FIELD, CNIError

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def schema_dir() -> str:
    """conf/schemas beside the sources, or inside the PyInstaller bundle."""
    override = os.environ.get("PYCNI_SCHEMA_DIR")
    if override:
        return override
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return os.path.join(bundle, "conf", "schemas")
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "conf", "schemas")


_loaded: dict[str, dict[str, Any]] = {}


def load(name: str) -> dict[str, Any]:
    if name not in _loaded:
        with open(os.path.join(schema_dir(), f"{name}.json"), "rb") as f:
            _loaded[name] = fastjson.load(f)
    return _loaded[name]


def validate(config: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """Check config against the named schema and return it with keys normalised."""
    schema = load(schema_name)
    return _check(config, schema, schema, "")


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)  # Go refuses 1.0 for an int
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _same(a: Any, b: Any) -> bool:
    """JSON equality for enum and const: true is not 1, though Python says so."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


_patterns: dict[str, Callable[[str], bool]] = {}


def _pattern(pattern: str) -> Callable[[str], bool]:
    """A matcher for a schema pattern, with ECMA-262's `$`: Python's also matches before a final
    newline, so `^[^/:\\s]+$` would let "cbr0\\n" through to the kernel."""
    if pattern not in _patterns:
        _patterns[pattern] = _without_re(pattern) or _with_re(pattern)
    return _patterns[pattern]


def _without_re(pattern: str) -> Callable[[str], bool] | None:
    """`^[^...]+$` (characters and `\\s` excluded), the form of the patterns checked on every call,
    matched without importing `re` (~6 ms per call); None for any other pattern."""
    if not (pattern.startswith("^[^") and pattern.endswith("]+$")):
        return None
    body, banned, space = pattern[3:-3], set(), False
    i = 0
    while i < len(body):
        if body[i] == "\\":
            if body[i + 1:i + 2] != "s":
                return None
            space, i = True, i + 2
        elif body[i] in "[]^-":
            return None
        else:
            banned.add(body[i])
            i += 1
    return lambda v: bool(v) and not any(c in banned or (space and c.isspace()) for c in v)


def _with_re(pattern: str) -> Callable[[str], bool]:
    import re

    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        out.append(ch)
    compiled = re.compile("".join(out))
    return lambda v: compiled.search(v) is not None


def _where(path: str) -> str:
    return path or "the config"


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> Any:
    if "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        value = _check(value, target, root, path)
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, n) for n in names):
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                           f"{_where(path)} must be of type {' or '.join(names)}")
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        raise CNIError(UNSUPPORTED_FIELD, f"unsupported value for {_where(path)}: {fastjson.dumps(value)}",
                       f"{_where(path)} must be one of {fastjson.dumps(schema['enum'])}")
    if "const" in schema and not _same(value, schema["const"]):
        raise CNIError(UNSUPPORTED_FIELD, f"unsupported value for {_where(path)}: {fastjson.dumps(value)}",
                       f"{_where(path)} must be {fastjson.dumps(schema['const'])}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {value}",
                           f"{_where(path)} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {value}",
                           f"{_where(path)} must be at most {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                           f"{_where(path)} must be {schema.get('minLength', 0)} to "
                           f"{schema.get('maxLength', 'any number of')} characters long")
        if "pattern" in schema and not _pattern(schema["pattern"])(value):
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                           f"{_where(path)} must match {schema['pattern']}")
    if "anyOf" in schema:
        first: CNIError | None = None
        for option in schema["anyOf"]:
            try:
                value = _check(value, option, root, path)
                break
            except CNIError as e:
                first = first or e
        else:
            raise first or CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}", "no option fits")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                           f"{_where(path)} needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                           f"{_where(path)} takes at most {schema['maxItems']} item(s)")
        items = schema.get("items")
        if isinstance(items, dict):
            value = [_check(v, items, root, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        value = _check_object(value, schema, root, path)
    return value


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> dict:
    props: dict[str, Any] = schema.get("properties", {})
    folded = {k.lower(): k for k in props}
    out: dict[str, Any] = {}
    for key, item in value.items():
        canonical = key if key in props else folded.get(key.lower(), key)
        if canonical in out and canonical != key:
            continue  # an exact-case key already won, as Go's decoder prefers it
        if item is None and canonical in props:
            continue  # Go's decoder leaves a field untouched for null: the key counts as absent
        sub = props.get(canonical)
        where = f"{path}.{canonical}" if path else canonical
        out[canonical] = _check(item, sub, root, where) if sub else item
    for key in schema.get("required", []):
        if key not in out:
            where = f"{path}.{key}" if path else key
            raise CNIError(INVALID_CONFIG, f"missing {where}", f"{where} is required")
    return out
