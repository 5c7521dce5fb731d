"""The bridge plugin's kernel steps: the bridge, the veth pair, VLANs, the container's addresses.

Each function does one step of ADD through `cni.net` and raises CNIError naming what failed,
with the reference plugin's wording where operators may grep for it.
"""

from __future__ import annotations

import fcntl
import os
import time

from cni.contract.errors import INTERNAL, CNIError
from cni.contract.result import IPConfig, Route
from cni.net import addr, bridge_port, link, netns, route, sysctl
from cni.net.netlink import Handle

from .bridge_config import BridgeConf
from .bridge_gateways import first_gateways

LOCK_DIR = "/run/pycni"
LOCK_FILE = f"{LOCK_DIR}/bridge.lock"  # one for all bridges: the sections it guards last milliseconds
VETH_ATTEMPTS = 10
PORT_UP_WAITS = (0, 0.05, 0.5, 1.0, 1.0)  # seconds, the reference's schedule
SETTLE_SECONDS = 5.0


def fail(msg: str, err: BaseException | str = "") -> CNIError:
    return CNIError(INTERNAL, msg, str(err))


class bridge_lock:  # a class, not @contextmanager: contextlib costs start-up time
    """Serialise bridge setup (of `name`) across concurrent plugin calls (flock in /run)."""

    def __init__(self, name: str) -> None:
        self.fd = -1

    def __enter__(self) -> None:
        try:
            os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
            self.fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # no writable /run: EEXIST tolerance alone keeps concurrent setup correct
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            self.fd = -1
            raise

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _quiet_sysctl(key: str, value: str) -> None:
    try:  # noqa: SIM105 - contextlib costs start-up time
        sysctl.write(key, value)
    except OSError:
        pass


# ---- the bridge --------------------------------------------------------------------------------
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
        _quiet_sysctl(sysctl.conf_key("ipv6", name, "accept_ra"), "0")  # we own its routes
        if not br.up:
            link.set_link(h, br.index, up=True)
        return br
    except OSError as e:
        raise fail(f'failed to create bridge "{name}": {e.strerror or e}', e) from None


def ensure_address(h: Handle, dev: link.Link, gw, force: bool) -> None:
    """Put gateway address `gw` on `dev`: another IPv4 address (or an overlapping IPv6 one) is an
    error unless `force`, which replaces it. Already there (or added concurrently) is fine."""
    try:
        for a in addr.list_addresses(h, index=dev.index, family=gw.version):
            if a.ip == gw:
                return
            if gw.version == 6 and a.ip.is_link_local:
                continue
            overlaps = gw.version == 4 or gw.ip in a.ip.network or a.ip.ip in gw.network
            if not overlaps:
                continue
            if not force:
                raise fail(f'"{dev.name}" already has an IP address different from {gw}',
                           f"it has {a.ip}; set forceAddress to replace it")
            addr.delete_address(h, dev.index, a.ip)
        try:  # noqa: SIM105 - contextlib costs start-up time
            addr.add_address(h, dev.index, gw)
        except FileExistsError:
            pass
    except OSError as e:
        raise fail(f'failed to set bridge addr: could not add IP address to "{dev.name}": {e}', e) from None


def freeze_mac(h: Handle, dev: link.Link) -> None:
    """Set the bridge's MAC to itself: otherwise it follows the lowest port MAC as ports churn.

    A bridge whose last port went away (e.g. after a failed ADD) has the all-zero MAC, which the
    kernel refuses; it gets a random locally administered one instead of failing.
    """
    mac = dev.mac
    if not mac or mac == "00:00:00:00:00:00":
        raw = bytearray(os.urandom(6))
        raw[0] = (raw[0] & 0xFE) | 0x02
        mac = ":".join(f"{b:02x}" for b in raw)
    try:
        link.set_link(h, dev.index, mac=mac)
    except OSError as e:
        raise fail(f"could not set bridge's mac: {e}", e) from None


def enable_forwarding(version: int) -> None:
    key = "net/ipv4/ip_forward" if version == 4 else "net/ipv6/conf/all/forwarding"
    try:
        if sysctl.read(key) != "1":
            sysctl.write(key, "1")
    except OSError as e:
        raise fail(f"failed to enable forwarding: {e}", e) from None


# ---- the veth pair -------------------------------------------------------------------------------
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


def attach_port(h: Handle, port: link.Link, br: link.Link, conf: BridgeConf, vlan: int,
                vlans: list[int] | None) -> None:
    """Bring the host end up on the bridge with its port flags and VLANs."""
    name = port.name
    try:
        link.set_link(h, port.index, master=br.index, up=True)
    except OSError as e:
        raise fail(f'failed to connect "{name}" to bridge {br.name}: {e}', e) from None
    try:
        if conf.hairpin or conf.port_isolation:
            bridge_port.set_bridge_port(h, port.index, hairpin=conf.hairpin or None,
                                 isolated=conf.port_isolation or None)
    except OSError as e:
        raise fail(f"failed to setup hairpin mode or isolation for {name}: {e}", e) from None
    try:
        if (vlan or vlans) and not conf.preserve_default_vlan:
            for v in bridge_port.bridge_vlans(h, port.index):
                bridge_port.bridge_vlan_del(h, port.index, v.vid)
        if vlan:
            bridge_port.bridge_vlan_add(h, port.index, vlan, pvid=True, untagged=True)
        for vid in vlans or ():
            bridge_port.bridge_vlan_add(h, port.index, vid)
    except OSError as e:
        raise fail(f'failed to setup vlan tag on interface "{name}": {e}', e) from None


def ensure_vlan_gateway(h: Handle, br: link.Link, conf: BridgeConf) -> link.Link:
    """`<bridge>.<vlan>`: a host veth whose peer is an access port of the VLAN, for its gateway."""
    name = f"{br.name}.{conf.vlan}"
    existing = link.get_link(h, name)
    if existing is not None:
        return existing
    try:
        outer, inner = create_veth(h, h, name, br.mtu, None)
    except CNIError as e:
        raise fail(f'failed to create vlan gateway "{name}": {e.msg}', e.details) from None
    attach_port(h, outer, br, _without_port_flags(conf), conf.vlan, None)
    try:
        link.set_link(h, inner.index, up=True)
    except OSError as e:
        raise fail(f'failed to up "{name}": {e}', e) from None
    return link.get_link(h, inner.index) or inner


def _without_port_flags(conf: BridgeConf) -> BridgeConf:
    plain = BridgeConf(**{k: getattr(conf, k) for k in BridgeConf.__slots__})
    plain.hairpin = False
    plain.port_isolation = False
    return plain


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


# ---- the container's side ---------------------------------------------------------------------
def configure_container(cont: Handle, path: str, dev: link.Link, ips: list[IPConfig],
                        routes: list[Route], enable_dad: bool) -> None:
    """Sysctls, addresses, link up, DAD settling and routes of the container interface."""
    ifname = dev.name
    with netns.entered(path):
        if enable_dad:
            _quiet_sysctl(sysctl.conf_key("ipv6", ifname, "enhanced_dad"), "1")
            _quiet_sysctl(sysctl.conf_key("ipv6", ifname, "accept_dad"), "1")
        else:
            _quiet_sysctl(sysctl.conf_key("ipv6", ifname, "accept_dad"), "0")
        _quiet_sysctl(sysctl.conf_key("ipv4", ifname, "arp_notify"), "1")
        if any(ip.version == 6 for ip in ips):
            _enable_ipv6(("lo", ifname))
    for ip in ips:
        try:
            addr.add_address(cont, dev.index, ip.address)
        except OSError as e:
            raise fail(f'failed to add IP addr {ip.address} to "{ifname}": {e}', e) from None
    try:
        link.set_link(cont, dev.index, up=True)
    except OSError as e:
        raise fail(f'failed to set "{ifname}" UP: {e}', e) from None
    gws = first_gateways(ips)
    if 6 in gws:
        settle(cont, dev.index, ifname)
    for r in routes:
        gw = r.gw if r.gw is not None else gws.get(r.dst.version)
        try:
            route.add_route(cont, r.dst, gw=gw, oif=dev.index, scope=r.scope, table=r.table,
                           priority=r.priority, mtu=r.mtu, advmss=r.advmss)
        except FileExistsError:
            pass
        except OSError as e:
            via = f" via {gw}" if gw is not None else ""
            raise fail(f"failed to add route '{r.dst}{via} dev {ifname}': {e}", e) from None


def _enable_ipv6(names: tuple[str, ...]) -> None:
    for name in names:
        key = sysctl.conf_key("ipv6", name, "disable_ipv6")
        try:
            if sysctl.read(key) == "0":
                continue
        except OSError:
            continue
        try:
            sysctl.write(key, "0")
            _quiet_sysctl(sysctl.conf_key("ipv6", name, "keep_addr_on_down"), "1")
        except OSError as e:
            raise fail(f'failed to enable IPv6 for interface "{name}": {e}', e) from None


def settle(h: Handle, index: int, ifname: str) -> None:
    """Wait (up to 5 s) until no IPv6 address of the link is tentative; a failed DAD is an error."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        addrs = addr.list_addresses(h, index=index, family=6)
        failed = [str(a.ip) for a in addrs if a.dadfailed]
        if failed:
            raise fail(f"failed to settle addresses on {ifname}: duplicate address detected",
                       ", ".join(failed))
        if not any(a.tentative for a in addrs) or time.monotonic() >= deadline:
            return
        time.sleep(0.05)
