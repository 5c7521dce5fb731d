"""The host end of the container's veth, which bandwidth shapes: found from the container side."""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.result import Result
from cni.net import link
from cni.net.netlink import Handle
from cni.net.netns import open_handle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def host_veth(req: Request, prev: Result, host: Handle) -> link.Link:
    """The host end of CNI_IFNAME's veth, which must also be a host interface of prevResult."""
    if not prev.interfaces:
        raise CNIError(INVALID_CONFIG, "prevResult has no interfaces",
                       "bandwidth needs the host-side veth listed in the previous plugin's result")
    with open_handle(req.netns) as cont:
        inner = link.get_link(cont, req.ifname)
    if inner is None:
        raise CNIError(INVALID_CONFIG, f"no interface {req.ifname} in the container namespace",
                       f"CNI_NETNS={req.netns}")
    if inner.kind != "veth" or not inner.link:
        raise CNIError(INVALID_CONFIG, f"container interface {req.ifname} has no veth peer",
                       f"it is of kind {inner.kind or 'unknown'!r}")
    peer = link.get_link(host, inner.link)
    if peer is None or peer.kind != "veth" or peer.link != inner.index:
        raise CNIError(INVALID_CONFIG, f"veth peer with index {inner.link} is not in the host namespace",
                       f"peer of {req.ifname} in {req.netns}")
    if not any(i.name == peer.name and not i.sandbox for i in prev.interfaces):
        listed = ", ".join(i.name for i in prev.interfaces if not i.sandbox) or "none"
        raise CNIError(INVALID_CONFIG, f"no veth peer of container interface found in host ns: "
                       f"{peer.name} is not a host interface of prevResult", f"host interfaces: {listed}")
    return peer
