"""DEL: remove the attachment's IFB device; the host veth's qdiscs go with the veth."""

from __future__ import annotations

from cni.layout import bandwidth as layout
from cni.net import link
from cni.net.netns import open_handle

from . import steps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def delete(req: Request) -> None:
    """Remove the IFB named after the attachment unless its tag records another attachment (the
    name's hash is shared by every (network, container ID) that run together to the same text).
    An untagged one is the reference's, removed as the reference removes it. Nothing there is fine.
    """
    names = (layout.ifb_name(req.name, req.container_id), layout.ifb_temp_name(req.name, req.container_id))
    with open_handle() as host:
        for name in names:  # the temporary name too: an ADD killed before tagging its IFB left that
            ifb = link.get_link(host, name)
            if ifb is not None and ifb.kind == "ifb" \
                    and layout.owned_by(ifb.alias, req.name, req.container_id) is not False:
                steps.delete_link(host, ifb.index)
