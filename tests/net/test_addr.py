"""Addresses, read back with `ip -j addr`, including DAD states and IPv6-disabled links."""

from __future__ import annotations

import errno
import time
from ipaddress import IPv4Interface, IPv6Interface

import pytest

from cni.net import addr, link, netns, sysctl
from cni.net.netlink import Handle

from .conftest import NS


def _kernel_addrs(ns: NS, dev: str) -> dict[str, dict]:
    (info,) = ns.json("ip", "-j", "addr", "show", "dev", dev)
    return {f"{a['local']}/{a['prefixlen']}": a for a in info["addr_info"]}


def _wait_for(pred, timeout: float = 6.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@pytest.fixture
def pair(h: Handle) -> tuple[link.Link, link.Link]:
    """Two veth ends in one namespace, both up (so IPv6 DAD runs)."""
    a = link.create_veth(h, "va", "vb", up=True)
    link.set_link(h, a.link, up=True)
    return a, link.get_link(h, "vb")


def test_add_ipv4_with_broadcast(h: Handle, ns: NS, pair: tuple[link.Link, link.Link]) -> None:
    a, _ = pair
    addr.add_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    addr.add_address(h, a.index, IPv4Interface("10.9.0.0/31"))
    k = _kernel_addrs(ns, "va")
    assert k["10.1.0.2/24"]["family"] == "inet" and k["10.1.0.2/24"]["broadcast"] == "10.1.0.255"
    assert "broadcast" not in k["10.9.0.0/31"]
    got = addr.list_addresses(h, a.index, 4)
    assert [x.ip for x in got] == [IPv4Interface("10.1.0.2/24"), IPv4Interface("10.9.0.0/31")]
    assert all(x.index == a.index and x.label == "va" and x.scope == 0 for x in got)
    assert all(x.permanent and not x.tentative and not x.dadfailed for x in got)
    with pytest.raises(FileExistsError) as info:
        addr.add_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    assert info.value.errno == errno.EEXIST and "add address 10.1.0.2/24" in str(info.value)


def test_list_filters_by_link_and_family(h: Handle, pair: tuple[link.Link, link.Link]) -> None:
    a, b = pair
    addr.add_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    addr.add_address(h, b.index, IPv4Interface("10.1.0.3/24"))
    addr.add_address(h, b.index, IPv6Interface("fd00::3/64"), nodad=True)
    assert {x.ip for x in addr.list_addresses(h, b.index, 4)} == {IPv4Interface("10.1.0.3/24")}
    v6 = {x.ip for x in addr.list_addresses(h, b.index, 6)}
    assert IPv6Interface("fd00::3/64") in v6 and all(ip.version == 6 for ip in v6)
    everything = addr.list_addresses(h)
    assert {x.index for x in everything} >= {a.index, b.index}
    assert IPv4Interface("10.1.0.2/24") in {x.ip for x in everything}
    lo = addr.list_addresses(h, 1)
    assert lo == []  # lo is down in a fresh namespace and has no address yet


def test_ipv6_nodad_and_tentative(h: Handle, ns: NS, pair: tuple[link.Link, link.Link]) -> None:
    a, _ = pair
    addr.add_address(h, a.index, IPv6Interface("fd00::2/64"), nodad=True)
    addr.add_address(h, a.index, IPv6Interface("fd00::5/64"))
    k = _kernel_addrs(ns, "va")
    assert k["fd00::2/64"].get("nodad") is True and not k["fd00::2/64"].get("tentative")
    assert k["fd00::5/64"].get("tentative") is True
    got = {str(x.ip): x for x in addr.list_addresses(h, a.index, 6)}
    assert not got["fd00::2/64"].tentative and got["fd00::2/64"].flags & addr.IFA_F_NODAD
    assert got["fd00::5/64"].tentative and not got["fd00::5/64"].dadfailed

    def settled() -> bool:
        return not any(x.tentative for x in addr.list_addresses(h, a.index, 6) if str(x.ip) == "fd00::5/64")

    assert _wait_for(settled), "DAD never finished"
    assert not _kernel_addrs(ns, "va")["fd00::5/64"].get("tentative")


def test_dad_failure_is_visible(h: Handle, ns: NS, h2: Handle, ns2: NS, ns2_fd: int) -> None:
    a = link.create_veth(h, "va", "vb", peer_netns_fd=ns2_fd, up=True)
    b = link.get_link(h2, "vb")
    link.set_link(h2, b.index, up=True)
    addr.add_address(h2, b.index, IPv6Interface("fd00::7/64"), nodad=True)
    addr.add_address(h, a.index, IPv6Interface("fd00::7/64"))  # the other side already has it

    def failed() -> bool:
        return any(x.dadfailed for x in addr.list_addresses(h, a.index, 6) if str(x.ip) == "fd00::7/64")

    assert _wait_for(failed), "duplicate address was not detected"
    assert _kernel_addrs(ns, "va")["fd00::7/64"].get("dadfailed") is True


def test_ipv6_on_disabled_link_is_a_clear_error(h: Handle, ns: NS, pair: tuple[link.Link, link.Link]) -> None:
    a, _ = pair
    with netns.entered(ns.path):
        sysctl.write("net.ipv6.conf.va.disable_ipv6", 1)
    with pytest.raises(OSError) as info:
        addr.add_address(h, a.index, IPv6Interface("fd00::2/64"))
    assert info.value.errno == errno.EACCES
    assert "IPv6 is disabled" in str(info.value) and "add address fd00::2/64" in str(info.value)
    assert "fd00::2/64" not in _kernel_addrs(ns, "va")


def test_delete_address(h: Handle, ns: NS, pair: tuple[link.Link, link.Link]) -> None:
    a, _ = pair
    addr.add_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    addr.add_address(h, a.index, IPv6Interface("fd00::2/64"), nodad=True)
    addr.delete_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    addr.delete_address(h, a.index, IPv6Interface("fd00::2/64"))
    k = _kernel_addrs(ns, "va")
    assert "10.1.0.2/24" not in k and "fd00::2/64" not in k
    assert addr.list_addresses(h, a.index, 4) == []
    with pytest.raises(OSError) as info:
        addr.delete_address(h, a.index, IPv4Interface("10.1.0.2/24"))
    assert info.value.errno == errno.EADDRNOTAVAIL


def test_wait_settled(h: Handle, pair: tuple[link.Link, link.Link]) -> None:
    """Returns once DAD is done; a timeout names the address still tentative."""
    a, _ = pair
    addr.add_address(h, a.index, IPv6Interface("fd00::5/64"))
    with pytest.raises(TimeoutError) as info:
        addr.wait_settled(h, a.index, 0)
    assert "fd00::5/64" in str(info.value)
    addr.wait_settled(h, a.index, 6.0)
    assert not [x for x in addr.list_addresses(h, a.index, 6) if x.tentative]


def test_wait_settled_reports_a_duplicate(h: Handle, h2: Handle, ns2_fd: int) -> None:
    a = link.create_veth(h, "va", "vb", peer_netns_fd=ns2_fd, up=True)
    b = link.get_link(h2, "vb")
    link.set_link(h2, b.index, up=True)
    addr.add_address(h2, b.index, IPv6Interface("fd00::7/64"), nodad=True)
    addr.add_address(h, a.index, IPv6Interface("fd00::7/64"))
    with pytest.raises(OSError) as info:
        addr.wait_settled(h, a.index, 6.0)
    assert info.value.errno == errno.EADDRINUSE and "fd00::7/64" in str(info.value)
