"""bandwidth's kernel steps: the tbf qdiscs, the IFB device and the redirect of egress traffic to it."""

from __future__ import annotations

import errno

from cni.contract.errors import INTERNAL, CNIError
from cni.net import link, tc
from cni.net.netlink import Handle
from cni.undo import Undo

from . import shaping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request

IFB_MIN_TXQLEN = 1000  # as the reference: never a zero-length queue on the IFB


def add_root_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
    try:
        tc.add_tbf(host, dev.index, b.rate, b.buffer, b.limit)
    except FileExistsError:
        roots = [q.kind for q in tc.list_qdiscs(host, dev.index) if q.parent == tc.TC_H_ROOT]
        raise CNIError(INTERNAL, f"cannot add the {what} tbf on {dev.name}: it already has a root qdisc "
                       f"({', '.join(roots) or 'unknown'})", "another tool shapes this interface") from None


def add_egress(req: Request, host: Handle, veth: link.Link, b: shaping.Bucket, undo: Undo) -> link.Link:
    """IFB with its tbf first, then the redirect: no moment in which egress runs unshaped through it."""
    name = shaping.ifb_name(req.name, req.container_id)
    try:
        ifb = link.create_ifb(host, name, mtu=veth.mtu, txqlen=max(veth.txqlen, IFB_MIN_TXQLEN), up=True,
                              alias=shaping.ifb_alias(req.name, req.container_id),
                              temp_name=shaping.ifb_temp_name(req.name, req.container_id))
    except FileExistsError:
        raise CNIError(INTERNAL, f"IFB device {name} already exists",
                       f"network {req.name!r}, container {req.container_id}: DEL the attachment first",
                       ) from None
    undo.push(f"delete {name}", lambda: delete_link(host, ifb.index))
    add_root_tbf(host, ifb, b, "egress")
    parent = ingress_hook(host, veth, undo)
    clash = [f for f in tc.list_filters(host, veth.index, parent)
             if f.prio == 1 and f.protocol == tc.ETH_P_ALL]
    if clash:
        raise CNIError(INTERNAL, f"{veth.name} already has an ingress filter at priority 1 "
                       f"({clash[0].kind}); it would decide before or instead of the redirect to {name}",
                       "another tool filters this interface's ingress")
    tc.add_mirred_redirect_filter(host, veth.index, ifb.index, parent=parent)
    return ifb


def ingress_hook(host: Handle, veth: link.Link, undo: Undo) -> int:
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
