"""bandwidth's kernel steps: the host veth, tbf and ingress qdiscs, the IFB, the redirect filter.

Everything here reaches the kernel through `cni.net`; the figures come from `shaping`, the IFB's
name and tag from `cni.layout.bandwidth`.
"""

from __future__ import annotations

import errno

from cni.contract.errors import INTERNAL, INVALID_CONFIG, TRY_AGAIN_LATER, CNIError
from cni.layout import bandwidth as layout
from cni.net import link, tc
from cni.net.netns import open_handle

from . import shaping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result
    from cni.net.netlink import Handle
    from cni.undo import Undo

# As the reference v1.9.1: the IFB's transmit queue length is 0. Its tbf root qdisc keeps its own
# queue (limit bytes), so the device's queue length is never used.
IFB_TXQLEN = 0


# --- the host veth ---------------------------------------------------------------------------


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


# --- installing --------------------------------------------------------------------------------


def add_root_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
    try:
        tc.add_tbf(host, dev.index, b.rate, b.buffer, b.limit)
    except FileExistsError:
        roots = [q.kind for q in tc.list_qdiscs(host, dev.index) if q.parent == tc.TC_H_ROOT]
        raise CNIError(INTERNAL, f"cannot add the {what} tbf on {dev.name}: it already has a root qdisc "
                       f"({', '.join(roots) or 'unknown'})", "another tool shapes this interface") from None


def add_egress(req: Request, host: Handle, veth: link.Link, b: shaping.Bucket, undo: Undo) -> link.Link:
    """IFB with its tbf first, then the redirect: no moment in which egress runs unshaped through it."""
    name = layout.ifb_name(req.name, req.container_id)
    try:
        ifb = link.create_ifb(host, name, mtu=veth.mtu, txqlen=IFB_TXQLEN, up=True,
                              alias=layout.ifb_alias(req.name, req.container_id),
                              temp_name=layout.ifb_temp_name(req.name, req.container_id))
    except FileExistsError:
        raise _taken(req, host, name) from None
    undo.push(f"delete {name}", lambda: delete_link(host, ifb.index))
    add_root_tbf(host, ifb, b, "egress")
    parent = _ingress_hook(host, veth, undo)
    clash = [f for f in tc.list_filters(host, veth.index, parent)
             if f.prio == 1 and f.protocol == tc.ETH_P_ALL]
    if clash:
        raise CNIError(INTERNAL, f"{veth.name} already has an ingress filter at priority 1 "
                       f"({clash[0].kind}); it would decide before or instead of the redirect to {name}",
                       "another tool filters this interface's ingress")
    tc.add_mirred_redirect_filter(host, veth.index, ifb.index, parent=parent)
    return ifb


def _taken(req: Request, host: Handle, name: str) -> CNIError:
    """The error for an IFB name already in use: 11 when its tag records another attachment (that
    attachment's DEL frees the name), else 999 as before (this attachment's own, or unknown)."""
    found = link.get_link(host, name) or link.get_link(host, layout.ifb_temp_name(req.name, req.container_id))
    alias = found.alias if found is not None else None
    tag = layout.parse_alias(alias)
    if tag is not None and layout.owned_by(alias, req.name, req.container_id) is False:
        return CNIError(TRY_AGAIN_LATER, f"IFB device {name} belongs to network {tag.network!r} container "
                        f"{tag.container_id!r}",
                        f"network {req.name!r}, container {req.container_id}: the name hashes network and "
                        f"container ID run together; DEL that attachment first, or use another container ID")
    return CNIError(INTERNAL, f"IFB device {name} already exists",
                    f"network {req.name!r}, container {req.container_id}: DEL the attachment first")


def _ingress_hook(host: Handle, veth: link.Link, undo: Undo) -> int:
    """The parent for the redirect filter: an existing ingress or clsact qdisc is reused."""
    for q in tc.list_qdiscs(host, veth.index):
        if q.kind == "ingress" and q.parent == tc.TC_H_INGRESS:
            return tc.INGRESS_HANDLE
        if q.kind == "clsact" and q.parent == tc.TC_H_INGRESS:
            return tc.CLSACT_INGRESS
    tc.add_ingress_qdisc(host, veth.index)
    undo.push(f"delete the ingress qdisc of {veth.name}",
              lambda: tc.delete_qdisc(host, veth.index, parent=tc.TC_H_INGRESS))
    return tc.INGRESS_HANDLE


def os_message(err: OSError) -> str:
    """The kernel's answer without Python's "[Errno N]" prefix."""
    return err.args[1] if len(err.args) > 1 and isinstance(err.args[1], str) else str(err)


def delete_link(host: Handle, index: int) -> None:
    try:
        link.delete_link(host, index)
    except OSError as err:
        if err.errno != errno.ENODEV:
            raise


# --- reading back --------------------------------------------------------------------------------


def check_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
    roots = [q for q in tc.list_qdiscs(host, dev.index) if q.parent == tc.TC_H_ROOT]
    tbf = next((q for q in roots if q.kind == "tbf"), None)
    if tbf is None:
        raise CNIError(INTERNAL, f"{what} limit set but {dev.name} has no tbf root qdisc",
                       f"root qdisc: {', '.join(q.kind for q in roots) or 'none'}")
    for field, want in (("rate", b.rate), ("buffer", b.buffer), ("limit", b.limit)):
        got = getattr(tbf, field)
        if got != want:
            raise CNIError(INTERNAL, f"{what} tbf on {dev.name}: {field} is {got}, expected {want}",
                           "rate in bytes/s, buffer in scheduler ticks, limit in bytes")


def ingress_filters(host: Handle, index: int) -> list[tc.Filter]:
    out: list[tc.Filter] = []
    for q in tc.list_qdiscs(host, index):
        if q.parent != tc.TC_H_INGRESS:
            continue
        parent = tc.CLSACT_INGRESS if q.kind == "clsact" else tc.INGRESS_HANDLE
        out += tc.list_filters(host, index, parent)
    return out


def redirects_to(f: tc.Filter, target: int) -> bool:
    return any(a.kind == "mirred" and a.eaction == tc.TCA_EGRESS_REDIR and a.target == target
               for a in f.actions)


def redirect_targets(host: Handle) -> set[int]:
    """Every ifindex some link's ingress filter redirects to."""
    indexes = {q.index for q in tc.list_qdiscs(host) if q.parent == tc.TC_H_INGRESS}
    return {a.target for i in indexes for f in ingress_filters(host, i) for a in f.actions
            if a.kind == "mirred" and a.target is not None}
