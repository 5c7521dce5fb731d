"""ptp DEL: release the address, remove the container end (the host end, its addresses and routes
go with it), remove the masquerade rules.

Every step runs even when an earlier one finds nothing (the namespace, the interface or the
config's IPAM gone), so a repeated or late DEL still cleans up; the first failure is reported.
"""

from __future__ import annotations

from cni.contract import delegate, veth_attachment
from cni.contract.errors import CNIError, attempt

from . import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def delete(req: Request) -> None:
    conf = config.load(req.config, for_add=False)
    errors: list[CNIError] = []
    if conf.ipam_type:
        attempt(errors, delegate.ipam, req, "DEL")
    if req.netns:
        attempt(errors, veth_attachment.remove_container_end, req.netns, req.ifname)
    if conf.ip_masq:
        attempt(errors, veth_attachment.teardown_masq, req.name, req.ifname, req.container_id,
                conf.ip_masq_backend)
    if errors:
        raise errors[0]

