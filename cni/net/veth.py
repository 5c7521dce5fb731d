"""A veth pair between a container's namespace and the host's, its host end under a random name.

The host end is named `<prefix>` + 8 random hex digits, as the reference plugins name theirs; a
name already taken on the host is retried with another. As the reference's since v1.7, the host
end has no transmit queue length and takes no IPv6 router advertisements (the plugin owns its
routes); the container end keeps the kernel's default queue length.
"""

from __future__ import annotations

import errno

from cni import sysapi
from cni.net import link, netns, sysctl
from cni.net.netlink import Handle

ATTEMPTS = 10
HOST_END_TXQLEN = 0


class NameTaken(FileExistsError):
    """The container end's name is already taken in the container's namespace."""


def create_pair(host: Handle, cont: Handle, ifname: str, mtu: int | None = None, mac: str | None = None,
                prefix: str = "veth") -> tuple[link.Link, link.Link]:
    """Create the pair from the container's side: `ifname` in `cont`, a random name in the host's.

    Returns (host end, container end). NameTaken if `ifname` exists in the container; OSError
    for any other failure, FileExistsError when ATTEMPTS random host names were all taken.
    """
    if link.get_link(cont, ifname) is not None:
        raise NameTaken(errno.EEXIST, f"container veth name {ifname!r} already exists")
    host_fd = sysapi.open(netns.SELF_NETNS, sysapi.O_RDONLY | sysapi.O_CLOEXEC)
    try:
        for _ in range(ATTEMPTS):
            host_name = prefix + sysapi.urandom(4).hex()
            try:
                inner = link.create_veth(cont, ifname, host_name, peer_netns_fd=host_fd, mtu=mtu, mac=mac,
                                         peer_txqlen=HOST_END_TXQLEN)
            except FileExistsError:
                if link.get_link(cont, ifname) is not None:
                    raise NameTaken(errno.EEXIST, f"container veth name {ifname!r} already exists") from None
                continue
            outer = link.get_link(host, host_name)
            if outer is None:
                try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
                    link.delete_link(cont, inner.index)
                except OSError:
                    pass
                raise OSError(errno.ENODEV, f"{host_name!r} is not in the host namespace after creation")
            sysctl.try_write(sysctl.conf_key("ipv6", host_name, "accept_ra"), "0")
            return outer, inner
    finally:
        sysapi.close(host_fd)
    raise FileExistsError(errno.EEXIST, f"{ATTEMPTS} random host names for the veth pair were all taken")


def delete_container_end(path: str, ifname: str) -> None:
    """Delete the pair through its container end `ifname` in the namespace at `path` (the host end
    goes with it). A namespace gone, or no longer a network namespace (an unmounted bind target),
    or an interface already gone is nothing to do; any other failure is an OSError."""
    try:
        h = netns.open_handle(path)
    except FileNotFoundError:
        return  # the namespace is gone, and the veth pair with it
    except OSError as e:
        if e.errno == errno.EINVAL:
            return
        raise
    with h:
        dev = link.get_link(h, ifname)
        if dev is not None:
            try:
                link.delete_link(h, dev.index)
            except OSError as e:
                if e.errno != errno.ENODEV:  # deleted concurrently
                    raise
