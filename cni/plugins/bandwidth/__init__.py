"""bandwidth: limit a container's traffic with token buckets, chained after the plugin that made its veth.

ADD finds the host side of the container's veth, puts a tbf on it for traffic towards the
container (ingress), and for traffic from the container (egress) redirects everything arriving
on it to an IFB device that has its own tbf. The previous result is passed on with the IFB
appended. Figures come from `shaping`; the kernel is reached only through `cni.net`.
"""

from __future__ import annotations

import errno

from cni.contract.errors import INTERNAL, INVALID_CONFIG, CNIError
from cni.contract.request import Request
from cni.contract.result import Interface, Result
from cni.net import link, tc
from cni.net.netlink import Handle
from cni.net.netns import open_handle
from cni.undo import Undo

from . import shaping

TYPE = "bandwidth"
SCHEMA = "bandwidth"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
NEEDS_NETNS = True
READS_PREV_RESULT = True
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")  # a chained plugin needs prevResult (0.3.0+)

# As the reference v1.9.1: the IFB's transmit queue length is 0. Its tbf root qdisc keeps its own
# queue (limit bytes), so the device's queue length is never used.
IFB_TXQLEN = 0


def prev_result_as_text(command: str, config: dict) -> bool:
    """prevResult is only passed on (its interfaces read): its addresses may stay text when
    canonical, so a call needs no `ipaddress` (cni.contract.result.Result.from_json)."""
    return True


def add(req: Request) -> Result:
    limits = _limits(req)
    if limits is None:
        return req.prev_result if req.prev_result is not None else Result()
    prev = _need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = _host_veth(req, prev, host)
        undo = Undo("bandwidth")
        try:
            if limits.ingress:
                b = shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick)
                _add_root_tbf(host, veth, b, "ingress")
                undo.push(f"delete the ingress tbf of {veth.name}", lambda: tc.delete_qdisc(host, veth.index))
            if limits.egress:
                b = shaping.bucket(limits.egress_rate, limits.egress_burst, tick)
                ifb = _add_egress(req, host, veth, b, undo)
                prev.interfaces.append(Interface(name=ifb.name, mac=ifb.mac))
        except OSError as err:
            undo.run()
            raise CNIError(INTERNAL, _os_message(err), "nothing was left installed") from None
        except BaseException:
            undo.run()
            raise
    return prev


def delete(req: Request) -> None:
    """Remove the IFB device; the host veth's qdiscs go with the veth. Nothing there is fine."""
    names = (shaping.ifb_name(req.name, req.container_id), shaping.ifb_temp_name(req.name, req.container_id))
    with open_handle() as host:
        for name in names:  # the temporary name too: an ADD killed before tagging its IFB left that
            ifb = link.get_link(host, name)
            if ifb is not None and ifb.kind == "ifb":
                _delete_link(host, ifb.index)


def check(req: Request) -> None:
    """Compare what is installed with what ADD would install.

    Without limits there is nothing to check, as ADD then installs nothing and needs nothing (the
    reference v1.9.1 still wants prevResult and a veth here, so an unshaped pod on a non-veth
    chain fails its CHECK there).
    """
    limits = _limits(req)
    if limits is None:
        return
    prev = _need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = _host_veth(req, prev, host)
        if limits.ingress:
            _check_tbf(host, veth, shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick), "ingress")
        if limits.egress:
            name = shaping.ifb_name(req.name, req.container_id)
            ifb = link.get_link(host, name)
            if ifb is None or ifb.kind != "ifb":
                raise CNIError(INTERNAL, f"egress limit set but IFB device {name} is missing",
                               f"expected an ifb device named {name} in the host namespace")
            _check_tbf(host, ifb, shaping.bucket(limits.egress_rate, limits.egress_burst, tick), "egress")
            if not any(_redirects_to(f, ifb.index) for f in _ingress_filters(host, veth.index)):
                raise CNIError(INTERNAL, f"no redirect of {veth.name}'s traffic to {name}",
                               f"expected a u32 filter with mirred egress redirect to {name} on the "
                               f"ingress hook of {veth.name}")


def status(req: Request) -> None:
    """No state outside the attachments: always ready."""


def gc(req: Request) -> None:
    """Delete IFB devices of attachments the runtime no longer lists.

    Each IFB pycni makes is tagged with its network (`shaping.ifb_alias`). One tagged with this
    network is removed when its name is not one of the valid attachments' names; one tagged with
    another network is never touched, even before its redirect exists (that network's ADD may be
    running now: the runtime serialises GC only with ADD and DEL of the same network). An untagged
    `bwp*` IFB (the reference plugin's) cannot say which network made it: it is removed only when
    its name is not a valid one and no filter on any link still redirects traffic to it.
    """
    valid = {shaping.ifb_name(req.name, cid) for cid, _ifname in req.valid_attachments()}
    with open_handle() as host:
        untagged = []
        for x in link.list_links(host):
            if x.kind != "ifb" or x.name in valid:
                continue
            owner = shaping.alias_network(x.alias)
            if owner == req.name:
                _delete_link(host, x.index)
            elif owner is None and x.name.startswith(shaping.IFB_PREFIX):
                untagged.append(x)
        if not untagged:
            return
        fed = _redirect_targets(host)
        for ifb in untagged:
            if ifb.index not in fed:
                _delete_link(host, ifb.index)


# --- configuration ---------------------------------------------------------------------------


def _limits(req: Request) -> shaping.Limits | None:
    """The validated limits, or None when none is set (the plugin then does nothing)."""
    limits = shaping.select_limits(req.config)
    if limits is None:
        return None
    shaping.validate(limits)
    return None if limits.is_zero() else limits


def _need_prev_result(req: Request) -> Result:
    if req.prev_result is None:
        raise CNIError(INVALID_CONFIG, "must be called as a chained plugin: prevResult is missing",
                       "bandwidth shapes the veth made by the plugin before it in the list")
    return req.prev_result


# --- the host veth ---------------------------------------------------------------------------


def _host_veth(req: Request, prev: Result, host: Handle) -> link.Link:
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


def _add_root_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
    try:
        tc.add_tbf(host, dev.index, b.rate, b.buffer, b.limit)
    except FileExistsError:
        roots = [q.kind for q in tc.list_qdiscs(host, dev.index) if q.parent == tc.TC_H_ROOT]
        raise CNIError(INTERNAL, f"cannot add the {what} tbf on {dev.name}: it already has a root qdisc "
                       f"({', '.join(roots) or 'unknown'})", "another tool shapes this interface") from None


def _add_egress(req: Request, host: Handle, veth: link.Link, b: shaping.Bucket, undo: Undo) -> link.Link:
    """IFB with its tbf first, then the redirect: no moment in which egress runs unshaped through it."""
    name = shaping.ifb_name(req.name, req.container_id)
    try:
        ifb = link.create_ifb(host, name, mtu=veth.mtu, txqlen=IFB_TXQLEN, up=True,
                              alias=shaping.ifb_alias(req.name, req.container_id),
                              temp_name=shaping.ifb_temp_name(req.name, req.container_id))
    except FileExistsError:
        raise CNIError(INTERNAL, f"IFB device {name} already exists",
                       f"network {req.name!r}, container {req.container_id}: DEL the attachment first",
                       ) from None
    undo.push(f"delete {name}", lambda: _delete_link(host, ifb.index))
    _add_root_tbf(host, ifb, b, "egress")
    parent = _ingress_hook(host, veth, undo)
    clash = [f for f in tc.list_filters(host, veth.index, parent)
             if f.prio == 1 and f.protocol == tc.ETH_P_ALL]
    if clash:
        raise CNIError(INTERNAL, f"{veth.name} already has an ingress filter at priority 1 "
                       f"({clash[0].kind}); it would decide before or instead of the redirect to {name}",
                       "another tool filters this interface's ingress")
    tc.add_mirred_redirect_filter(host, veth.index, ifb.index, parent=parent)
    return ifb


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


def _os_message(err: OSError) -> str:
    """The kernel's answer without Python's "[Errno N]" prefix."""
    return err.args[1] if len(err.args) > 1 and isinstance(err.args[1], str) else str(err)


def _delete_link(host: Handle, index: int) -> None:
    try:
        link.delete_link(host, index)
    except OSError as err:
        if err.errno != errno.ENODEV:
            raise


# --- reading back --------------------------------------------------------------------------------


def _check_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
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


def _ingress_filters(host: Handle, index: int) -> list[tc.Filter]:
    out: list[tc.Filter] = []
    for q in tc.list_qdiscs(host, index):
        if q.parent != tc.TC_H_INGRESS:
            continue
        parent = tc.CLSACT_INGRESS if q.kind == "clsact" else tc.INGRESS_HANDLE
        out += tc.list_filters(host, index, parent)
    return out


def _redirects_to(f: tc.Filter, target: int) -> bool:
    return any(a.kind == "mirred" and a.eaction == tc.TCA_EGRESS_REDIR and a.target == target
               for a in f.actions)


def _redirect_targets(host: Handle) -> set[int]:
    """Every ifindex some link's ingress filter redirects to."""
    indexes = {q.index for q in tc.list_qdiscs(host) if q.parent == tc.TC_H_INGRESS}
    return {a.target for i in indexes for f in _ingress_filters(host, i) for a in f.actions
            if a.kind == "mirred" and a.target is not None}
