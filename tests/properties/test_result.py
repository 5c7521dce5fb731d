"""Result conversion between every spec version: what survives a round trip, what each drops."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from cni.contract.errors import CNIError
from cni.contract.result import DNS, ROUTE_INT_MAX, Interface, IPConfig, Result, Route

from .strategies import IPV4, IPV6, interfaces, networks

VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
OPT_U32 = st.none() | st.integers(0, ROUTE_INT_MAX["table"])

INTERFACES = st.builds(Interface, name=WORD, mac=st.sampled_from(["", "0a:58:0a:01:00:05"]),
                       sandbox=st.sampled_from(["", "/var/run/netns/x"]),
                       mtu=st.none() | st.integers(1, 65535), socket_path=st.sampled_from(["", "/run/sock"]),
                       pci_id=st.sampled_from(["", "0000:00:01.0"]))


def _of_family(version: int):
    return IPV4 if version == 4 else IPV6


@st.composite
def ip_configs(draw, index, mixed: bool = False):
    """An address with a gateway of its own family (of the other one with `mixed`), or none."""
    address = draw(interfaces())
    family = 10 - address.version if mixed else address.version  # 4 <-> 6
    gateway = draw(_of_family(family)) if mixed else draw(st.none() | _of_family(family))
    return IPConfig(address=address, gateway=gateway, interface=draw(index))


@st.composite
def routes_of(draw, mixed: bool = False):
    dst = draw(networks())
    family = 10 - dst.version if mixed else dst.version
    gw = draw(_of_family(family)) if mixed else draw(st.none() | _of_family(family))
    return Route(dst=dst, gw=gw, mtu=draw(OPT_U32), advmss=draw(OPT_U32), priority=draw(OPT_U32),
                 table=draw(OPT_U32), scope=draw(st.none() | st.integers(0, 255)))


@st.composite
def results(draw):
    ifaces = draw(st.lists(INTERFACES, max_size=3))
    index = st.none() | st.integers(0, max(len(ifaces) - 1, 0)) if ifaces else st.none()
    ips = draw(st.lists(ip_configs(index), max_size=3))
    routes = draw(st.lists(routes_of(), max_size=3))
    dns = draw(st.builds(DNS, nameservers=st.lists(WORD, max_size=2), domain=st.just("") | WORD,
                         search=st.lists(WORD, max_size=2), options=st.lists(WORD, max_size=2)))
    return Result(interfaces=ifaces, ips=ips, routes=routes, dns=dns)


def _older(r: Route) -> Route:
    return Route(dst=r.dst, gw=r.gw)


def _older_iface(i: Interface) -> Interface:
    return Interface(name=i.name, mac=i.mac, sandbox=i.sandbox)


@settings(max_examples=100, deadline=None)
@given(result=results())
def test_1_1_0_round_trips_losslessly(result):
    assert Result.from_json(result.to_json("1.1.0"), "1.1.0") == result


@settings(max_examples=100, deadline=None)
@given(result=results(), version=st.sampled_from(VERSIONS[2:6]))
def test_0_3_to_1_0_drop_exactly_the_1_1_fields(result, version):
    back = Result.from_json(result.to_json(version), version)
    assert back.interfaces == [_older_iface(i) for i in result.interfaces]
    assert back.routes == [_older(r) for r in result.routes]
    assert back.ips == result.ips and back.dns == result.dns
    printed = result.to_json(version)
    legacy = version != "1.0.0"
    assert all(("version" in ip) == legacy for ip in printed.get("ips", []))
    # and printing what was read back prints the same document again
    assert back.to_json(version) == printed


@settings(max_examples=100, deadline=None)
@given(result=results(), version=st.sampled_from(VERSIONS[:2]))
def test_0_1_and_0_2_keep_the_first_address_of_each_family_and_its_routes(result, version):
    try:
        printed = result.to_json(version)
    except Exception as e:  # no address at all: incompatible (code 1)
        assert not result.ips and getattr(e, "code", None) == 1
        return
    assert "interfaces" not in printed and "ips" not in printed
    back = Result.from_json(printed, version)
    for family in (4, 6):
        mine = [ip for ip in result.ips if ip.version == family]
        kept = [ip for ip in back.ips if ip.version == family]
        assert kept == [IPConfig(address=mine[0].address, gateway=mine[0].gateway)] if mine else not kept
        if mine:
            assert [r for r in back.routes if r.dst.version == family] == [
                _older(r) for r in result.routes if r.dst.version == family]
    assert back.to_json(version) == printed


@settings(max_examples=80, deadline=None)
@given(result=results(), a=st.sampled_from(VERSIONS[2:]), b=st.sampled_from(VERSIONS[2:]))
def test_conversion_goes_through_the_older_of_two_versions(result, a, b):
    """a -> b keeps what the older of the two keeps: converting never invents a field."""
    via = Result.from_json(result.to_json(a), a).to_json(b)
    older = min(a, b, key=lambda v: tuple(map(int, v.split("."))))
    direct = Result.from_json(result.to_json(older), older).to_json(b)
    assert via == direct


@settings(max_examples=100, deadline=None)
@given(result=results(), bad_ip=ip_configs(st.none(), mixed=True), bad_route=routes_of(mixed=True),
       which=st.sampled_from(["ip", "route"]), version=st.sampled_from(VERSIONS), where=st.integers(0, 3))
def test_a_gateway_of_another_family_is_code_7(result, bad_ip, bad_route, which, version, where):
    """Whatever else a result holds and in whichever version, one gateway (or route gw) of the
    other family than its address (or dst) makes it unreadable: nothing may be built from it."""
    if which == "ip":
        result.ips.insert(min(where, len(result.ips)), bad_ip)
        result.ips = [ip for ip in result.ips if ip is bad_ip or ip.version != bad_ip.version]
    else:
        result.routes.insert(min(where, len(result.routes)), bad_route)
        result.ips.append(IPConfig(address=ipaddress.ip_interface((bad_route.dst.network_address, 0))))
    try:
        printed = result.to_json(version)
    except Exception as e:  # 0.1.0/0.2.0 keeps one address per family: converting may refuse
        assert getattr(e, "code", None) == 1
        return
    if version in VERSIONS[:2] and which == "ip" and printed.get(f"ip{bad_ip.version}", {}).get(
            "gateway") != str(bad_ip.gateway):
        return  # an older form kept another address of that family
    try:
        Result.from_json(printed, version)
    except CNIError as e:
        assert e.code == 7 and "family" in e.msg
        return
    raise AssertionError(f"read without error: {printed}")
