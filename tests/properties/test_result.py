"""Result conversion between every spec version: what survives a round trip, what each drops."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cni.contract.result import DNS, ROUTE_INT_MAX, Interface, IPConfig, Result, Route

from .strategies import IPV4, IPV6, interfaces, networks

VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
OPT_U32 = st.none() | st.integers(0, ROUTE_INT_MAX["table"])

INTERFACES = st.builds(Interface, name=WORD, mac=st.sampled_from(["", "0a:58:0a:01:00:05"]),
                       sandbox=st.sampled_from(["", "/var/run/netns/x"]),
                       mtu=st.none() | st.integers(1, 65535), socket_path=st.sampled_from(["", "/run/sock"]),
                       pci_id=st.sampled_from(["", "0000:00:01.0"]))


@st.composite
def results(draw):
    ifaces = draw(st.lists(INTERFACES, max_size=3))
    index = st.none() | st.integers(0, max(len(ifaces) - 1, 0)) if ifaces else st.none()
    ips = draw(st.lists(st.builds(IPConfig, address=interfaces(), gateway=st.none() | IPV4 | IPV6,
                                  interface=index), max_size=3))
    routes = draw(st.lists(st.builds(Route, dst=networks(), gw=st.none() | IPV4 | IPV6, mtu=OPT_U32,
                                     advmss=OPT_U32, priority=OPT_U32, table=OPT_U32,
                                     scope=st.none() | st.integers(0, 255)), max_size=3))
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
