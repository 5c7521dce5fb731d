"""ADD: the ingress tbf on the host veth, then the egress IFB with its tbf and the redirect to it."""

from __future__ import annotations

from cni.contract.errors import INTERNAL, CNIError
from cni.contract.result import Interface, Result
from cni.net import tc
from cni.net.netns import open_handle
from cni.undo import Undo

from . import config, shaping, steps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def add(req: Request) -> Result:
    limits = config.limits(req)
    if limits is None:
        return req.prev_result if req.prev_result is not None else Result()
    prev = config.need_prev_result(req)
    tick = tc.tick_in_usec()
    with open_handle() as host:
        veth = steps.host_veth(req, prev, host)
        undo = Undo("bandwidth")
        try:
            if limits.ingress:
                b = shaping.bucket(limits.ingress_rate, limits.ingress_burst, tick)
                steps.add_root_tbf(host, veth, b, "ingress")
                undo.push(f"delete the ingress tbf of {veth.name}", lambda: tc.delete_qdisc(host, veth.index))
            if limits.egress:
                b = shaping.bucket(limits.egress_rate, limits.egress_burst, tick)
                ifb = steps.add_egress(req, host, veth, b, undo)
                prev.interfaces.append(Interface(name=ifb.name, mac=ifb.mac))
        except OSError as err:
            undo.run()
            raise CNIError(INTERNAL, steps.os_message(err), "nothing was left installed") from None
        except BaseException:
            undo.run()
            raise
    return prev
