"""sysctl keys in both spellings, read and written inside a test namespace."""

from __future__ import annotations

import pytest

from cni.net import link, netns, sysctl
from cni.net.netlink import Handle

from .conftest import NS


def test_path_of_spellings() -> None:
    assert sysctl.path_of("net/ipv4/ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert sysctl.path_of("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert sysctl.path_of("net.ipv6.conf.eth0.accept_dad") == "/proc/sys/net/ipv6/conf/eth0/accept_dad"
    # sysctl(8): in the dotted form a "/" stands for a dot inside a name.
    assert (
        sysctl.path_of("net.ipv4.conf.cni0/100.forwarding") == "/proc/sys/net/ipv4/conf/cni0.100/forwarding"
    )
    assert (
        sysctl.path_of("net/ipv4/conf/cni0.100/forwarding") == "/proc/sys/net/ipv4/conf/cni0.100/forwarding"
    )
    assert sysctl.path_of("/proc/sys/net/core/somaxconn") == "/proc/sys/net/core/somaxconn"
    assert sysctl.conf_key("ipv6", "cni0.100", "accept_dad") == "net/ipv6/conf/cni0.100/accept_dad"
    with pytest.raises(ValueError):
        sysctl.conf_key("ipx", "eth0", "x")


def test_read_write_inside_namespace(ns: NS, h: Handle) -> None:
    veth = link.create_veth(h, "dot.1", "peer0")
    with netns.entered(ns.path):
        assert sysctl.read("net.ipv4.conf.dot/1.arp_notify") == "0"
        sysctl.write("net.ipv4.conf.dot/1.arp_notify", 1)
        sysctl.write(sysctl.conf_key("ipv6", "dot.1", "accept_dad"), "0")
        sysctl.write("net/ipv4/ip_forward", 1)
        assert sysctl.read("net/ipv4/ip_forward") == "1"
    assert ns.sysctl("net.ipv4.conf.dot/1.arp_notify") == "1"
    assert ns.sysctl("net.ipv6.conf.dot/1.accept_dad") == "0"
    assert ns.sysctl("net.ipv4.ip_forward") == "1"
    assert veth.name == "dot.1"


def test_errors_carry_errno(ns: NS) -> None:
    with netns.entered(ns.path):
        with pytest.raises(FileNotFoundError):
            sysctl.read("net.ipv4.conf.nosuchif.forwarding")
        with pytest.raises(FileNotFoundError):
            sysctl.write("net.ipv4.conf.nosuchif.forwarding", 1)
        with pytest.raises(OSError) as info:
            sysctl.write("net.ipv4.ip_forward", "banana")
        assert info.value.errno == 22 and "net/ipv4/ip_forward" in str(info.value)
