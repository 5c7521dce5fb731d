"""Config validation against the plugin's JSON Schema in conf/schemas/.

The schemas are the one source of truth for what a config may hold. `jsonschema` costs more
to import than a whole reference plugin call, so this module checks the small subset of
JSON Schema our schemas use (type, properties, required, enum, const, minimum, maximum,
minLength, maxLength, pattern, items, minItems, maxItems, anyOf, $ref to $defs); the tests hold
it to jsonschema's verdicts on the same schemas.

Validation also normalises keys by Go's rule (`gojson`): keys match case-insensitively, so a config
the reference plugins accept with `"bandWidth"` is accepted here and handed over as `"bandwidth"`;
when several keys name one property the last one wins; a known key whose value is null counts as
absent, as Go's decoder leaves such a field untouched. Unknown keys are kept and ignored.
"""

from __future__ import annotations

import sys

from cni import fastjson, sysapi

from . import gojson
from .errors import INVALID_CONFIG, UNSUPPORTED_FIELD, CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

def schema_dir() -> str:
    """conf/schemas beside the sources, or inside the PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return sysapi.join(bundle, "conf", "schemas")
    return sysapi.join(sysapi.dirname(sysapi.dirname(sysapi.dirname(sysapi.abspath(__file__)))),
                        "conf", "schemas")


_loaded: dict[str, dict[str, Any]] = {}


def load(name: str) -> dict[str, Any]:
    if name not in _loaded:
        with open(sysapi.join(schema_dir(), f"{name}.json"), "rb") as f:
            _loaded[name] = fastjson.load(f)
    return _loaded[name]


def warm(name: str) -> None:
    """Load a schema and make the matchers of its patterns now (the warm process, before it
    forks: its calls' children then neither read the file nor build a matcher)."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                _pattern(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load(name))


def validate(config: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """Check config against the named schema and return it with keys normalised."""
    schema = load(schema_name)
    return _check(config, schema, schema, "")


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
    matched without importing `re` (which every call would pay for); None for any other pattern."""
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


def _invalid(code: int, path: str, shown: object, rule: str) -> CNIError:
    """`invalid value for <path>: <shown>` (code 7) or `unsupported value ...` (code 2)."""
    word = "unsupported" if code == UNSUPPORTED_FIELD else "invalid"
    return CNIError(code, f"{word} value for {_where(path)}: {shown}", f"{_where(path)} {rule}")


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> Any:
    """value checked against schema, keys normalised; the keywords in a fixed order, so the first
    rule broken is the one reported."""
    if "$ref" in schema:
        value = _check(value, _resolve(schema["$ref"], root), root, path)
    _check_type(value, schema, path)
    _check_choice(value, schema, path)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_bounds(value, schema, path)
    if isinstance(value, str):
        _check_string(value, schema, path)
    if "anyOf" in schema:
        value = _check_any_of(value, schema["anyOf"], root, path)
    if isinstance(value, list):
        value = _check_array(value, schema, root, path)
    if isinstance(value, dict):
        value = _check_object(value, schema, root, path)
    return value


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    target: Any = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return target


def _check_type(value: Any, schema: dict[str, Any], path: str) -> None:
    types = schema.get("type")
    if types is None:
        return
    names = types if isinstance(types, list) else [types]
    if not any(gojson.is_type(value, n) for n in names):
        raise CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}: {fastjson.dumps(value)}",
                       f"{_where(path)} must be of type {' or '.join(names)}")


def _check_choice(value: Any, schema: dict[str, Any], path: str) -> None:
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        rule = f"must be one of {fastjson.dumps(schema['enum'])}"
        raise _invalid(UNSUPPORTED_FIELD, path, fastjson.dumps(value), rule)
    if "const" in schema and not _same(value, schema["const"]):
        rule = f"must be {fastjson.dumps(schema['const'])}"
        raise _invalid(UNSUPPORTED_FIELD, path, fastjson.dumps(value), rule)


def _check_bounds(value: float, schema: dict[str, Any], path: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise _invalid(INVALID_CONFIG, path, value, f"must be at least {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise _invalid(INVALID_CONFIG, path, value, f"must be at most {schema['maximum']}")


def _check_string(value: str, schema: dict[str, Any], path: str) -> None:
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
        rule = (f"must be {schema.get('minLength', 0)} to {schema.get('maxLength', 'any number of')} "
                "characters long")
        raise _invalid(INVALID_CONFIG, path, fastjson.dumps(value), rule)
    if "pattern" in schema and not _pattern(schema["pattern"])(value):
        raise _invalid(INVALID_CONFIG, path, fastjson.dumps(value), f"must match {schema['pattern']}")


def _check_any_of(value: Any, options: list[dict[str, Any]], root: dict[str, Any], path: str) -> Any:
    """value as the first option that accepts it; else the first option's error."""
    first: CNIError | None = None
    for option in options:
        try:
            return _check(value, option, root, path)
        except CNIError as e:
            first = first or e
    raise first or CNIError(INVALID_CONFIG, f"invalid value for {_where(path)}", "no option fits")


def _check_array(value: list[Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> list[Any]:
    if len(value) < schema.get("minItems", 0):
        rule = f"needs at least {schema['minItems']} item(s)"
        raise _invalid(INVALID_CONFIG, path, fastjson.dumps(value), rule)
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        rule = f"takes at most {schema['maxItems']} item(s)"
        raise _invalid(INVALID_CONFIG, path, fastjson.dumps(value), rule)
    items = schema.get("items")
    if isinstance(items, dict):
        return [_check(v, items, root, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str) -> dict:
    """The object with its known keys in the schema's spelling (Go's rule: `gojson.field_for`)."""
    props: dict[str, Any] = schema.get("properties", {})
    fields = gojson.field_index(props)
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = gojson.field_for(key, fields)
        if field is None:
            out[key] = item  # unknown: kept verbatim, ignored
            continue
        if item is None:
            continue  # Go's decoder leaves a field untouched for null: the key counts as absent
        where = f"{path}.{field}" if path else field
        out[field] = _check(item, props[field], root, where)  # a later key for the field wins
    for key in schema.get("required", []):
        if key not in out:
            where = f"{path}.{key}" if path else key
            raise CNIError(INVALID_CONFIG, f"missing {where}", f"{where} is required")
    return out
