"""Routes, read back with `ip -j -d route`."""

from __future__ import annotations

import errno
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_network

import pytest

from cni.net import addr, link, route
from cni.net.netlink import Handle

from .conftest import NS


@pytest.fixture
def dev(h: Handle) -> link.Link:
    """An up veth end with 10.1.0.2/24 and fd00::2/64, so gateways on those subnets resolve."""
    a = link.create_veth(h, "eth0", "peer0", up=True)
    link.set_link(h, a.link, up=True)
    addr.add_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    addr.add_address(h, a.index, IPv6Interface("fd00::2/64"), nodad=True)
    return a


def _routes(ns: NS, *args: str) -> dict[str, dict]:
    return {r["dst"]: r for r in ns.json("ip", "-j", "-d", *args, "route", "show")}


def test_gateway_and_default_routes(h: Handle, ns: NS, dev: link.Link) -> None:
    gw = ip_address("10.1.0.1")
    route.add_route(h, ip_network("10.2.0.0/16"), gw=gw)
    route.add_route(h, ip_network("0.0.0.0/0"), gw=gw, oif=dev.index)
    k = _routes(ns)
    assert k["10.2.0.0/16"]["gateway"] == "10.1.0.1" and k["10.2.0.0/16"]["dev"] == "eth0"
    assert k["10.2.0.0/16"]["protocol"] == "boot" and k["10.2.0.0/16"]["scope"] == "global"
    assert k["default"]["gateway"] == "10.1.0.1"
    got = {str(r.dst): r for r in route.list_routes(h, 4)}
    assert set(got) == {"10.1.0.0/24", "10.2.0.0/16", "0.0.0.0/0"}
    r = got["0.0.0.0/0"]
    assert (r.gw, r.oif, r.scope, r.table, r.protocol, r.type) == (gw, dev.index, 0, 254, 3, 1)
    kernel_route = got["10.1.0.0/24"]
    assert kernel_route.gw is None and kernel_route.scope == route.RT_SCOPE_LINK
    assert kernel_route.src == ip_address("10.1.0.2") and kernel_route.protocol == 2
    with pytest.raises(FileExistsError):
        route.add_route(h, ip_network("10.2.0.0/16"), gw=gw)


def test_device_route_gets_link_scope(h: Handle, ns: NS, dev: link.Link) -> None:
    route.add_route(h, ip_network("10.3.0.0/24"), oif=dev.index)
    k = _routes(ns)["10.3.0.0/24"]
    assert k["scope"] == "link" and "gateway" not in k and k["dev"] == "eth0"
    route.add_route(h, ip_network("10.4.0.0/24"), oif=dev.index, scope=route.RT_SCOPE_UNIVERSE)
    assert _routes(ns)["10.4.0.0/24"]["scope"] == "global"


def test_table_priority_and_metrics(h: Handle, ns: NS, dev: link.Link) -> None:
    route.add_route(
        h, ip_network("10.9.0.0/16"), gw=ip_address("10.1.0.1"), table=100, priority=5, mtu=1400, advmss=1360
    )
    route.add_route(h, ip_network("10.8.0.0/16"), gw=ip_address("10.1.0.1"), table=1000)
    k = _routes(ns, "-4")
    assert k == {"10.1.0.0/24": k["10.1.0.0/24"]}  # nothing new in main
    t100 = {r["dst"]: r for r in ns.json("ip", "-j", "-d", "route", "show", "table", "100")}
    r = t100["10.9.0.0/16"]
    assert r["metric"] == 5 and r["metrics"] == [{"mtu": 1400, "advmss": 1360}]
    t1000 = {r["dst"]: r for r in ns.json("ip", "-j", "-d", "route", "show", "table", "1000")}
    assert t1000["10.8.0.0/16"]["gateway"] == "10.1.0.1"
    (got,) = route.list_routes(h, 4, table=100)
    assert (got.priority, got.mtu, got.advmss, got.table) == (5, 1400, 1360, 100)
    (big,) = route.list_routes(h, 4, table=1000)
    assert big.table == 1000
    every = route.list_routes(h, None, table=None)
    assert {r.table for r in every} >= {100, 254, 255, 1000}


def test_ipv6_routes(h: Handle, ns: NS, dev: link.Link) -> None:
    route.add_route(h, ip_network("fd01::/64"), gw=ip_address("fd00::1"), priority=100)
    route.add_route(h, ip_network("::/0"), gw=ip_address("fd00::1"))
    k = {r["dst"]: r for r in ns.json("ip", "-6", "-j", "-d", "route", "show")}
    assert k["fd01::/64"]["gateway"] == "fd00::1" and k["fd01::/64"]["metric"] == 100
    assert k["default"]["gateway"] == "fd00::1" and k["default"]["protocol"] == "boot"
    got = {str(r.dst): r for r in route.list_routes(h, 6)}
    assert got["fd01::/64"].gw == ip_address("fd00::1") and got["fd01::/64"].priority == 100
    assert got["::/0"].oif == dev.index
    assert all(r.dst.version == 6 for r in got.values())
    with pytest.raises(ValueError):
        route.add_route(h, ip_network("fd02::/64"), gw=ip_address("10.1.0.1"))


def test_add_route_replace(h: Handle, ns: NS, dev: link.Link) -> None:
    route.add_route(h, ip_network("10.2.0.0/16"), gw=ip_address("10.1.0.1"))
    route.add_route(h, ip_network("10.2.0.0/16"), gw=ip_address("10.1.0.9"), replace=True)
    assert _routes(ns)["10.2.0.0/16"]["gateway"] == "10.1.0.9"


def test_delete_route_of_any_scope_and_protocol(h: Handle, ns: NS, dev: link.Link) -> None:
    """The kernel's own prefix routes (proto kernel, link scope) go as `ip route del` takes them."""
    assert "10.1.0.0/24" in _routes(ns, "-4") and "fd00::/64" in _routes(ns, "-6")
    route.delete_route(h, ip_network("10.1.0.0/24"), oif=dev.index)
    route.delete_route(h, ip_network("fd00::/64"), oif=dev.index)
    assert "10.1.0.0/24" not in _routes(ns, "-4") and "fd00::/64" not in _routes(ns, "-6")
    route.add_route(h, ip_network("10.7.0.5/32"), oif=dev.index, scope=route.RT_SCOPE_HOST)
    assert _routes(ns, "-4")["10.7.0.5"]["scope"] == "host"
    route.delete_route(h, ip_network("10.7.0.5/32"))
    assert "10.7.0.5" not in _routes(ns, "-4")
    with pytest.raises(OSError) as info:
        route.delete_route(h, ip_network("10.7.0.5/32"))
    assert info.value.errno == errno.ESRCH
