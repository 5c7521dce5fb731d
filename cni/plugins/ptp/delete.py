"""ptp DEL: release the address, remove the container end (the host end, its addresses and routes
go with it), remove the masquerade rules.

Every step runs even when an earlier one finds nothing (the namespace, the interface or the
config's IPAM gone), so a repeated or late DEL still cleans up; the first failure is reported.
"""

from __future__ import annotations

import errno

from cni.contract import delegate
from cni.contract.errors import CNIError
from cni.contract.errors import internal as fail
from cni.net import link, netns

from . import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def delete(req: Request) -> None:
    conf = config.load(req.config, for_add=False)
    errors: list[CNIError] = []
    if conf.ipam_type:
        try:
            delegate.ipam(req, "DEL")
        except CNIError as e:
            errors.append(e)
    if req.netns:
        try:
            _delete_container_link(req.netns, req.ifname)
        except OSError as e:
            errors.append(fail(f"failed to delete {req.ifname} in {req.netns}: {e}", e))
    if conf.ip_masq:
        from . import rules  # the firewall is imported only by attachments that use it

        try:
            rules.teardown_masq(req.name, req.ifname, req.container_id, conf.ip_masq_backend)
        except CNIError as e:
            errors.append(e)
    if errors:
        raise errors[0]


def _delete_container_link(path: str, ifname: str) -> None:
    try:
        h = netns.open_handle(path)
    except FileNotFoundError:
        return  # the namespace is gone, and the veth pair with it
    except OSError as e:
        if e.errno == errno.EINVAL:  # exists but is no network namespace (e.g. an unmounted bind target)
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
