"""The host side of an attachment: the bridge, the veth pair and its port, gateway addresses
(IP forwarding is `cni.contract.veth_attachment`'s).

Each function does one step of ADD through `cni.net` and raises CNIError naming what failed.
"""

from __future__ import annotations

import time

from cni import sysapi
from cni.contract.errors import CNIError
from cni.contract.errors import internal as fail
from cni.flock import FileLock, node_lock
from cni.layout import bridge as layout
from cni.net import addr, bridge_port, link, sysctl, veth
from cni.net.netlink import Handle

from .config import BridgeConf, PortPlan, vlan_gateway_port

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cni.addrtext import Cidr
    from cni.undo import Undo

PORT_UP_WAITS = (0, 0.05, 0.5, 1.0, 1.0)  # seconds, the reference's schedule


def bridge_lock() -> FileLock:
    """Serialise bridge setup (creation, gateway addresses, MAC) across concurrent plugin calls.

    One lock for every bridge name (/run/pycni/bridge.lock; the sections it guards last
    milliseconds). Without a writable /run there is no lock: tolerating EEXIST alone keeps
    concurrent setup correct.
    """
    return node_lock("bridge")


def ensure_bridge(h: Handle, conf: BridgeConf) -> link.Link:
    """The bridge, created (MTU, VLAN filtering) if missing, promiscuous if asked, and up."""
    name = conf.bridge
    try:
        br = link.get_link(h, name)
        if br is None:
            try:
                br = link.create_bridge(h, name, mtu=conf.mtu, vlan_filtering=conf.vlan_filtering)
            except FileExistsError:
                br = link.get_link(h, name)  # created by a concurrent ADD
            if br is None:
                raise fail(f'failed to create bridge "{name}": it vanished right after creation')
        if br.kind != "bridge":
            raise fail(f'failed to create bridge "{name}": "{name}" already exists but is not a bridge',
                       f"it is a {br.kind or 'device'} link; choose another bridge name")
        if conf.promisc and not br.promisc:
            link.set_link(h, br.index, promisc=True)
        sysctl.try_write(sysctl.conf_key("ipv6", name, "accept_ra"), "0")  # we own its routes
        if not br.up:
            link.set_link(h, br.index, up=True)
        return br
    except OSError as e:
        raise fail(f'failed to create bridge "{name}": {e.strerror or e}', e) from None


def ensure_address(h: Handle, dev: link.Link, gw: Cidr, force: bool, undo: Undo | None = None,
                   what: str = "failed to set bridge addr") -> None:
    """Put gateway address `gw` (e.g. 10.1.0.1/24) on `dev`: another IPv4 address (or an
    overlapping IPv6 one) is an error unless `force`, which replaces it. Already there (or added
    concurrently) is fine.

    What `force` replaced is put back by `undo` if the ADD fails later: the bridge is left with
    the address it had, not with the one of an attachment that does not exist. `what` starts the
    error messages (the reference's words for the bridge or the `<bridge>.<vlan>` gateway)."""
    try:
        replaced = False
        for a in addr.list_addresses(h, index=dev.index, family=gw.version):
            have = a.cidr
            if have == gw:
                return
            if gw.version == 6 and have.ip.is_link_local:
                continue
            overlaps = gw.version == 4 or gw.ip in have or have.ip in gw
            if not overlaps:
                continue
            if not force:
                raise fail(f'{what}: "{dev.name}" already has an IP address different from {gw}',
                           f"it has {have}; set forceAddress to replace it")
            addr.delete_address(h, dev.index, have)
            replaced = True
            if undo is not None:
                undo.push(f"restore {have} on {dev.name}", _put_back(h, dev.index, have))
        try:
            addr.add_address(h, dev.index, gw)
        except FileExistsError:
            return
        if replaced and undo is not None:
            undo.push(f"remove {gw} from {dev.name}", lambda: addr.delete_address(h, dev.index, gw))
    except OSError as e:
        raise fail(f'{what}: could not add IP address {gw} to "{dev.name}": {e}', e) from None


def _put_back(h: Handle, index: int, cidr: Cidr) -> Callable[[], None]:
    """The undo step that adds `cidr` to link `index` again (bound now: the caller's loop moves on)."""
    return lambda: addr.add_address(h, index, cidr)


def freeze_mac(h: Handle, dev: link.Link) -> None:
    """Set the bridge's MAC to itself: otherwise it follows the lowest port MAC as ports churn.

    A bridge whose last port went away (e.g. after a failed ADD) has the all-zero MAC, which the
    kernel refuses; it gets a random locally administered one instead of failing.
    """
    mac = dev.mac
    if not mac or mac == "00:00:00:00:00:00":
        raw = bytearray(sysapi.urandom(6))
        raw[0] = (raw[0] & 0xFE) | 0x02
        mac = ":".join(f"{b:02x}" for b in raw)
    try:
        link.set_link(h, dev.index, mac=mac)
    except OSError as e:
        raise fail(f"could not set bridge's mac: {e}", e) from None


def create_veth(host: Handle, cont: Handle, ifname: str, mtu: int | None, mac: str | None,
                prefix: str = "veth") -> tuple[link.Link, link.Link]:
    """A veth pair: `ifname` in the container's namespace, a random `veth%08x` in the host's, as
    the reference makes them: the host end with txqueuelen 0 and `accept_ra=0`.

    Returns (host end, container end). A taken host name is retried; a taken `ifname` is an error.
    """
    try:
        return veth.create_pair(host, cont, ifname, mtu, mac, prefix)
    except veth.NameTaken:
        raise fail(f'container veth name "{ifname}" already exists',
                   "CNI_IFNAME is already taken in the container's namespace") from None
    except OSError as e:
        raise fail(f"failed to create veth pair {ifname!r}: {e}", e) from None


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
        for vid in plan.trunk_vlans or ():  # tagged; a VID that was the PVID loses that, as in the kernel
            bridge_port.bridge_vlan_add(h, port.index, vid)
        if plan.trunk_vlans and not plan.access_vlan:
            bridge_port.bridge_vlan_add(h, port.index, plan.native_vlan, pvid=True, untagged=True)
    except OSError as e:
        raise fail(f'failed to setup vlan tag on interface "{name}": {e}', e) from None


def wait_port_up(h: Handle, port: link.Link) -> link.Link:
    """The host end once it is operationally up (the reference's retry schedule)."""
    state = port.operstate
    for pause in PORT_UP_WAITS:
        if pause:
            time.sleep(pause)
        current = link.get_link(h, port.index)
        if current is None:
            raise fail(f'bridge port "{port.name}" disappeared')
        if current.operstate == "up":
            return current
        state = current.operstate
    raise fail(f"bridge port in error state: {state}",
               f'"{port.name}" did not come up; is the container end down?')


def ensure_vlan_gateway(h: Handle, br: link.Link, conf: BridgeConf) -> link.Link:
    """`<bridge>.<vlan>`: a host veth whose peer is an access port of the VLAN, for its gateway.

    Made under the bridge lock (two first ADDs of a VLAN would race otherwise) and tagged as ours
    (cni/layout/bridge.py). A device of that name without our tag is someone else's (an
    administrator's VLAN sub-interface, most often) and is used as it is, as the reference uses
    it. One of ours that an interrupted ADD left half-made (not a veth, down, or its peer not on
    this bridge) is deleted and made again instead.
    """
    name = layout.vlan_gateway_name(br.name, conf.access_vlan)
    alias = layout.vlan_gateway_alias(br.name, conf.access_vlan)
    with bridge_lock():
        existing = link.get_link(h, name)
        if existing is not None:
            ours = layout.is_our_vlan_gateway(existing.alias, br.name, conf.access_vlan)
            if not ours or _vlan_gateway_complete(h, existing, br):
                return existing
            try:
                link.delete_link(h, existing.index)  # its peer goes with it
            except OSError as e:
                raise fail(f'failed to replace the half-made vlan gateway "{name}": {e}', e) from None
        try:
            outer, inner = create_veth(h, h, name, br.mtu, None)
        except CNIError as e:
            raise fail(f'failed to create vlan gateway "{name}": {e.msg}', e.details) from None
        try:
            link.set_link(h, inner.index, alias=alias)
            attach_port(h, outer, br, vlan_gateway_port(conf))
            link.set_link(h, inner.index, up=True)
        except (OSError, CNIError) as e:
            try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
                link.delete_link(h, inner.index)  # never leave it half-made
            except OSError:
                pass
            if isinstance(e, CNIError):
                raise
            raise fail(f'failed to up "{name}": {e}', e) from None
        return link.get_link(h, inner.index) or inner


def _vlan_gateway_complete(h: Handle, gateway: link.Link, br: link.Link) -> bool:
    """A veth that is up, whose peer is an up port of `br`."""
    if gateway.kind != "veth" or not gateway.up or not gateway.link:
        return False
    peer = link.get_link(h, gateway.link)
    return peer is not None and peer.master == br.index and peer.up
