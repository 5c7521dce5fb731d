"""bridge DEL: remove the container end, release the address, remove firewall rules.

Every step runs even when an earlier one finds nothing (the namespace, the interface or prevResult
gone), so a repeated or late DEL still cleans up; the first failure is reported.
"""

from __future__ import annotations

from cni.contract import delegate, veth_attachment
from cni.contract.errors import CNIError, attempt

from . import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def delete(req: Request) -> None:
    conf = config.load(req.config, {}, for_add=False)
    errors: list[CNIError] = []
    if req.netns:
        attempt(errors, veth_attachment.remove_container_end, req.netns, req.ifname)
    if conf.layer3:
        attempt(errors, delegate.ipam, req, "DEL")
    if conf.macspoofchk:
        from . import rules  # the firewall is imported only by attachments that use it

        rules.teardown_spoofcheck(req.container_id, req.ifname)  # as the reference: logged, not fatal
    if conf.ip_masq:
        attempt(errors, veth_attachment.teardown_masq, req.name, req.ifname, req.container_id,
                conf.ip_masq_backend)
    if errors:
        raise errors[0]

