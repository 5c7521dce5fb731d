"""route_localnet for 127.0.0.1:hostPort: on the one host interface a pod is reached through, and
off again with the last attachment that needed it, if portmap was the one that turned it on.

The DNAT of a connection to 127.0.0.1:hostPort keeps its 127.0.0.1 source (the masquerade comes
after routing), and the kernel drops such a packet on the way out unless the interface it leaves
through has route_localnet. That interface is where the previous plugin connected the pod (the
bridge, ptp's host veth). Anywhere else, the uplink above all, route_localnet would let the LAN
reach the node's 127.0.0.0/8 services (CVE-2020-8558), so an interface that the previous plugin
did not report, that reaches the pod through a gateway or that carries a default route is left
alone.

Who turned it on and which attachments need it is kept in a record per interface
(cni.layout.portmap), under the node-wide portmap lock: a value found on is someone else's and
is never turned off; a value portmap turned on goes off when the record's last attachment goes.
"""

from __future__ import annotations

from cni import safeopen, sysapi
from cni.layout import portmap as layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.net.route import KernelRoute

_RECORD_LIMIT = 1 << 20


def route_to(routes: list[KernelRoute], ip: object) -> KernelRoute | None:
    """The main table's most specific route to `ip` when it is on-link through an interface: None
    when the best route has a gateway or is a default route (the pod is not behind this host's
    own link there)."""
    best = None
    for r in routes:
        if r.oif and ip in r.dst and (best is None or r.dst.prefixlen > best.dst.prefixlen):
            best = r
    if best is None or best.gw is not None or best.dst.prefixlen == 0:
        return None
    return best


def interface_for(ip: object, host_ifnames: set[str] | None) -> tuple[int, str] | None:
    """(ifindex, name) of the interface to turn route_localnet on for the pod at `ip`, else None.

    Never an interface that carries a default route. `host_ifnames`: the host-side interfaces the
    previous plugin reported, one of which it must be (None when its result lists no interfaces at
    all, as 0.2.0 results do)."""
    from cni.net import link, route
    from cni.net.netlink import Handle

    with Handle() as h:
        routes = route.list_routes(h, 4)
        best = route_to(routes, ip)
        dev = link.get_link(h, best.oif) if best is not None and best.oif else None
    if dev is None or any(r.oif == dev.index and r.dst.prefixlen == 0 for r in routes):
        return None  # the uplink, whatever prevResult says of it
    if host_ifnames is not None and dev.name not in host_ifnames:
        return None
    return dev.index, dev.name


def _netns_inode() -> int:
    return sysapi.stat("/proc/self/ns/net").st_ino


def _read(path: str) -> tuple[str, set[str]] | None:
    try:
        return layout.parse_localnet_record(safeopen.read_regular(path, _RECORD_LIMIT))
    except FileNotFoundError:
        return None


def _write(path: str, set_by: str, keys: set[str]) -> None:
    """Replace the record at once (a new file renamed over it)."""
    tmp = f"{path}.tmp"
    try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
        sysapi.unlink(tmp)  # left by a killed call
    except FileNotFoundError:
        pass
    fd = safeopen.open_regular(tmp, sysapi.O_WRONLY | sysapi.O_CREAT | sysapi.O_EXCL, 0o600, follow=False)
    try:
        sysapi.write(fd, layout.localnet_record(set_by, keys))
    finally:
        sysapi.close(fd)
    sysapi.replace(tmp, path)


def _key(ifname: str) -> str:
    from cni.net import sysctl

    return sysctl.conf_key("ipv4", ifname, "route_localnet")


def enable(ip: object, host_ifnames: set[str] | None, attachment: str) -> None:
    """Turn route_localnet on where the pod at `ip` needs it and record `attachment` as needing it."""
    from cni.flock import node_lock
    from cni.net import sysctl

    found = interface_for(ip, host_ifnames)
    if found is None:
        return
    index, name = found
    path = sysapi.join(layout.LOCALNET_DIR, layout.localnet_record_name(_netns_inode(), index, name))
    with node_lock("portmap"):
        safeopen.makedirs(layout.LOCALNET_DIR, 0o700)
        record = _read(path)
        on = sysctl.read(_key(name)) == "1"
        set_by = layout.SET_BY_PYCNI if not on else record[0] if record else layout.SET_BY_OTHER
        _write(path, set_by, (record[1] if record else set()) | {attachment})
        if not on:
            sysctl.write(_key(name), 1)


def release(keep: object) -> None:
    """Drop the attachments `keep(key)` refuses from every record of this namespace; where none is
    left, turn route_localnet off if portmap turned it on (and the interface is still the one
    the record names), and remove the record."""
    from cni.flock import node_lock
    from cni.net import link, sysctl
    from cni.net.netlink import Handle

    try:
        with sysapi.scandir(layout.LOCALNET_DIR) as listing:
            names = [e.name for e in listing if not e.name.endswith(".tmp")]
    except FileNotFoundError:
        return
    inode = _netns_inode()
    with node_lock("portmap"):
        for entry in names:
            parsed = layout.parse_localnet_record_name(entry)
            if parsed is None or parsed[0] != inode:
                continue
            path = sysapi.join(layout.LOCALNET_DIR, entry)
            try:
                record = _read(path)
            except OSError as e:  # not a file we wrote: DEL must not fail on it for ever
                import sys

                sys.stderr.write(f"portmap: route_localnet record {path} skipped: {e}\n")
                continue
            if record is None:
                continue
            set_by, keys = record
            left = {k for k in keys if keep(k)}  # type: ignore[operator]
            if left == keys:
                continue
            if left:
                _write(path, set_by, left)
                continue
            with Handle() as h:
                dev = link.get_link(h, parsed[1])
            if set_by == layout.SET_BY_PYCNI and dev is not None and dev.name == parsed[2]:
                sysctl.try_write(_key(dev.name), 0)
            sysapi.unlink(path)
