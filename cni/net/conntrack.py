"""Connection tracking entries over NETLINK_NETFILTER (ctnetlink): list by protocol and original
destination port, delete one by its original tuple.

The kernel deletes an entry only by its exact tuple, so deleting "every UDP flow to port P" is a
dump of the family's table, filtered here, then one delete per match (as the reference's netlink
library does it). An entry that vanished in between (timed out, deleted by someone else) is fine.
"""

from __future__ import annotations

import errno
import struct

from . import netlink as nl

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
CTA_TUPLE_ORIG = 1
CTA_ZONE = 18
CTA_TUPLE_PROTO = 2
CTA_PROTO_NUM = 1
CTA_PROTO_DST_PORT = 3
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_SCTP = 132
PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "sctp": PROTO_SCTP}

_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id (big endian; 0)
_BE16 = struct.Struct("!H")


def _msg(kind: int) -> int:
    return (NFNL_SUBSYS_CTNETLINK << 8) | kind


def entry_key(body: bytes) -> tuple[int, int, bytes, bytes | None] | None:
    """(protocol number, original destination port, raw original tuple, raw zone) of one dumped
    entry; None when it has no ports (ICMP, ...)."""
    attrs = nl.parse_attrs(body, _NFGEN.size)
    orig = attrs.get(CTA_TUPLE_ORIG)
    if orig is None:
        return None
    proto = nl.parse_attrs(nl.parse_attrs(orig).get(CTA_TUPLE_PROTO, b""))
    if CTA_PROTO_NUM not in proto or CTA_PROTO_DST_PORT not in proto:
        return None
    return proto[CTA_PROTO_NUM][0], _BE16.unpack_from(proto[CTA_PROTO_DST_PORT])[0], orig, attrs.get(CTA_ZONE)


def delete_by_dst_port(version: int, protocol: str, ports: set[int]) -> int:
    """Delete the entries of one IP version whose original destination port is in `ports`;
    returns how many were deleted. OSError when ctnetlink cannot be used at all."""
    if not ports:
        return 0
    family = nl.family_of(version)
    number = PROTOCOLS[protocol]
    deleted = 0
    with nl.Handle(NETLINK_NETFILTER) as h:
        header = _NFGEN.pack(family, 0, 0)
        for msg_type, body in h.dump(_msg(IPCTNL_MSG_CT_GET), header, "list conntrack entries"):
            if msg_type != _msg(IPCTNL_MSG_CT_NEW):
                continue
            key = entry_key(body)
            if key is None or key[0] != number or key[1] not in ports:
                continue
            request = header + nl.nest(CTA_TUPLE_ORIG, key[2], flag=True)
            if key[3] is not None:
                request += nl.attr(CTA_ZONE, key[3])
            try:
                h.request(_msg(IPCTNL_MSG_CT_DELETE), request, "delete conntrack entry")
                deleted += 1
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
    return deleted
