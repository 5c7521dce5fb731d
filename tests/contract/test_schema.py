"""The config validator in cni/contract/schema.py, held to jsonschema's verdict on every schema.

The plugins cannot afford to import jsonschema, so they use a small validator of their own; these
tests make sure the two agree on every schema in conf/schemas: a corpus is derived from each
schema (valid values, every JSON type in every position, boundaries, enum neighbours, missing
required keys, nested objects and arrays) and both validators judge every config in it.
Where they are meant to differ (Go's stricter integers, ECMA-262's `$`), a test says so.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cni.contract import schema
from cni.contract.errors import INVALID_CONFIG, UNSUPPORTED_FIELD, CNIError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "conf" / "schemas"
SCHEMAS = sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# What schema.py implements, and the annotations it may ignore.
VALIDATION_KEYWORDS = {"type", "properties", "required", "enum", "const", "minimum", "maximum", "minLength",
                       "maxLength", "pattern", "items", "minItems", "maxItems", "anyOf", "$ref", "$defs"}
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated"}


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


def test_there_are_schemas():
    assert "loopback" in SCHEMAS


# ---------------------------------------------------------------- the schemas themselves

@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    doc = load(name)
    assert doc.get("$schema") == DRAFT
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc.get("type") == "object"
    assert "name" in doc.get("required", [])


def walk_schemas(node: Any, where: str = "#"):
    """Yield (pointer, subschema) for every subschema, knowing which keys hold schemas and which data."""
    if not isinstance(node, dict):
        yield where, node
        return
    yield where, node
    for key, value in node.items():
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                yield from walk_schemas(sub, f"{where}/{key}/{name}")
        elif key == "items":
            yield from walk_schemas(value, f"{where}/items")
        elif key == "anyOf":
            for i, sub in enumerate(value):
                yield from walk_schemas(sub, f"{where}/anyOf/{i}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_uses_only_supported_keywords(name):
    bad = []
    for where, sub in walk_schemas(load(name)):
        if not isinstance(sub, dict):
            bad.append(f"{where}: boolean or non-object schema {sub!r}")
            continue
        bad += [f"{where}: {k}" for k in sub if k not in VALIDATION_KEYWORDS | ANNOTATIONS]
        ref = sub.get("$ref")
        if ref is not None and not ref.startswith("#/$defs/"):
            bad.append(f"{where}: $ref {ref} is not local to $defs")
        if isinstance(sub.get("items"), list):
            bad.append(f"{where}: tuple items")
    assert not bad, "keywords schema.py does not implement:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_property_is_described(name):
    """The schemas are the config reference beside docs/plugins/: every key says what it does."""
    missing = [where for where, sub in walk_schemas(load(name))
               if "/properties/" in where and where.rsplit("/", 2)[-2] == "properties"
               and isinstance(sub, dict) and "$ref" not in sub and not sub.get("description")]
    assert not missing, missing


# ---------------------------------------------------------------- corpus

SCALARS: list[Any] = [None, True, False, 0, 1, -1, 7, 1.5, -0.5, 65535, 65536, 4094, 4095, 2**32, 2**64,
                      2**64 - 1, "", "x", "eth0", "cbr0", "10.1.0.0/24", "10.1.0.1", "2001:db8::/64",
                      "a" * 15, "a" * 16, "a/b", "a:b", "a b", "-", "é", "iptables", "IPTABLES",
                      "nftables"]
CONTAINERS: list[Any] = [[], {}, ["x"], [1], [{}], {"x": 1}, [[]], [None]]


def resolve(sub: dict, root: dict) -> dict:
    while isinstance(sub, dict) and "$ref" in sub:
        target: Any = root
        for part in sub["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        sub = {**{k: v for k, v in sub.items() if k != "$ref"}, **target}
    return sub


def dedupe(values: list[Any]) -> list[Any]:
    seen, out = set(), []
    for v in values:
        key = json.dumps(v, sort_keys=True) + type(v).__name__
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


class Corpus:
    """Values for one schema, derived from its keywords, judged by jsonschema as the oracle."""

    def __init__(self, root: dict):
        self.root = root
        self.validator = jsonschema.Draft202012Validator(root)

    def ok(self, sub: dict, value: Any) -> bool:
        return self.validator.evolve(schema=sub).is_valid(value)

    def example(self, sub: dict, depth: int = 0) -> Any:
        """A value jsonschema accepts for sub (None if none is found)."""
        for value in self.candidates(sub, depth, shallow=True):
            if self.ok(sub, value):
                return value
        return None

    def candidates(self, sub: dict, depth: int = 0, shallow: bool = False) -> list[Any]:
        sub = resolve(sub, self.root)
        out: list[Any] = []
        for key in ("enum",):
            for v in sub.get(key, []):
                out.append(v)
                if isinstance(v, str):
                    out += [v.upper(), v + "x", v + "\n"]
        if "const" in sub:
            out.append(sub["const"])
        for key in ("minimum", "maximum"):
            if key in sub:
                out += [sub[key] - 1, sub[key], sub[key] + 1, float(sub[key])]
        for key in ("minLength", "maxLength"):
            if key in sub:
                out += ["a" * max(sub[key] - 1, 0), "a" * sub[key], "a" * (sub[key] + 1)]
        if "pattern" in sub:
            out += ["ok", "with space", "with/slash", "with:colon", "trailing\n", "\tlead", "cbr0"]
        for option in sub.get("anyOf", []):
            if depth < 3:
                out += self.candidates(option, depth + 1, shallow)
        if "items" in sub and depth < 3:
            item = self.example(sub["items"], depth + 1)
            if item is not None:
                out += [[item], [item, item]]
                lo, hi = sub.get("minItems"), sub.get("maxItems")
                if lo:
                    out += [[item] * lo, [item] * (lo - 1)]
                if hi is not None:
                    out += [[item] * hi, [item] * (hi + 1)]
            if not shallow:
                out += [[c] for c in self.candidates(sub["items"], depth + 1, shallow=True)]
        if "properties" in sub or "required" in sub:
            out += self.objects(sub, depth, shallow)
        out += SCALARS + CONTAINERS
        return dedupe(out)

    def base_object(self, sub: dict, depth: int) -> dict:
        props = sub.get("properties", {})
        return {key: self.example(props.get(key, {}), depth + 1) for key in sub.get("required", [])}

    def objects(self, sub: dict, depth: int, shallow: bool) -> list[dict]:
        base = self.base_object(sub, depth)
        out = [base, {}, {**base, "unknownKey": [1, {"x": None}]}]
        for key in sub.get("required", []):
            out.append({k: v for k, v in base.items() if k != key})
        if depth >= 3:
            return out
        for key, prop in sub.get("properties", {}).items():
            values = ([self.example(prop, depth + 1)] if shallow
                      else self.candidates(prop, depth + 1, shallow=depth >= 1))
            out += [{**base, key: v} for v in values]
        return out


def configs(name: str) -> list[dict]:
    """The corpus of whole configs for one schema: base config with each property varied."""
    root = load(name)
    corpus = Corpus(root)
    base = {"cniVersion": "1.0.0", "name": "net1", "type": name, **corpus.base_object(root, 0)}
    base = {k: v for k, v in base.items() if v is not None or k not in root.get("required", [])}
    assert corpus.ok(root, base), f"no valid base config found for {name}: {base}"
    out = [base]
    for key in root.get("required", []):
        out.append({k: v for k, v in base.items() if k != key})
    for key, prop in root.get("properties", {}).items():
        out += [{**base, key: v} for v in corpus.candidates(prop)]
    return out


def is_divergence(value: Any) -> bool:
    """Where schema.py is meant to be stricter than jsonschema: an integral float (Go refuses 1.0 for
    an int) or a string ending in a newline (ECMA-262's `$`; jsonschema uses Python's)."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        return value.endswith("\n")
    if isinstance(value, list):
        return any(is_divergence(v) for v in value)
    if isinstance(value, dict):
        return any(is_divergence(v) for v in value.values())
    return False


def go_view(value: Any) -> Any:
    """The config as Go's decoder sees it: a null member is as good as absent (schema.py does the
    same), so jsonschema judges the config without them."""
    if isinstance(value, dict):
        return {k: go_view(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [go_view(v) for v in value]
    return value


def ours(config: dict, name: str) -> CNIError | None:
    try:
        schema.validate(copy.deepcopy(config), name)
    except CNIError as e:
        return e
    return None


@pytest.mark.parametrize("name", SCHEMAS)
def test_verdicts_match_jsonschema(name):
    validator = jsonschema.Draft202012Validator(load(name))
    corpus = configs(name)
    valid = invalid = 0
    wrong = []
    for config in corpus:
        errors = list(validator.iter_errors(go_view(config)))
        mine = ours(config, name)
        if (mine is None) != (not errors):
            if mine is not None and is_divergence(config):
                continue
            wrong.append(f"{json.dumps(config)[:300]}\n  jsonschema: {[e.message for e in errors][:2]}"
                         f"\n  ours: {mine}")
            continue
        if errors:
            invalid += 1
        else:
            valid += 1
    assert not wrong, f"{len(wrong)} disagreements, e.g.:\n" + "\n".join(wrong[:8])
    assert valid >= 10 and invalid >= 10, (valid, invalid)


@pytest.mark.parametrize("name", SCHEMAS)
def test_error_codes_and_messages_on_the_corpus(name):
    """enum/const violations are code 2, other violations code 7; the message names the key."""
    validator = jsonschema.Draft202012Validator(load(name))
    wrong = []
    for config in configs(name):
        errors = list(validator.iter_errors(go_view(config)))
        if len(errors) != 1 or errors[0].context:
            continue  # several errors (or anyOf): schema.py reports the first it meets
        error = errors[0]
        mine = ours(config, name)
        assert mine is not None
        want = UNSUPPORTED_FIELD if error.validator in ("enum", "const") else INVALID_CONFIG
        if error.validator == "required":
            key = error.message.split("'")[1]
        else:
            keys = [p for p in error.absolute_path if isinstance(p, str)]
            key = keys[-1] if keys else None
        text = f"{mine.msg} {mine.details}"
        if mine.code != want or (key is not None and key not in text):
            wrong.append(f"{json.dumps(config)[:200]}: want code {want} naming {key!r}, "
                         f"got {mine.code} {text}")
    assert not wrong, "\n".join(wrong[:8])


# ---------------------------------------------------------------- intended differences

def _integer_keys(name: str) -> list[str]:
    root = load(name)
    return [k for k, p in root.get("properties", {}).items() if resolve(p, root).get("type") == "integer"]


@pytest.mark.parametrize("name", [n for n in SCHEMAS if _integer_keys(n)])
def test_integral_floats_are_not_integers(name):
    """JSON Schema counts 1.0 as an integer; Go refuses 1.0 for an int field, and so do we."""
    for key in _integer_keys(name):
        error = ours({"name": "n", **_required_base(name), key: 1.0}, name)
        assert error is not None and error.code == INVALID_CONFIG and key in error.msg


def _required_base(name: str) -> dict:
    root = load(name)
    corpus = Corpus(root)
    return {k: v for k, v in corpus.base_object(root, 0).items() if k != "name"}


def custom(monkeypatch, doc: dict) -> str:
    name = "test-only-schema"
    monkeypatch.setitem(schema._loaded, name, doc)
    return name


def test_dollar_ends_the_string_as_in_ecma_262(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "properties": {"bridge": {"type": "string",
                                                                           "pattern": "^[^/:\\s]+$"}}})
    assert schema.validate({"bridge": "cbr0"}, name) == {"bridge": "cbr0"}
    error = ours({"bridge": "cbr0\n"}, name)
    assert error is not None and error.code == INVALID_CONFIG
    assert "bridge" in error.msg


def test_escaped_and_bracketed_dollars_are_literal(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "^x\\$$"}, "b": {"type": "string", "pattern": "^[$]+$"}}})
    assert schema.validate({"a": "x$", "b": "$$"}, name) == {"a": "x$", "b": "$$"}
    assert ours({"a": "x"}, name) is not None
    assert ours({"b": "$x"}, name) is not None


def test_pattern_is_a_search_not_a_full_match(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "properties": {"a": {"type": "string", "pattern": "b"}}})
    assert schema.validate({"a": "abc"}, name) == {"a": "abc"}


def test_booleans_are_not_numbers_and_do_not_match_numeric_enums(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "properties": {
        "n": {"type": "integer"}, "m": {"type": "number"}, "e": {"enum": [0, 1]}, "c": {"const": 1}}})
    for key in ("n", "m", "e", "c"):
        assert ours({key: True}, name) is not None, key
    assert schema.validate({"n": 3, "m": 2.5, "e": 1, "c": 1}, name) == {"n": 3, "m": 2.5, "e": 1, "c": 1}


# ---------------------------------------------------------------- key normalisation

BANDWIDTH_LIKE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "runtimeConfig": {"type": "object", "properties": {
            "bandwidth": {"type": "object", "properties": {"ingressRate": {"type": "integer"}}}}},
    },
}


def test_keys_take_the_schemas_spelling_at_every_depth(monkeypatch):
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    out = schema.validate({"NAME": "n", "RuntimeConfig": {"bandWidth": {"INGRESSRATE": 5}}}, name)
    assert out == {"name": "n", "runtimeConfig": {"bandwidth": {"ingressRate": 5}}}


def test_the_reference_integration_spelling_bandwidth():
    """The reference chained-bridge-bandwidth test config writes runtimeConfig.bandWidth."""
    out = schema.validate({"name": "n", "runtimeConfig": {"bandWidth": {"ingressRate": 8000}}}, "bandwidth")
    assert out["runtimeConfig"] == {"bandwidth": {"ingressRate": 8000}}


@pytest.mark.parametrize("order", ["exact-first", "exact-last"])
def test_the_last_key_for_a_property_wins_as_in_go(monkeypatch, order):
    """Go's decoder applies keys in document order, matching case-insensitively: the last one wins,
    whichever spelling it has."""
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    pairs = [("bandwidth", {"ingressRate": 1}), ("bandWidth", {"ingressRate": 2})]
    if order == "exact-last":
        pairs.reverse()
    out = schema.validate({"name": "n", "runtimeConfig": dict(pairs)}, name)
    assert out["runtimeConfig"] == {"bandwidth": pairs[-1][1]}


def test_a_later_null_leaves_the_property_as_it_was(monkeypatch):
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    runtime = {"bandwidth": {"ingressRate": 1}, "BANDWIDTH": None}
    out = schema.validate({"name": "n", "runtimeConfig": runtime}, name)
    assert out["runtimeConfig"] == {"bandwidth": {"ingressRate": 1}}


def test_folded_key_is_still_validated(monkeypatch):
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    error = ours({"name": "n", "runtimeconfig": {"BANDWIDTH": {"ingressrate": "fast"}}}, name)
    assert error is not None and error.code == INVALID_CONFIG
    assert "runtimeConfig.bandwidth.ingressRate" in error.msg
    assert '"fast"' in error.msg


def test_folded_key_satisfies_required(monkeypatch):
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    assert schema.validate({"Name": "n"}, name) == {"name": "n"}


def test_unknown_keys_are_kept_verbatim(monkeypatch):
    name = custom(monkeypatch, BANDWIDTH_LIKE)
    config = {"name": "n", "someFutureKey": {"Deep": [1, 2]}, "runtimeConfig": {"portMappings": [{"x": 1}],
                                                                                "bandwidth": {"Extra": 1}}}
    out = schema.validate(copy.deepcopy(config), name)
    assert out["someFutureKey"] == {"Deep": [1, 2]}
    assert out["runtimeConfig"]["portMappings"] == [{"x": 1}]
    assert out["runtimeConfig"]["bandwidth"] == {"Extra": 1}


def test_missing_required_key_names_it(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "required": ["name"], "properties": {
        "ipam": {"type": "object", "required": ["subnet"], "properties": {"subnet": {"type": "string"}}}}})
    error = ours({"name": "n", "ipam": {}}, name)
    assert error is not None and error.code == INVALID_CONFIG
    assert "ipam.subnet" in error.msg


def test_enum_violation_is_code_2_naming_key_and_value(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "properties": {"ipMasqBackend": {"enum": ["iptables",
                                                                                           "nftables"]}}})
    error = ours({"ipMasqBackend": "pf"}, name)
    assert error is not None and error.code == UNSUPPORTED_FIELD
    assert "ipMasqBackend" in error.msg and '"pf"' in error.msg


def test_ref_to_defs_is_followed(monkeypatch):
    name = custom(monkeypatch, {"type": "object", "$defs": {"port": {"type": "integer", "minimum": 1}},
                                "properties": {"p": {"$ref": "#/$defs/port"}}})
    assert schema.validate({"p": 1}, name) == {"p": 1}
    error = ours({"p": 0}, name)
    assert error is not None and "p" in error.msg


def test_integral_float_is_refused_where_jsonschema_accepts_it(monkeypatch):
    doc = {"type": "object", "properties": {"mtu": {"type": "integer"}}}
    name = custom(monkeypatch, doc)
    assert jsonschema.Draft202012Validator(doc).is_valid({"mtu": 1500.0})
    error = ours({"mtu": 1500.0}, name)
    assert error is not None and error.code == INVALID_CONFIG and "mtu" in error.msg
    assert schema.validate({"mtu": 1500}, name) == {"mtu": 1500}
