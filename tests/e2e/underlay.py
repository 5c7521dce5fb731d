"""The network kind's nodes share (kind's docker network): a bridge in a namespace of its own, each
node plugged in as ``eth0`` with an address of ``UNDERLAY``, and the routes kindnetd keeps on every
node, one to each other node's pod CIDRs via that node's address."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from helpers import add_netns, del_netns, unique_ifname, unique_name

UNDERLAY = ipaddress.IPv4Network("172.18.0.0/24")
UNDERLAY6 = ipaddress.IPv6Network("fd00:18::/64")
BRIDGE = "ul0"


def ip(*argv: str) -> None:
    """``ip ARGV``, raising with its message when it fails."""
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"ip {' '.join(argv)}: {proc.stderr}")


def eth0_mtu(ns: str) -> int:
    """The MTU of ``eth0`` in namespace ``ns`` (what kindnetd puts in its list)."""
    proc = subprocess.run(["ip", "-n", ns, "-o", "link", "show", "dev", "eth0"], capture_output=True,
                          text=True, timeout=30, check=True)
    words = proc.stdout.split()
    return int(words[words.index("mtu") + 1])


@dataclass
class Underlay:
    """The shared wire. Plugged namespaces keep their ``eth0`` until they are deleted; :meth:`close`
    deletes the underlay's own namespace (and with it the bridge and every outer veth end)."""

    ns: str
    mtu: int

    @classmethod
    def create(cls, mtu: int = 1500) -> Underlay:
        ns = unique_name("pycni-ul-", 12)
        add_netns(ns)
        try:
            ip("-n", ns, "link", "add", BRIDGE, "mtu", str(mtu), "type", "bridge")
            ip("-n", ns, "link", "set", BRIDGE, "up")
        except BaseException:
            del_netns(ns)
            raise
        return cls(ns, mtu)

    def plug(self, ns: str, address: str, address6: str | None = None) -> None:
        """A veth from namespace ``ns`` (named eth0 there, like a kind node's) to the bridge, with an
        IPv4 address and, on a dual-stack underlay, an IPv6 one."""
        outer, inner = unique_ifname("pul"), unique_ifname("pun")
        mtu = str(self.mtu)
        ip("link", "add", outer, "mtu", mtu, "netns", self.ns, "type", "veth",
           "peer", "name", inner, "mtu", mtu, "netns", ns)
        ip("-n", self.ns, "link", "set", outer, "master", BRIDGE, "up")
        ip("-n", ns, "link", "set", inner, "name", "eth0")
        ip("-n", ns, "addr", "add", f"{address}/{UNDERLAY.prefixlen}", "dev", "eth0")
        if address6:
            ip("-n", ns, "addr", "add", f"{address6}/{UNDERLAY6.prefixlen}", "dev", "eth0", "nodad")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")

    def close(self) -> None:
        del_netns(self.ns)


def address(index: int, version: int = 4) -> str:
    """The underlay address of the ``index``-th namespace plugged in (from .2 or ::2, as docker
    gives), IPv4 or IPv6."""
    return str((UNDERLAY if version == 4 else UNDERLAY6).network_address + 2 + index)


@dataclass(frozen=True)
class Peer:
    """A node as the others route to it: its namespace, underlay address and pod CIDRs."""

    ns: str
    addresses: Sequence[str]  # one per family it routes
    pod_cidrs: Sequence[str]

    def via(self, cidr: str) -> str:
        """Its address of the family of ``cidr``."""
        version = ipaddress.ip_network(cidr).version
        (found,) = [a for a in self.addresses if ipaddress.ip_address(a).version == version]
        return found


def route_pod_cidrs(peers: Sequence[Peer]) -> None:
    """What kindnetd installs on every node: each other node's pod CIDRs via that node's address of
    the same family."""
    for node in peers:
        for other in peers:
            if other is not node:
                for cidr in other.pod_cidrs:
                    ip("-n", node.ns, "route", "add", cidr, "via", other.via(cidr))
