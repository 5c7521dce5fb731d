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

    def plug(self, ns: str, address: str) -> None:
        """A veth from namespace ``ns`` (named eth0 there, like a kind node's) to the bridge."""
        outer, inner = unique_ifname("pul"), unique_ifname("pun")
        mtu = str(self.mtu)
        ip("link", "add", outer, "mtu", mtu, "netns", self.ns, "type", "veth",
           "peer", "name", inner, "mtu", mtu, "netns", ns)
        ip("-n", self.ns, "link", "set", outer, "master", BRIDGE, "up")
        ip("-n", ns, "link", "set", inner, "name", "eth0")
        ip("-n", ns, "addr", "add", f"{address}/{UNDERLAY.prefixlen}", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")

    def close(self) -> None:
        del_netns(self.ns)


def address(index: int) -> str:
    """The underlay address of the ``index``-th namespace plugged in (from .2, as docker gives)."""
    return str(UNDERLAY.network_address + 2 + index)


@dataclass(frozen=True)
class Peer:
    """A node as the others route to it: its namespace, underlay address and pod CIDRs."""

    ns: str
    address: str
    pod_cidrs: Sequence[str]


def route_pod_cidrs(peers: Sequence[Peer]) -> None:
    """What kindnetd installs on every node: each other node's pod CIDRs via that node's address."""
    for node in peers:
        for other in peers:
            if other is not node:
                for cidr in other.pod_cidrs:
                    ip("-n", node.ns, "route", "add", cidr, "via", other.address)
