"""The point-to-point layout of one attachment, from the IPAM result (pure).

A veth cannot be IFF_POINTOPOINT, so the reference makes it behave like one: the container's
address keeps its prefix (10.1.0.5/24) but the kernel's on-link route of that prefix is replaced
by a /32 route to the gateway and a route to the prefix through the gateway; all traffic goes to
the host end, which holds the gateway as a /32 and a host route back to the container.
"""

from __future__ import annotations

from cni.addrtext import Cidr
from cni.contract.errors import internal as fail
from cni.contract.result import IPConfig, Result

CONTAINER_INDEX = 1  # result.interfaces = [host veth, container veth]


def host_prefix(address) -> Cidr:
    """The single-address prefix of `address` (an IP or the address of an interface)."""
    raw = address.packed if hasattr(address, "packed") else address.ip.packed
    return Cidr(raw=raw, prefixlen=len(raw) * 8)


def subnet(ip: IPConfig) -> Cidr:
    """The prefix of the container's address (10.1.0.0/24 for 10.1.0.5/24)."""
    net = ip.address.network
    return Cidr(raw=net.network_address.packed, prefixlen=net.prefixlen)


def complete(result: Result) -> None:
    """Every address goes on the container interface; each must have a gateway: the host end is it."""
    for ip in result.ips:
        if ip.gateway is None:
            raise fail(f"IPAM returned no gateway for {ip.address}",
                       "ptp routes everything through the gateway on the host end; give the range one")
        ip.interface = CONTAINER_INDEX


def families(result: Result) -> list[int]:
    """The address families of the result, in order of first appearance."""
    out: list[int] = []
    for ip in result.ips:
        if ip.version not in out:
            out.append(ip.version)
    return out
