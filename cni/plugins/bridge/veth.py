"""The veth pair of an attachment: its creation, the host end as a bridge port, the wait for it to be up."""

from __future__ import annotations

import os
import time

from cni.net import bridge_port, link, netns
from cni.net.netlink import Handle

from .config import PortPlan
from .errors import fail

VETH_ATTEMPTS = 10
PORT_UP_WAITS = (0, 0.05, 0.5, 1.0, 1.0)  # seconds, the reference's schedule


def create_veth(host: Handle, cont: Handle, ifname: str, mtu: int | None, mac: str | None,
                prefix: str = "veth") -> tuple[link.Link, link.Link]:
    """A veth pair: `ifname` in the container's namespace, a random `veth%08x` in the host's.

    Returns (host end, container end). A taken host name is retried; a taken `ifname` is an error.
    """
    if link.get_link(cont, ifname) is not None:
        raise fail(f'container veth name "{ifname}" already exists',
                   "CNI_IFNAME is already taken in the container's namespace")
    host_fd = os.open(netns.SELF_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _ in range(VETH_ATTEMPTS):
            host_name = prefix + os.urandom(4).hex()
            try:
                inner = link.create_veth(cont, ifname, host_name, peer_netns_fd=host_fd, mtu=mtu, mac=mac)
            except FileExistsError:
                if link.get_link(cont, ifname) is not None:
                    raise fail(f'container veth name "{ifname}" already exists') from None
                continue
            outer = link.get_link(host, host_name)
            if outer is None:
                raise fail(f"failed to lookup {host_name!r}: not in the host namespace after creation")
            return outer, inner
    except OSError as e:
        raise fail(f"failed to create veth pair {ifname!r}: {e}", e) from None
    finally:
        os.close(host_fd)
    raise fail(f"failed to create veth pair {ifname!r}: {VETH_ATTEMPTS} random host names were all taken")


def attach_port(h: Handle, port: link.Link, br: link.Link, plan: PortPlan) -> None:
    """Bring the host end up on the bridge with the port flags and VLANs of `plan`."""
    name = port.name
    try:
        link.set_link(h, port.index, master=br.index, up=True)
    except OSError as e:
        raise fail(f'failed to connect "{name}" to bridge {br.name}: {e}', e) from None
    try:
        if plan.hairpin or plan.isolated:
            bridge_port.set_bridge_port(h, port.index, hairpin=plan.hairpin or None,
                                        isolated=plan.isolated or None)
    except OSError as e:
        raise fail(f"failed to setup hairpin mode or isolation for {name}: {e}", e) from None
    try:
        if plan.drops_default_vlan:
            for v in bridge_port.bridge_vlans(h, port.index):
                bridge_port.bridge_vlan_del(h, port.index, v.vid)
        if plan.access_vlan:
            bridge_port.bridge_vlan_add(h, port.index, plan.access_vlan, pvid=True, untagged=True)
        for vid in plan.trunk_vlans or ():
            bridge_port.bridge_vlan_add(h, port.index, vid)
    except OSError as e:
        raise fail(f'failed to setup vlan tag on interface "{name}": {e}', e) from None


def wait_port_up(h: Handle, port: link.Link) -> link.Link:
    """The host end once it is operationally up (the reference's retry schedule)."""
    current = port
    for pause in PORT_UP_WAITS:
        if pause:
            time.sleep(pause)
        current = link.get_link(h, port.index)
        if current is None:
            raise fail(f'bridge port "{port.name}" disappeared')
        if current.operstate == "up":
            return current
    raise fail(f"bridge port in error state: {current.operstate}",
               f'"{port.name}" did not come up; is the container end down?')
