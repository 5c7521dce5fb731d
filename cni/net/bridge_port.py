"""Bridge ports over one `Handle`: port flags (hairpin, isolation) and a port's VLANs."""

from __future__ import annotations

import errno
import struct

from cni.net import netlink as nl
from cni.net.netlink import Handle
from cni.record import Record

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19

IFLA_PROTINFO = 12
IFLA_AF_SPEC = 26
IFLA_EXT_MASK = 29
IFLA_BRPORT_MODE = 4  # hairpin
IFLA_BRPORT_ISOLATED = 33
IFLA_BRIDGE_VLAN_INFO = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
RTEXT_FILTER_BRVLAN = 0x2

NO_VLAN_FILTERING = "this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)"

_VLAN_INFO = struct.Struct("=HH")  # bridge_vlan_info: flags, vid


class BridgeVlan(Record):
    """One VLAN of a bridge port (or of the bridge itself)."""

    __slots__ = ("pvid", "untagged", "vid")
    vid: int
    pvid: bool
    untagged: bool


def set_bridge_port(
    h: Handle,
    index: int,
    hairpin: bool | None = None,
    isolated: bool | None = None,
) -> None:
    """Set bridge port flags of the enslaved link `index` (IFLA_PROTINFO, AF_BRIDGE)."""
    attrs = b""
    for kind, value in (
        (IFLA_BRPORT_MODE, hairpin),
        (IFLA_BRPORT_ISOLATED, isolated),
    ):
        if value is not None:
            attrs += nl.attr_u8(kind, int(value))
    if not attrs:
        return
    body = nl.ifinfo(index, family=nl.AF_BRIDGE) + nl.nest(IFLA_PROTINFO, attrs, flag=True)
    h.request(RTM_SETLINK, body, f"set bridge port {index}")


def _vlan_msg(index: int, vid: int, pvid: bool, untagged: bool) -> bytes:
    """Without IFLA_BRIDGE_FLAGS the kernel addresses the port's bridge ("master")."""
    if not 1 <= vid <= 4094:
        raise ValueError(f"VLAN id {vid} out of range 1-4094")
    vflags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
    spec = nl.attr(IFLA_BRIDGE_VLAN_INFO, _VLAN_INFO.pack(vflags, vid))
    return nl.ifinfo(index, family=nl.AF_BRIDGE) + nl.nest(IFLA_AF_SPEC, spec)


def bridge_vlan_add(h: Handle, index: int, vid: int, pvid: bool = False, untagged: bool = False) -> None:
    """`bridge vlan add dev <port> vid <vid> [pvid] [untagged]`; an existing VID gets the new flags."""
    op = f"add vlan {vid} to link {index}"
    try:
        h.request(RTM_SETLINK, _vlan_msg(index, vid, pvid, untagged), op)
    except OSError as err:
        if err.errno == errno.EOPNOTSUPP:
            raise nl.error(errno.EOPNOTSUPP, op, NO_VLAN_FILTERING) from None
        raise


def bridge_vlan_del(h: Handle, index: int, vid: int) -> None:
    """`bridge vlan del dev <port> vid <vid>`."""
    h.request(RTM_DELLINK, _vlan_msg(index, vid, False, False), f"delete vlan {vid} from {index}")


def bridge_vlans(h: Handle, index: int) -> list[BridgeVlan]:
    """The VLANs of a bridge port, or of the bridge itself (its "self" VLANs)."""
    body = nl.ifinfo(family=nl.AF_BRIDGE) + nl.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN)
    out = []
    for msg_type, reply in h.dump(RTM_GETLINK, body, f"list vlans of {index}"):
        if msg_type != RTM_NEWLINK or nl.IFINFO.unpack_from(reply)[2] != index:
            continue
        spec = nl.parse_attrs(reply, nl.IFINFO.size).get(IFLA_AF_SPEC, b"")
        for kind, payload in nl.iter_attrs(spec):
            if kind == IFLA_BRIDGE_VLAN_INFO:
                vflags, vid = _VLAN_INFO.unpack_from(payload)
                out.append(
                    BridgeVlan(
                        vid=vid,
                        pvid=bool(vflags & BRIDGE_VLAN_INFO_PVID),
                        untagged=bool(vflags & BRIDGE_VLAN_INFO_UNTAGGED),
                    )
                )
    return out
