"""cni.addrtext prints and classifies addresses exactly as `ipaddress` does (it stands in for it on
the loopback path, so any difference would change a result)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni.addrtext import Cidr, ip_text

# Zero hextets are drawn often, so runs of zeros (what `::` compresses, ties included) are common.
HEXTET = st.sampled_from([0, 0, 0, 1, 0xFFFF]) | st.integers(0, 0xFFFF)
V6_BYTES = st.lists(HEXTET, min_size=8, max_size=8).map(lambda hs: b"".join(h.to_bytes(2, "big") for h in hs))
V6_SPECIAL = st.sampled_from([
    ipaddress.IPv6Address(s).packed
    for s in ("::", "::1", "::ffff:1.2.3.4", "::ffff:127.0.0.1", "::1.2.3.4", "64:ff9b::1.2.3.4",
              "fe80::1", "2001:db8::", "1::", "1:0:0:1:0:0:0:1", "0:0:1:0:0:1::", "1:0:1:0:1:0:1:0")])
V4_BYTES = st.binary(min_size=4, max_size=4)
LOOPBACKISH_V4 = st.integers(0, 0xFFFFFF).map(lambda n: bytes([127]) + n.to_bytes(3, "big"))


@settings(max_examples=5000)
@given(st.integers(0, 2**32 - 1) | V4_BYTES.map(lambda b: int.from_bytes(b, "big")))
def test_ipv4_text_matches_ipaddress(number):
    raw = number.to_bytes(4, "big")
    assert ip_text(raw) == str(ipaddress.IPv4Address(raw))


@settings(max_examples=5000)
@given(V6_BYTES | V6_SPECIAL | st.integers(0, 2**128 - 1).map(lambda n: n.to_bytes(16, "big")))
def test_ipv6_text_matches_ipaddress(raw):
    assert ip_text(raw) == str(ipaddress.IPv6Address(raw))


@settings(max_examples=3000)
@given(st.one_of(
    st.tuples(V4_BYTES | LOOPBACKISH_V4, st.integers(0, 32)),
    st.tuples(V6_BYTES | V6_SPECIAL | st.just(b"\0" * 15 + b"\1"), st.integers(0, 128) | st.just(128)),
))
def test_cidr_prints_versions_and_classifies_as_ip_interface(case):
    raw, prefixlen = case
    theirs = ipaddress.ip_interface((raw, prefixlen))
    ours = Cidr(raw=raw, prefixlen=prefixlen)
    assert str(ours) == str(theirs)
    assert ours.version == theirs.version
    assert ours.is_loopback == theirs.is_loopback


@pytest.mark.parametrize("size", [0, 3, 5, 15, 17])
def test_other_lengths_are_refused(size):
    with pytest.raises(ValueError):
        ip_text(bytes(size))

