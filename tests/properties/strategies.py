"""Shared hypothesis strategies: JSON values, names, addresses."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

# What no config may hold: a lone UTF-16 surrogate in a string (code 7), a number that is not finite
# (json.dumps writes NaN, Infinity, -Infinity; code 6).
LONE_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT_WITH_SURROGATE = st.tuples(st.text(max_size=4), LONE_SURROGATE, st.text(max_size=4)).map("".join)
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])


@st.composite
def planted(draw, poison, as_key: bool = False):
    """A JSON value holding `poison` (drawn) somewhere among random siblings, 0 to 5 levels deep;
    with `as_key` the poison is an object's key instead of a value."""
    value = draw(poison)
    value = {value: draw(JSON)} if as_key else value
    for _ in range(draw(st.integers(0, 5))):
        siblings = draw(st.lists(JSON, max_size=3))
        if draw(st.booleans()):
            siblings.insert(draw(st.integers(0, len(siblings))), value)
            value = siblings
        else:
            value = {draw(st.text(max_size=6)) + f"#{n}": s for n, s in enumerate(siblings)} | {"v": value}
    return value


# Interface names as the environment can carry them: any bytes but NUL, decoded as Python decodes
# the environment (surrogate escapes for what is not UTF-8).
ENV_BYTES = st.binary(min_size=0, max_size=20).filter(lambda b: b"\0" not in b)
ENV_TEXT = ENV_BYTES.map(lambda b: b.decode("utf-8", "surrogateescape"))

IPV4 = st.integers(0, (1 << 32) - 1).map(ipaddress.IPv4Address)
IPV6 = st.integers(0, (1 << 128) - 1).map(ipaddress.IPv6Address)


@st.composite
def interfaces(draw, version: int | None = None):
    """An IPv4 or IPv6 address with a prefix length (ipaddress.ip_interface)."""
    v = version or draw(st.sampled_from((4, 6)))
    ip = draw(IPV4 if v == 4 else IPV6)
    prefix = draw(st.integers(0, 32 if v == 4 else 128))
    return ipaddress.ip_interface((ip, prefix))


@st.composite
def networks(draw, version: int | None = None):
    return draw(interfaces(version)).network
