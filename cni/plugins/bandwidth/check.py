"""CHECK: compare what is installed with what ADD would install."""

from __future__ import annotations

from cni.contract.errors import INTERNAL, CNIError
from cni.layout import bandwidth as layout
from cni.net import link, tc
from cni.net.netns import open_handle

from . import config, shaping, steps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def check(req: Request) -> None:
    """The tbfs, the attachment's own IFB and the redirect to it.

    Without limits there is nothing to check, as ADD then installs nothing and needs nothing (the
    reference v1.9.1 still wants prevResult and a veth here, so an unshaped pod on a non-veth
    chain fails its CHECK there).
    """
    limits = config.limits(req)
    if limits is None:
        return
    prev = config.need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = steps.host_veth(req, prev, host)
        if limits.ingress:
            b = shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick)
            steps.check_tbf(host, veth, b, "ingress")
        if limits.egress:
            name = layout.ifb_name(req.name, req.container_id)
            ifb = link.get_link(host, name)
            if ifb is None or ifb.kind != "ifb":
                raise CNIError(INTERNAL, f"egress limit set but IFB device {name} is missing",
                               f"expected an ifb device named {name} in the host namespace")
            if layout.owned_by(ifb.alias, req.name, req.container_id) is False:
                raise CNIError(INTERNAL, f"IFB device {name} belongs to another attachment",
                               f"its tag: {ifb.alias}")
            b = shaping.bucket(limits.egress_rate, limits.egress_burst, tick)
            steps.check_tbf(host, ifb, b, "egress")
            if not any(steps.redirects_to(f, ifb.index) for f in steps.ingress_filters(host, veth.index)):
                raise CNIError(INTERNAL, f"no redirect of {veth.name}'s traffic to {name}",
                               f"expected a u32 filter with mirred egress redirect to {name} on the "
                               f"ingress hook of {veth.name}")
