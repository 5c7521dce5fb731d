"""Routes over one `Handle`: add one (with its metrics), delete one, list a table."""

from __future__ import annotations

import struct

from cni.net import netlink as nl
from cni.net.netlink import Handle
from cni.record import Record

RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_METRICS = 8
RTA_TABLE = 15
RTAX_MTU = 2
RTAX_ADVMSS = 8

RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255  # in a delete: match a route of any scope
RTPROT_BOOT = 3
RTN_UNICAST = 1

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress

    # A route is made from either kind (what is read: version, prefixlen, network_address, packed).
    from cni.addrtext import IPAddress, IPNetwork

_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, flags


class KernelRoute(Record):
    """A route as the kernel lists it: `dst` a network (0.0.0.0/0 for default), `gw` an address or None.

    Multipath routes (RTA_MULTIPATH) are listed without their next hops (gw, oif None). The route
    a CNI result carries is `cni.contract.result.Route`: a wire type with other fields.
    """

    __slots__ = ("advmss", "dst", "gw", "mtu", "oif", "priority", "protocol", "scope", "src", "table", "type")
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gw: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    oif: int | None
    scope: int
    priority: int | None
    table: int
    protocol: int
    type: int
    src: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    mtu: int | None
    advmss: int | None


def default_scope(gw: IPAddress | None, oif: int | None) -> int:
    """`ip route add`'s choice: link scope for a device route without a gateway, else universe."""
    return RT_SCOPE_UNIVERSE if gw is not None or oif is None else RT_SCOPE_LINK


def _metrics(mtu: int | None, advmss: int | None) -> bytes:
    out = b""
    if mtu is not None:
        out += nl.attr_u32(RTAX_MTU, mtu)
    if advmss is not None:
        out += nl.attr_u32(RTAX_ADVMSS, advmss)
    return nl.attr(RTA_METRICS, out) if out else b""


def _add_msg(dst: IPNetwork, gw: IPAddress | None, oif: int | None, scope: int, table: int,
             priority: int | None, src: IPAddress | None, mtu: int | None, advmss: int | None) -> bytes:
    """An RTM_NEWROUTE body for a unicast route of protocol "boot"."""
    if gw is not None and gw.version != dst.version:
        raise ValueError(f"gateway {gw} is not of the same family as {dst}")
    small_table = table if table < 256 else 0  # the header's field is 8 bits; RTA_TABLE has it all
    body = _RTMSG.pack(nl.family_of(dst.version), dst.prefixlen, 0, 0, small_table, RTPROT_BOOT, scope,
                       RTN_UNICAST, 0)
    body += nl.attr_u32(RTA_TABLE, table)
    if dst.prefixlen:
        body += nl.attr(RTA_DST, dst.network_address.packed)
    if gw is not None:
        body += nl.attr(RTA_GATEWAY, gw.packed)
    if oif is not None:
        body += nl.attr_u32(RTA_OIF, oif)
    if priority is not None:
        body += nl.attr_u32(RTA_PRIORITY, priority)
    if src is not None:
        body += nl.attr(RTA_PREFSRC, src.packed)
    return body + _metrics(mtu, advmss)


def add_route(
    h: Handle,
    dst: IPNetwork,
    gw: IPAddress | None = None,
    oif: int | None = None,
    scope: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    mtu: int | None = None,
    advmss: int | None = None,
    src: IPAddress | None = None,
    replace: bool = False,
) -> None:
    """Add a unicast route (protocol "boot", like `ip route add`).

    Default scope: `default_scope`.  Table: main.  FileExistsError if an identical route exists
    (unless `replace`).
    """
    scope = default_scope(gw, oif) if scope is None else scope
    table = RT_TABLE_MAIN if table is None else table
    body = _add_msg(dst, gw, oif, scope, table, priority, src, mtu, advmss)
    flags = nl.NLM_F_CREATE | (nl.NLM_F_REPLACE if replace else nl.NLM_F_EXCL)
    via = f" via {gw}" if gw is not None else ""
    h.request(RTM_NEWROUTE, body, f"add route {dst}{via} dev {oif}", flags)


def delete_route(h: Handle, dst: IPNetwork, oif: int | None = None, table: int | None = None) -> None:
    """Delete the route to `dst` (through link `oif` when given) in `table` (main), of any scope
    and protocol, as `ip route del` does.  ESRCH if there is none."""
    table = RT_TABLE_MAIN if table is None else table
    body = _RTMSG.pack(nl.family_of(dst.version), dst.prefixlen, 0, 0, table if table < 256 else 0, 0,
                       RT_SCOPE_NOWHERE, 0, 0)
    body += nl.attr_u32(RTA_TABLE, table)
    if dst.prefixlen:
        body += nl.attr(RTA_DST, dst.network_address.packed)
    if oif is not None:
        body += nl.attr_u32(RTA_OIF, oif)
    h.request(RTM_DELROUTE, body, f"delete route {dst} dev {oif}")


def list_routes(h: Handle, family: int | None = None, table: int | None = RT_TABLE_MAIN) -> list[KernelRoute]:
    """Routes of one family (4, 6, AF_INET, AF_INET6 or None for both) in `table` (None: all)."""
    fam = nl.family_filter(family)
    out = []
    for msg_type, reply in h.dump(RTM_GETROUTE, _RTMSG.pack(fam, 0, 0, 0, 0, 0, 0, 0, 0), "list routes"):
        if msg_type != RTM_NEWROUTE:
            continue
        rfam, dst_len, _s, _t, rtable, proto, scope, rtype, _f = _RTMSG.unpack_from(reply)
        if rfam not in (nl.AF_INET, nl.AF_INET6) or (fam != nl.AF_UNSPEC and rfam != fam):
            continue
        a = nl.parse_attrs(reply, _RTMSG.size)
        if RTA_TABLE in a:
            rtable = nl.u32(a[RTA_TABLE])
        if table is not None and rtable != table:
            continue
        import ipaddress  # listing is CHECK's and portmap's: ADD only adds

        net = ipaddress.IPv4Network if rfam == nl.AF_INET else ipaddress.IPv6Network
        dst = net((a.get(RTA_DST, bytes(4 if rfam == nl.AF_INET else 16)), dst_len), strict=False)
        metrics = nl.parse_attrs(a.get(RTA_METRICS, b""))
        out.append(
            KernelRoute(
                dst=dst,
                gw=ipaddress.ip_address(a[RTA_GATEWAY]) if RTA_GATEWAY in a else None,
                oif=nl.u32(a[RTA_OIF]) if RTA_OIF in a else None,
                scope=scope,
                priority=nl.u32(a[RTA_PRIORITY]) if RTA_PRIORITY in a else None,
                table=rtable,
                protocol=proto,
                type=rtype,
                src=ipaddress.ip_address(a[RTA_PREFSRC]) if RTA_PREFSRC in a else None,
                mtu=nl.u32(metrics[RTAX_MTU]) if RTAX_MTU in metrics else None,
                advmss=nl.u32(metrics[RTAX_ADVMSS]) if RTAX_ADVMSS in metrics else None,
            )
        )
    return out
