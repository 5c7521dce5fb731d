"""Gateways and default routes from an IPAM result: the pure part of the bridge's layer 3 setup."""

from __future__ import annotations

from cni.addrtext import IP, Cidr, offset
from cni.contract.result import IPConfig, Result, Route

CONTAINER_INDEX = 2  # result.interfaces = [bridge, host veth, container veth, ...]
_DEFAULT = {4: Cidr(raw=bytes(4), prefixlen=0), 6: Cidr(raw=bytes(16), prefixlen=0)}

# The result's addresses are `cni.addrtext` values (canonical text) or `ipaddress` objects (any
# other text a foreign IPAM printed): only what both answer is read here (version, packed,
# network, prefixlen), and what is made is an `addrtext` value.


def first_host(address) -> IP:
    """Network address + 1: the gateway the reference assumes when IPAM names none."""
    return IP(raw=offset(address.network.network_address.packed, 1))


def plan(result: Result, is_gateway: bool, is_default_gateway: bool) -> dict[int, list]:
    """Complete `result` in place and return the bridge's gateway addresses per family.

    Every IP is put on the container interface; with `is_gateway` an IP without a gateway
    gets network + 1; with `is_default_gateway` each family gets a default route through its
    first gateway unless IPAM returned a default route with a gateway. The returned
    addresses carry the container address's prefix (e.g. 10.1.0.1/24), in IPAM's order.
    """
    has_default = {
        family: any(r.gw is not None and r.dst.version == family and r.dst.prefixlen == 0
                    for r in result.routes)
        for family in _DEFAULT
    }
    gateways: dict[int, list] = {4: [], 6: []}
    for ip in result.ips:
        ip.interface = CONTAINER_INDEX
        if ip.gateway is None and is_gateway:
            ip.gateway = first_host(ip.address)
        family = ip.address.version
        if is_default_gateway and not has_default[family]:
            result.routes.append(Route(dst=_DEFAULT[family], gw=ip.gateway))
            has_default[family] = True
        if is_gateway and ip.gateway is not None:
            gw = Cidr(raw=ip.gateway.packed, prefixlen=ip.address.network.prefixlen)
            if gw not in gateways[family]:
                gateways[family].append(gw)
    return gateways


def first_gateways(ips: list[IPConfig]) -> dict[int, object]:
    """The first gateway of each family: routes without `gw` use it (as the reference does)."""
    out: dict[int, object] = {}
    for ip in ips:
        if ip.gateway is not None and ip.gateway.version not in out:
            out[ip.gateway.version] = ip.gateway
    return out
