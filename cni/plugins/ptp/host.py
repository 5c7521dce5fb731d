"""The host side of a ptp attachment: the veth pair, the gateway addresses and host routes on its
host end (IP forwarding is `cni.contract.veth_attachment`'s). Each function is one step of ADD
and raises CNIError naming what failed."""

from __future__ import annotations

from cni.contract.errors import internal as fail
from cni.net import addr, link, route, sysctl, veth
from cni.net.netlink import Handle

from .routes import host_prefix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.result import IPConfig


def create_pair(host: Handle, cont: Handle, ifname: str, mtu: int | None) -> tuple[link.Link, link.Link]:
    """The veth pair, its host end up and not accepting router advertisements (it owns its routes)."""
    try:
        outer, inner = veth.create_pair(host, cont, ifname, mtu)
    except veth.NameTaken:
        raise fail(f'container veth name "{ifname}" already exists',
                   "CNI_IFNAME is already taken in the container's namespace") from None
    except OSError as e:
        raise fail(f"failed to make veth pair: {e}", e) from None
    try:
        link.set_link(host, outer.index, up=True)
    except OSError as e:
        try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
            link.delete_link(cont, inner.index)
        except OSError:
            pass
        raise fail(f'failed to set "{outer.name}" up: {e}', e) from None
    sysctl.try_write(sysctl.conf_key("ipv6", outer.name, "accept_ra"), "0")
    return outer, inner


def configure_host_end(host: Handle, outer: link.Link, ips: list[IPConfig]) -> None:
    """Each gateway as a single address on the host end, and a host route to each container address."""
    for ip in ips:
        gw = host_prefix(ip.gateway)
        try:
            addr.add_address(host, outer.index, gw)
        except OSError as e:
            raise fail(f"failed to add IP addr {gw} to veth {outer.name}: {e}", e) from None
        dst = host_prefix(ip.address)
        try:
            route.add_route(host, dst, oif=outer.index, scope=route.RT_SCOPE_HOST)
        except FileExistsError:
            pass
        except OSError as e:
            raise fail(f"failed to add route on host: {dst} dev {outer.name}: {e}", e) from None
