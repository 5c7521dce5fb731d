"""schema.py held to jsonschema's verdict on configs hypothesis makes: a valid base config with one
or two properties given arbitrary JSON values."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from properties.strategies import JSON

from cni.contract import schema
from cni.contract.errors import CNIError

from .test_schema import is_divergence

SCHEMAS = ("bridge", "host-local", "bandwidth", "loopback")
BASES = {
    "bridge": {"cniVersion": "1.0.0", "name": "n", "type": "bridge", "bridge": "cni0",
               "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}},
    "host-local": {"cniVersion": "1.0.0", "name": "n", "type": "host-local",
                   "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}},
    "bandwidth": {"cniVersion": "1.0.0", "name": "n", "type": "bandwidth"},
    "loopback": {"cniVersion": "1.0.0", "name": "n", "type": "loopback"},
}


def _go_view(value):
    """A null member is as good as absent for Go (and schema.py)."""
    if isinstance(value, dict):
        return {k: _go_view(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_go_view(v) for v in value]
    return value


def _values(sub: dict):
    """Arbitrary JSON, plus values near what the property's keywords allow."""
    near = [v for v in sub.get("enum", [])]
    for key in ("minimum", "maximum"):
        if key in sub:
            near += [sub[key] - 1, sub[key], sub[key] + 1]
    for key in ("minLength", "maxLength"):
        if key in sub:
            near += ["a" * max(sub[key] - 1, 0), "a" * sub[key], "a" * (sub[key] + 1)]
    return JSON | st.sampled_from(near or [None]) | st.text(max_size=20)


@pytest.mark.parametrize("name", SCHEMAS)
def test_verdicts_match_jsonschema(name):
    root = schema.load(name)
    validator = jsonschema.Draft202012Validator(root)
    props = sorted(root.get("properties", {}))

    @settings(max_examples=120, deadline=None)
    @given(data=st.data())
    def check(data):
        config = copy.deepcopy(BASES[name])
        for key in data.draw(st.lists(st.sampled_from(props), min_size=1, max_size=2, unique=True)):
            config[key] = data.draw(_values(root["properties"][key]), label=key)
        oracle = validator.is_valid(_go_view(config))
        try:
            schema.validate(copy.deepcopy(config), name)
            ours = True
        except CNIError as e:
            assert e.code in (2, 7), e
            ours = False
        if ours != oracle:
            assert not ours and is_divergence(config), (config, "ours" if ours else "jsonschema")

    check()
