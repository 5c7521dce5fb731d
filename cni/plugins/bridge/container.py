"""The container's side of an attachment: sysctls, addresses, link up, DAD settling and routes."""

from __future__ import annotations

from cni.contract import veth_attachment
from cni.contract.errors import internal as fail
from cni.contract.result import IPConfig, Route
from cni.net import addr, link, netns, route, sysctl
from cni.net.netlink import Handle

from .gateways import first_gateways

SETTLE_SECONDS = 5.0


def configure_container(cont: Handle, path: str, dev: link.Link, ips: list[IPConfig],
                        routes: list[Route], enable_dad: bool) -> None:
    """Sysctls, addresses, link up, DAD settling and routes of the container interface."""
    ifname = dev.name
    with netns.entered(path):
        _set_sysctls(ifname, enable_dad, any(ip.version == 6 for ip in ips))
    veth_attachment.address_and_up(cont, dev, ips)
    gws = first_gateways(ips)
    if 6 in gws:
        settle(cont, dev.index, ifname)
    for r in routes:
        _add_route(cont, dev, r, r.gw if r.gw is not None else gws.get(r.dst.version))


def _set_sysctls(ifname: str, enable_dad: bool, ipv6: bool) -> None:
    """DAD and arp_notify as the reference sets them; IPv6 turned on where it is needed."""
    if enable_dad:
        sysctl.try_write(sysctl.conf_key("ipv6", ifname, "enhanced_dad"), "1")
        sysctl.try_write(sysctl.conf_key("ipv6", ifname, "accept_dad"), "1")
    else:
        sysctl.try_write(sysctl.conf_key("ipv6", ifname, "accept_dad"), "0")
    sysctl.try_write(sysctl.conf_key("ipv4", ifname, "arp_notify"), "1")
    if ipv6:
        _enable_ipv6(ifname)


def _add_route(cont: Handle, dev: link.Link, r: Route, gw) -> None:
    """One route of the result through `dev` (a route already there is fine)."""
    try:
        route.add_route(cont, r.dst, gw=gw, oif=dev.index, scope=r.scope, table=r.table,
                        priority=r.priority, mtu=r.mtu, advmss=r.advmss)
    except FileExistsError:
        pass
    except OSError as e:
        via = f" via {gw}" if gw is not None else ""
        raise fail(f"failed to add route '{r.dst}{via} dev {dev.name}': {e}", e) from None


def _enable_ipv6(ifname: str) -> None:
    """IPv6 on for `lo` and the interface, and the interface's addresses kept while it is down
    (`keep_addr_on_down=1`, as the reference sets it since v1.7.0: a VM or a restart of the
    pod's network taking the link down does not lose them)."""
    for name in ("lo", ifname):
        key = sysctl.conf_key("ipv6", name, "disable_ipv6")
        try:
            if sysctl.read(key) == "0":
                continue
        except OSError:
            continue
        try:
            sysctl.write(key, "0")
        except OSError as e:
            raise fail(f'failed to enable IPv6 for interface "{name}": {e}', e) from None
    try:
        sysctl.write(sysctl.conf_key("ipv6", ifname, "keep_addr_on_down"), "1")
    except OSError as e:
        raise fail(f'failed to enable keep_addr_on_down for interface "{ifname}": {e}', e) from None


def settle(h: Handle, index: int, ifname: str) -> None:
    """Wait (up to 5 s) until no IPv6 address of the link is tentative; a failed DAD is an error,
    and so, as with the reference, is an address still tentative then on a link that is up."""
    try:
        addr.wait_settled(h, index, SETTLE_SECONDS)
    except OSError as e:
        raise fail(f'failed to settle addresses for "{ifname}": {e.strerror or e}') from None
