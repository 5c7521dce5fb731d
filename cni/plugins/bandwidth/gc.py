"""GC: delete the IFB devices of attachments the runtime no longer lists."""

from __future__ import annotations

from cni.layout import bandwidth as layout
from cni.net import link
from cni.net.netns import open_handle

from . import steps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request


def gc(req: Request) -> None:
    """Each IFB pycni makes is tagged with its owner (`cni.layout.bandwidth`). One whose tag names
    this network is removed when the attachment it names is not a valid one (by its name when the
    tag had no room for the container); one tagged with another network is never touched, even
    before its redirect exists (that network's ADD may be running now: the runtime serialises GC
    only with ADD and DEL of the same network). An untagged `bwp*` IFB (the reference plugin's)
    cannot say which network made it: it is removed only when its name is not a valid one and no
    filter on any link still redirects traffic to it.
    """
    valid = req.valid_attachments()
    valid_ids = {cid for cid, _ifname in valid}
    valid_names = {layout.ifb_name(req.name, cid) for cid in valid_ids}
    with open_handle() as host:
        untagged = []
        for x in link.list_links(host):
            if x.kind != "ifb":
                continue
            tag = layout.parse_alias(x.alias)
            if tag is None:
                if x.name.startswith(layout.IFB_PREFIX) and layout.is_ifb_name(x.name) \
                        and x.name not in valid_names:
                    untagged.append(x)
            elif tag.network == req.name and (x.name not in valid_names if tag.container_id is None
                                              else tag.container_id not in valid_ids):
                steps.delete_link(host, x.index)
        if not untagged:
            return
        fed = steps.redirect_targets(host)
        for ifb in untagged:
            if ifb.index not in fed:
                steps.delete_link(host, ifb.index)
