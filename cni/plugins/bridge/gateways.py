"""Gateways and default routes from an IPAM result: the pure part of the bridge's layer 3 setup."""

from __future__ import annotations

import ipaddress

from cni.contract.result import IPConfig, Result, Route

CONTAINER_INDEX = 2  # result.interfaces = [bridge, host veth, container veth, ...]
_DEFAULT = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def first_host(address: ipaddress.IPv4Interface | ipaddress.IPv6Interface):
    """Network address + 1: the gateway the reference assumes when IPAM names none."""
    return address.network.network_address + 1


def plan(result: Result, is_gateway: bool, is_default_gateway: bool) -> dict[int, list]:
    """Complete `result` in place and return the bridge's gateway addresses per family.

    Every IP is put on the container interface; with `is_gateway` an IP without a gateway
    gets network + 1; with `is_default_gateway` each family gets a default route through its
    first gateway unless IPAM returned a default route with a gateway. The returned
    addresses carry the container address's prefix (e.g. 10.1.0.1/24), in IPAM's order.
    """
    has_default = {
        family: any(r.gw is not None and r.dst == net for r in result.routes)
        for family, net in _DEFAULT.items()
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
            gw = ipaddress.ip_interface((ip.gateway, ip.address.network.prefixlen))
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
