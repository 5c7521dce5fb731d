"""cni.addrtext prints and classifies addresses exactly as `ipaddress` does (it stands in for it on
the loopback path, so any difference would change a result)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni.addrtext import IP, Cidr, ip_text, offset, parse_cidr, parse_ip, parse_network
from cni.contract.errors import CNIError
from cni.contract.result import Result

from .test_result import VERSIONS, results

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


CIDRS = st.one_of(
    st.tuples(V4_BYTES | LOOPBACKISH_V4, st.integers(0, 32)),
    st.tuples(V6_BYTES | V6_SPECIAL, st.integers(0, 128)),
)
LINK_LOCALISH = st.one_of(
    st.integers(0, 0xFFFF).map(lambda n: b"\xa9\xfe" + n.to_bytes(2, "big")),
    st.integers(0, 2**118 - 1).map(lambda n: (0xFE80 << 112 | n).to_bytes(16, "big")),
    st.integers(0, 2**112 - 1).map(lambda n: (0xFEC0 << 112 | n).to_bytes(16, "big")),
)


@settings(max_examples=3000)
@given(CIDRS)
def test_cidr_answers_what_the_bridge_reads_of_an_ip_interface(case):
    """network, its address and broadcast, ip, max_prefixlen: the same text and bytes as ipaddress."""
    raw, prefixlen = case
    theirs = ipaddress.ip_interface((raw, prefixlen))
    ours = Cidr(raw=raw, prefixlen=prefixlen)
    assert str(ours.ip) == str(theirs.ip) and ours.ip.packed == theirs.ip.packed
    assert str(ours.network) == str(theirs.network)
    assert ours.network.prefixlen == theirs.network.prefixlen
    assert ours.network_address.packed == theirs.network.network_address.packed
    assert ours.network.network_address.packed == theirs.network.network_address.packed
    assert ours.network.broadcast_address.packed == theirs.network.broadcast_address.packed
    assert ours.max_prefixlen == theirs.max_prefixlen


@settings(max_examples=3000)
@given(CIDRS, st.integers(0, 2**128 - 1), st.integers(0, 128), st.booleans())
def test_membership_is_ipaddress_in_network(case, flips, shift, other_family):
    """`address in cidr`: an address a few low bits away from the network's, or of the other family."""
    raw, prefixlen = case
    network = ipaddress.ip_interface((raw, prefixlen)).network
    bits = len(raw) * 8
    if other_family:
        near = bytes(20 - len(raw))
    else:
        near = (int.from_bytes(raw, "big") ^ (flips >> (128 - bits) >> shift)).to_bytes(len(raw), "big")
    theirs = ipaddress.ip_address(near)
    expected = theirs.version == network.version and theirs in network
    assert (IP(raw=near) in Cidr(raw=raw, prefixlen=prefixlen)) == expected
    assert (theirs in Cidr(raw=raw, prefixlen=prefixlen)) == expected  # either kind of address


@settings(max_examples=3000)
@given(V4_BYTES | V6_BYTES | V6_SPECIAL | LINK_LOCALISH)
def test_link_local_as_ipaddress_says(raw):
    assert IP(raw=raw).is_link_local == ipaddress.ip_address(raw).is_link_local


@settings(max_examples=2000)
@given(V4_BYTES | V6_BYTES | V6_SPECIAL, st.integers(-3, 3))
def test_offset_is_ipaddress_addition(raw, n):
    theirs = ipaddress.ip_address(raw)
    try:
        expected = (theirs + n).packed
    except ValueError:
        with pytest.raises(ValueError):
            offset(raw, n)
        return
    assert offset(raw, n) == expected


@pytest.mark.parametrize("size", [0, 3, 5, 15, 17])
def test_other_lengths_are_refused(size):
    with pytest.raises(ValueError):
        ip_text(bytes(size))


# ---- canonical-text parsing: accepted only what `ipaddress` prints back unchanged ----------------
def _v4_text(n: int) -> str:
    return str(ipaddress.IPv4Address(n))


def _v6_text(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw))


CANONICAL_IP = st.integers(0, 2**32 - 1).map(_v4_text) | (V6_BYTES | V6_SPECIAL).map(_v6_text)


@st.composite
def _mangled(draw, text: str) -> str:
    """A near miss of a canonical text: case, leading zeros, a spelled-out or extra group, junk."""
    how = draw(st.sampled_from(["upper", "zero", "expand", "drop", "insert", "replace", "same"]))
    if how == "upper":
        return text.upper()
    if how == "zero":
        i = draw(st.integers(0, len(text)))
        return text[:i] + "0" + text[i:]
    if how == "expand":
        return text.replace("::", ":0:", 1)
    if how == "drop" and text:
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + text[i + 1:]
    if how in ("insert", "replace"):
        i = draw(st.integers(0, len(text)))
        c = draw(st.sampled_from(list("0123456789abcdefABCDEF:./% -+\u0663x")))
        return text[:i] + c + text[i + (how == "replace"):]
    return text


IP_TEXT = CANONICAL_IP | CANONICAL_IP.flatmap(_mangled) | st.text("0123456789abcdef:.", max_size=45)
PREFIX = st.integers(0, 130).map(str) | st.sampled_from(["", "024", "00", "+8", " 8", "255.255.0.0",
                                                          "0.0.0.255"])
CIDR_TEXT = st.tuples(IP_TEXT, PREFIX).map("/".join) | st.tuples(CANONICAL_IP, PREFIX).map("/".join)


def _theirs(parse, text):
    try:
        return parse(text)
    except ValueError:
        return None


@settings(max_examples=5000, deadline=None)
@given(IP_TEXT)
def test_parse_ip_accepts_only_what_ipaddress_prints_unchanged(text):
    ours, theirs = parse_ip(text), _theirs(ipaddress.ip_address, text)
    if ours is not None:
        assert theirs is not None and str(theirs) == text == str(ours)
        assert ours.version == theirs.version and ours.raw == theirs.packed
    elif theirs is not None:  # refused only non-canonical text or a zone id: ipaddress parses those
        assert str(theirs) != text or "%" in text


@settings(max_examples=5000, deadline=None)
@given(CIDR_TEXT)
def test_parse_cidr_accepts_only_what_ip_interface_prints_unchanged(text):
    ours, theirs = parse_cidr(text), _theirs(ipaddress.ip_interface, text)
    if ours is not None:
        assert theirs is not None and str(theirs) == text == str(ours) and ours.version == theirs.version
    elif theirs is not None:
        assert str(theirs) != text or "%" in text


@settings(max_examples=5000, deadline=None)
@given(CIDR_TEXT | st.tuples(CANONICAL_IP, st.integers(0, 128)).map(
    lambda t: _theirs(lambda s: str(ipaddress.ip_network(s, strict=False)), f"{t[0]}/{t[1]}") or t[0]))
def test_parse_network_accepts_only_what_ip_network_prints_unchanged(text):
    ours, theirs = parse_network(text), _theirs(lambda s: ipaddress.ip_network(s, strict=False), text)
    if ours is not None:
        assert theirs is not None and str(theirs) == text == str(ours) and ours.version == theirs.version
    elif theirs is not None:
        assert str(theirs) != text or "%" in text


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)),
                 st.tuples(st.integers(0, 2**128 - 1) | V6_BYTES.map(lambda b: int.from_bytes(b, "big")),
                           st.integers(0, 128))))
def test_canonical_text_takes_the_fast_path(case):
    """The other direction: what `ipaddress` prints is accepted, so the path without it is taken."""
    number, prefixlen = case
    cls = ipaddress.IPv4Interface if prefixlen <= 32 and number < 2**32 else ipaddress.IPv6Interface
    iface = cls((number, prefixlen))
    assert str(parse_cidr(str(iface))) == str(iface)
    assert str(parse_ip(str(iface.ip))) == str(iface.ip)
    assert str(parse_network(str(iface.network))) == str(iface.network)


@settings(max_examples=300, deadline=None)
@given(result=results(), read_as=st.sampled_from(VERSIONS), print_as=st.sampled_from(VERSIONS),
       text_like=st.sampled_from(["10.1.0.5/24", "FD00::5/64", "10.1.0.5/255.255.255.0", "010.1.0.5/24",
                                  "::ffff:10.1.0.5/120", "fe80::5%eth0/64", "2001:0db8::5/64"]))
def test_a_result_read_with_text_addresses_prints_the_same(result, read_as, print_as, text_like):
    """What bandwidth reads and passes on, with and without `ipaddress`, in every version pair,
    including prevResults written in forms only `ipaddress` accepts (they take its path)."""
    try:
        raw = result.to_json(read_as)
    except CNIError:
        return  # a 0.1.0/0.2.0 result needs an address; conversion refusals are test_result's
    for ip in raw.get("ips", []):
        ip["address"] = text_like
    try:
        plain = Result.from_json(raw, read_as)
    except CNIError as e:
        with pytest.raises(CNIError) as theirs:
            Result.from_json(raw, read_as, text_addresses=True)
        assert theirs.value.msg == e.msg
        return
    text = Result.from_json(raw, read_as, text_addresses=True)
    for version in {print_as, read_as}:
        try:
            expected = plain.to_json(version)
        except CNIError as e:
            with pytest.raises(CNIError) as theirs:
                text.to_json(version)
            assert theirs.value.msg == e.msg
            continue
        assert text.to_json(version) == expected
