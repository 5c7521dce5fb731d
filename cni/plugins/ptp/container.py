"""The container side of a ptp attachment: IPv6 sysctls, addresses, link up, DAD, the IPAM routes,
then the point-to-point routes through the gateway (see routes.py)."""

from __future__ import annotations

import sys

from cni.contract import veth_attachment
from cni.contract.errors import internal as fail
from cni.contract.result import IPConfig, Route
from cni.net import addr, link, netns, route, sysctl
from cni.net.netlink import Handle

from .routes import host_prefix, subnet

SETTLE_SECONDS = 5.0


def configure(cont: Handle, path: str, dev: link.Link, ips: list[IPConfig], routes: list[Route]) -> None:
    """Everything in the container's namespace after the veth pair exists, in the reference's order."""
    ifname = dev.name
    if any(ip.version == 6 for ip in ips):
        with netns.entered(path):
            _enable_ipv6(ifname)
    veth_attachment.address_and_up(cont, dev, ips)
    gws: dict[int, object] = {}
    for ip in ips:
        if ip.gateway is not None:  # each has one (routes.complete)
            gws.setdefault(ip.gateway.version, ip.gateway)
    if 6 in gws:
        try:
            addr.wait_settled(cont, dev.index, SETTLE_SECONDS)
        except OSError as e:
            raise fail(f'failed to settle addresses for "{ifname}": {e}', e) from None
    for r in routes:
        _add(cont, dev, r.dst, r.gw if r.gw is not None else gws.get(r.dst.version), scope=r.scope,
             table=r.table, priority=r.priority, mtu=r.mtu, advmss=r.advmss)
    for ip in ips:
        _point_to_point(cont, dev, ip)


def _point_to_point(cont: Handle, dev: link.Link, ip: IPConfig) -> None:
    """Replace the on-link route of the address's prefix by one through the gateway."""
    prefix = subnet(ip)
    try:
        route.delete_route(cont, prefix, oif=dev.index)
    except OSError as e:
        raise fail(f"failed to delete route {prefix} dev {dev.name}: {e}", e) from None
    src = ip.address.ip
    _add(cont, dev, host_prefix(ip.gateway), None, scope=route.RT_SCOPE_LINK, src=src, exist_ok=False)
    _add(cont, dev, prefix, ip.gateway, scope=route.RT_SCOPE_UNIVERSE, src=src, exist_ok=False)


def _add(cont: Handle, dev: link.Link, dst, gw, exist_ok: bool = True, **kw) -> None:
    try:
        route.add_route(cont, dst, gw=gw, oif=dev.index, **kw)
    except FileExistsError:
        if not exist_ok:
            raise fail(f"failed to add route {dst} dev {dev.name}: it exists already") from None
    except OSError as e:
        via = f" via {gw}" if gw is not None else ""
        raise fail(f"failed to add route '{dst}{via} dev {dev.name}': {e}", e) from None


def _enable_ipv6(ifname: str) -> None:
    """IPv6 on for `lo` and the interface, and its addresses kept when it goes down."""
    for name in ("lo", ifname):
        key = sysctl.conf_key("ipv6", name, "disable_ipv6")
        try:
            if sysctl.read(key) == "0":
                continue
        except OSError as e:
            sys.stderr.write(f"ptp: failed to read sysctl {key!r}: {e}\n")
            continue
        try:
            sysctl.write(key, "0")
        except OSError as e:
            raise fail(f'failed to enable IPv6 for interface "{name}": {e}', e) from None
    key = sysctl.conf_key("ipv6", ifname, "keep_addr_on_down")
    try:
        sysctl.write(key, "1")
    except OSError as e:
        raise fail(f'failed to enable keep_addr_on_down for interface "{ifname}": {e}', e) from None
