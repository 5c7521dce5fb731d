"""bandwidth: limit a container's traffic with token buckets, chained after the plugin that made its veth.

ADD finds the host side of the container's veth, puts a tbf on it for traffic towards the
container (ingress), and for traffic from the container (egress) redirects everything arriving
on it to an IFB device that has its own tbf. The previous result is passed on with the IFB
appended. Figures come from `shaping`; the kernel is reached only through `cni.net`.

    __init__.py  the verbs          shaping.py   which limits, the tbf figures (pure)
    veth.py      the host veth      install.py   tbf, IFB and redirect      readback.py  CHECK, GC
"""

from __future__ import annotations

from cni.contract.errors import INTERNAL, INVALID_CONFIG, CNIError
from cni.contract.request import Request
from cni.contract.result import Interface, Result
from cni.net import link, tc
from cni.net.netns import open_handle
from cni.undo import Undo

from . import shaping
from .install import add_egress, add_root_tbf, delete_link, os_message
from .readback import check_tbf, ingress_filters, redirect_targets, redirects_to
from .veth import host_veth

TYPE = "bandwidth"
SCHEMA = "bandwidth"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
NEEDS_NETNS = True
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")  # a chained plugin needs prevResult (0.3.0+)


def add(req: Request) -> Result:
    limits = _limits(req)
    if limits is None:
        return req.prev_result if req.prev_result is not None else Result()
    prev = _need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = host_veth(req, prev, host)
        undo = Undo("bandwidth")
        try:
            if limits.ingress:
                b = shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick)
                add_root_tbf(host, veth, b, "ingress")
                undo.push(f"delete the ingress tbf of {veth.name}", lambda: tc.delete_qdisc(host, veth.index))
            if limits.egress:
                b = shaping.bucket(limits.egress_rate, limits.egress_burst, tick)
                ifb = add_egress(req, host, veth, b, undo)
                prev.interfaces.append(Interface(name=ifb.name, mac=ifb.mac))
        except OSError as err:
            undo.run()
            raise CNIError(INTERNAL, os_message(err), "nothing was left installed") from None
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
                delete_link(host, ifb.index)


def check(req: Request) -> None:
    """Compare what is installed with what ADD would install; nothing to check without limits."""
    limits = _limits(req)
    if limits is None:
        return
    prev = _need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = host_veth(req, prev, host)
        if limits.ingress:
            check_tbf(host, veth, shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick), "ingress")
        if limits.egress:
            name = shaping.ifb_name(req.name, req.container_id)
            ifb = link.get_link(host, name)
            if ifb is None or ifb.kind != "ifb":
                raise CNIError(INTERNAL, f"egress limit set but IFB device {name} is missing",
                               f"expected an ifb device named {name} in the host namespace")
            check_tbf(host, ifb, shaping.bucket(limits.egress_rate, limits.egress_burst, tick), "egress")
            if not any(redirects_to(f, ifb.index) for f in ingress_filters(host, veth.index)):
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
                delete_link(host, x.index)
            elif owner is None and x.name.startswith(shaping.IFB_PREFIX):
                untagged.append(x)
        if not untagged:
            return
        fed = redirect_targets(host)
        for ifb in untagged:
            if ifb.index not in fed:
                delete_link(host, ifb.index)


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
