"""Links, addresses, routes, bridge ports and bridge VLANs over one `Handle`.

Every function takes the handle first; the handle decides which namespace is acted on.
Errors are OSError with errno (FileExistsError for EEXIST, FileNotFoundError for ENOENT,
plain OSError for ENODEV...), and a message naming the operation.
"""

from __future__ import annotations

import ipaddress
import os
import struct

from cni.net import netlink as nl
from cni.net.netlink import Handle
from cni.record import Record

AF_UNSPEC = 0
AF_INET = 2
AF_BRIDGE = 7
AF_INET6 = 10

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

IFF_UP = 0x1
IFF_PROMISC = 0x100

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_AF_SPEC = 26
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_LINK_NETNSID = 37

IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5

VETH_INFO_PEER = 1
IFLA_VLAN_ID = 1
IFLA_BR_STP_STATE = 5
IFLA_BR_VLAN_FILTERING = 7
IFLA_BR_VLAN_DEFAULT_PVID = 39

IFLA_BRPORT_STATE = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFLA_BRPORT_LEARNING = 8
IFLA_BRPORT_UNICAST_FLOOD = 9
IFLA_BRPORT_ISOLATED = 33

IFLA_BRIDGE_FLAGS = 0
IFLA_BRIDGE_VLAN_INFO = 2
BRIDGE_FLAGS_SELF = 2
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
RTEXT_FILTER_BRVLAN = 0x2

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80

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
RT_SCOPE_NOWHERE = 255
RTPROT_BOOT = 3
RTN_UNICAST = 1

EOPNOTSUPP = 95
_NO_VLAN_FILTERING = "this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)"

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_VLAN_INFO = struct.Struct("=HH")  # bridge_vlan_info: flags, vid


def _ifinfo(index: int = 0, family: int = AF_UNSPEC, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def mac_str(raw: bytes) -> str:
    """Lower-case, colon-separated: the form CNI results and iproute2 use."""
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(mac: str) -> bytes:
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"invalid MAC address {mac!r}")
    return bytes(int(p, 16) for p in parts)


# --- links ----------------------------------------------------------------------------


class Link(Record):
    """One network interface as the kernel reports it.

    `link` is IFLA_LINK: a veth's peer ifindex (in the peer's namespace, which
    `link_netnsid` names when it is not this one) or a VLAN's parent.
    `vlan_filtering` is set for bridges only, `slave_kind` for enslaved links ("bridge").
    """

    __slots__ = (
        "alias",
        "flags",
        "index",
        "kind",
        "link",
        "link_netnsid",
        "mac",
        "master",
        "mtu",
        "name",
        "operstate",
        "promisc",
        "slave_kind",
        "txqlen",
        "up",
        "vlan_filtering",
        "vlan_id",
    )  # fmt: skip
    _defaults = {"alias": "", "vlan_filtering": None, "vlan_id": None}

    index: int
    name: str
    kind: str
    mac: str
    mtu: int
    up: bool
    operstate: str
    master: int | None
    link: int | None
    link_netnsid: int | None
    promisc: bool
    txqlen: int
    flags: int
    slave_kind: str
    vlan_filtering: bool | None
    vlan_id: int | None
    alias: str


class BridgePort(Record):
    """Bridge port flags of one enslaved link (`state` is the STP state, 3 = forwarding)."""

    __slots__ = ("hairpin", "isolated", "learning", "state", "unicast_flood")
    hairpin: bool
    isolated: bool
    learning: bool
    unicast_flood: bool
    state: int


class BridgeVlan(Record):
    """One VLAN of a bridge port (or of the bridge itself)."""

    __slots__ = ("pvid", "untagged", "vid")
    vid: int
    pvid: bool
    untagged: bool


def _parse_link(body: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(body)
    a = nl.parse_attrs(body, _IFINFO.size)
    kind = slave_kind = ""
    vlan_filtering = vlan_id = None
    info = a.get(IFLA_LINKINFO)
    if info:
        li = nl.parse_attrs(info)
        kind = nl.cstr(li.get(IFLA_INFO_KIND, b""))
        slave_kind = nl.cstr(li.get(IFLA_INFO_SLAVE_KIND, b""))
        data = nl.parse_attrs(li.get(IFLA_INFO_DATA, b""))
        if kind == "bridge" and IFLA_BR_VLAN_FILTERING in data:
            vlan_filtering = bool(data[IFLA_BR_VLAN_FILTERING][0])
        elif kind == "vlan" and IFLA_VLAN_ID in data:
            vlan_id = nl.u16(data[IFLA_VLAN_ID])
    operstate = a.get(IFLA_OPERSTATE)
    state = operstate[0] if operstate else 0
    return Link(
        index=index,
        name=nl.cstr(a.get(IFLA_IFNAME, b"")),
        kind=kind,
        mac=mac_str(a.get(IFLA_ADDRESS, b"")),
        mtu=nl.u32(a[IFLA_MTU]) if IFLA_MTU in a else 0,
        up=bool(flags & IFF_UP),
        operstate=OPERSTATES[state] if state < len(OPERSTATES) else str(state),
        master=nl.u32(a[IFLA_MASTER]) if IFLA_MASTER in a else None,
        link=nl.u32(a[IFLA_LINK]) if IFLA_LINK in a else None,
        link_netnsid=nl.s32(a[IFLA_LINK_NETNSID]) if IFLA_LINK_NETNSID in a else None,
        promisc=bool(flags & IFF_PROMISC),
        txqlen=nl.u32(a[IFLA_TXQLEN]) if IFLA_TXQLEN in a else 0,
        flags=flags,
        slave_kind=slave_kind,
        vlan_filtering=vlan_filtering,
        vlan_id=vlan_id,
        alias=nl.cstr(a.get(IFLA_IFALIAS, b"")),
    )


def _get_link_raw(h: Handle, name_or_index: str | int) -> bytes | None:
    if isinstance(name_or_index, int):
        body = _ifinfo(name_or_index)
    else:
        if not name_or_index or len(name_or_index.encode()) > 15:
            return None  # no such name can exist
        body = _ifinfo() + nl.attr_str(IFLA_IFNAME, name_or_index)
    try:
        replies = h.request(RTM_GETLINK, body, f"get link {name_or_index}")
    except OSError as err:
        if err.errno == 19:  # ENODEV
            return None
        raise
    for msg_type, reply in replies:
        if msg_type == RTM_NEWLINK:
            return reply
    return None


def get_link(h: Handle, name_or_index: str | int) -> Link | None:
    """The link with that name or ifindex, or None if there is none."""
    body = _get_link_raw(h, name_or_index)
    return _parse_link(body) if body is not None else None


def list_links(h: Handle) -> list[Link]:
    """Every link of the handle's namespace."""
    return [_parse_link(b) for t, b in h.dump(RTM_GETLINK, _ifinfo(), "list links") if t == RTM_NEWLINK]


def _need_link(h: Handle, name: str) -> Link:
    link = get_link(h, name)
    if link is None:
        raise nl.error(19, f"get link {name}", "vanished right after creation")
    return link


def _create(h: Handle, name: str, kind: str, attrs: bytes, data: bytes, up: bool, op: str) -> Link:
    info = nl.attr_str(IFLA_INFO_KIND, kind)
    if data:
        info += nl.attr(IFLA_INFO_DATA, data)
    body = _ifinfo(flags=IFF_UP if up else 0, change=IFF_UP if up else 0)
    body += nl.attr_str(IFLA_IFNAME, name) + attrs + nl.attr(IFLA_LINKINFO, info)
    h.request(RTM_NEWLINK, body, op, nl.NLM_F_CREATE | nl.NLM_F_EXCL)
    return _need_link(h, name)


def _common(mtu: int | None = None, mac: str | None = None, txqlen: int | None = None) -> bytes:
    out = b""
    if mtu is not None:
        out += nl.attr_u32(IFLA_MTU, mtu)
    if mac is not None:
        out += nl.attr(IFLA_ADDRESS, mac_bytes(mac))
    if txqlen is not None:
        out += nl.attr_u32(IFLA_TXQLEN, txqlen)
    return out


def create_bridge(
    h: Handle, name: str, mtu: int | None = None, vlan_filtering: bool = False, up: bool = False
) -> Link:
    """Create a bridge; FileExistsError if the name is taken (by a bridge or anything else)."""
    data = nl.attr_u8(IFLA_BR_VLAN_FILTERING, 1) if vlan_filtering else b""
    op = f"create bridge {name}"
    try:
        return _create(h, name, "bridge", _common(mtu), data, up, op)
    except OSError as err:
        if vlan_filtering and err.errno == EOPNOTSUPP:
            raise nl.error(EOPNOTSUPP, op, _NO_VLAN_FILTERING) from None
        raise


def create_veth(
    h: Handle,
    name: str,
    peer_name: str,
    peer_netns_fd: int | None = None,
    mtu: int | None = None,
    mac: str | None = None,
    peer_mac: str | None = None,
    up: bool = False,
) -> Link:
    """Create a veth pair; the peer goes straight into `peer_netns_fd` when given.

    Returns the local end; its `link` is the peer's ifindex.  FileExistsError if either
    name is taken (in its namespace), so callers can retry with another random name.
    """
    peer = _ifinfo() + nl.attr_str(IFLA_IFNAME, peer_name) + _common(mtu, peer_mac)
    if peer_netns_fd is not None:
        peer += nl.attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
    data = nl.attr(VETH_INFO_PEER, peer)
    return _create(h, name, "veth", _common(mtu, mac), data, up, f"create veth {name} (peer {peer_name})")


def create_ifb(
    h: Handle, name: str, mtu: int | None = None, txqlen: int = 0, up: bool = False, alias: str | None = None,
    temp_name: str | None = None,
) -> Link:
    """Create an IFB device (the bandwidth plugin shapes egress traffic redirected to it).

    `alias` (IFLA_IFALIAS, at most 255 bytes) tags the device. The kernel ignores the alias in a
    create request, so the device is made down under a temporary name (`temp_name`, or a random
    one), tagged, and only then renamed to `name` (and brought up): no one ever sees `name` without
    its alias. An ifb already named `temp_name` is taken for what a killed creation left and
    replaced. FileExistsError if `name` is taken; the temporary device is then removed again.
    """
    op = f"create ifb {name}"
    if alias is None:
        return _create(h, name, "ifb", _common(mtu, txqlen=txqlen), b"", up, op)
    if temp_name is None:
        temp_name = "ifbtmp" + os.urandom(4).hex()
    else:  # a name of this device's own: one left by a creation killed before its rename is stale
        stale = get_link(h, temp_name)
        if stale is not None and stale.kind == "ifb":
            delete_link(h, stale.index)
    temp = _create(h, temp_name, "ifb", _common(mtu, txqlen=txqlen), b"", False, op)
    try:
        h.request(RTM_NEWLINK, _ifinfo(temp.index) + nl.attr_str(IFLA_IFALIAS, alias), f"{op}: set alias")
        set_link(h, temp.index, name=name, up=up or None)
    except BaseException as err:
        try:  # noqa: SIM105 - contextlib costs start-up time
            delete_link(h, temp.index)
        except OSError:
            pass
        if isinstance(err, FileExistsError):
            raise nl.error(17, op) from None
        raise
    return _need_link(h, name)


def create_vlan(
    h: Handle, name: str, parent: int, vid: int, mtu: int | None = None, up: bool = False
) -> Link:
    """Create an 802.1Q VLAN device `name` on ifindex `parent`."""
    attrs = nl.attr_u32(IFLA_LINK, parent) + _common(mtu)
    return _create(h, name, "vlan", attrs, nl.attr_u16(IFLA_VLAN_ID, vid), up, f"create vlan {name}")


def set_link(
    h: Handle,
    index: int,
    up: bool | None = None,
    mtu: int | None = None,
    master: int | None = None,
    mac: str | None = None,
    promisc: bool | None = None,
    netns_fd: int | None = None,
    name: str | None = None,
    txqlen: int | None = None,
) -> None:
    """Change what is given, in one message; None leaves a property alone.

    `master=0` detaches the link from its bridge.  The kernel moves the link to
    `netns_fd` first and applies the other changes there (master is then looked up in the
    new namespace); renaming needs the link down, and is applied before `up`.
    """
    flags = change = 0
    if up is not None:
        change |= IFF_UP
        flags |= IFF_UP if up else 0
    if promisc is not None:
        change |= IFF_PROMISC
        flags |= IFF_PROMISC if promisc else 0
    body = _ifinfo(index, flags=flags, change=change)
    if netns_fd is not None:
        body += nl.attr_u32(IFLA_NET_NS_FD, netns_fd)
    if name is not None:
        body += nl.attr_str(IFLA_IFNAME, name)
    body += _common(mtu, mac, txqlen)
    if master is not None:
        body += nl.attr_u32(IFLA_MASTER, master)
    h.request(RTM_NEWLINK, body, f"set link {index}")


def set_bridge(h: Handle, index: int, vlan_filtering: bool | None = None) -> None:
    """Change bridge options of an existing bridge."""
    data = b""
    if vlan_filtering is not None:
        data += nl.attr_u8(IFLA_BR_VLAN_FILTERING, int(vlan_filtering))
    info = nl.attr_str(IFLA_INFO_KIND, "bridge") + nl.attr(IFLA_INFO_DATA, data)
    h.request(RTM_NEWLINK, _ifinfo(index) + nl.attr(IFLA_LINKINFO, info), f"set bridge {index}")


def delete_link(h: Handle, index: int) -> None:
    """Delete a link (a veth takes its peer with it).  ENODEV if it is already gone."""
    h.request(RTM_DELLINK, _ifinfo(index), f"delete link {index}")


# --- bridge ports and VLANs -------------------------------------------------------------


def set_bridge_port(
    h: Handle,
    index: int,
    hairpin: bool | None = None,
    isolated: bool | None = None,
    learning: bool | None = None,
    unicast_flood: bool | None = None,
) -> None:
    """Set bridge port flags of the enslaved link `index` (IFLA_PROTINFO, AF_BRIDGE)."""
    attrs = b""
    for kind, value in (
        (IFLA_BRPORT_MODE, hairpin),
        (IFLA_BRPORT_ISOLATED, isolated),
        (IFLA_BRPORT_LEARNING, learning),
        (IFLA_BRPORT_UNICAST_FLOOD, unicast_flood),
    ):
        if value is not None:
            attrs += nl.attr_u8(kind, int(value))
    if not attrs:
        return
    body = _ifinfo(index, family=AF_BRIDGE) + nl.nest(IFLA_PROTINFO, attrs, flag=True)
    h.request(RTM_SETLINK, body, f"set bridge port {index}")


def get_bridge_port(h: Handle, index: int) -> BridgePort | None:
    """The port flags of link `index`, or None if it is not a bridge port."""
    body = _get_link_raw(h, index)
    if body is None:
        raise nl.error(19, f"get bridge port {index}")
    info = nl.parse_attrs(body, _IFINFO.size).get(IFLA_LINKINFO)
    if not info:
        return None
    li = nl.parse_attrs(info)
    if nl.cstr(li.get(IFLA_INFO_SLAVE_KIND, b"")) != "bridge":
        return None
    d = nl.parse_attrs(li.get(IFLA_INFO_SLAVE_DATA, b""))

    def flag(kind: int) -> bool:
        return bool(d[kind][0]) if kind in d else False

    return BridgePort(
        hairpin=flag(IFLA_BRPORT_MODE),
        isolated=flag(IFLA_BRPORT_ISOLATED),
        learning=flag(IFLA_BRPORT_LEARNING),
        unicast_flood=flag(IFLA_BRPORT_UNICAST_FLOOD),
        state=d[IFLA_BRPORT_STATE][0] if IFLA_BRPORT_STATE in d else 0,
    )


def _vlan_msg(index: int, vid: int, pvid: bool, untagged: bool, self_: bool) -> bytes:
    if not 1 <= vid <= 4094:
        raise ValueError(f"VLAN id {vid} out of range 1-4094")
    vflags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
    # Without IFLA_BRIDGE_FLAGS the kernel addresses the port's bridge ("master").
    spec = nl.attr_u16(IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF) if self_ else b""
    spec += nl.attr(IFLA_BRIDGE_VLAN_INFO, _VLAN_INFO.pack(vflags, vid))
    return _ifinfo(index, family=AF_BRIDGE) + nl.nest(IFLA_AF_SPEC, spec)


def bridge_vlan_add(
    h: Handle, index: int, vid: int, pvid: bool = False, untagged: bool = False, self_: bool = False
) -> None:
    """`bridge vlan add dev <index> vid <vid> [pvid] [untagged] [self]`.

    `self_` targets the bridge device itself; otherwise `index` is a port.  Adding an
    existing VID updates its flags.
    """
    op = f"add vlan {vid} to link {index}"
    try:
        h.request(RTM_SETLINK, _vlan_msg(index, vid, pvid, untagged, self_), op)
    except OSError as err:
        if err.errno == EOPNOTSUPP:
            raise nl.error(EOPNOTSUPP, op, _NO_VLAN_FILTERING) from None
        raise


def bridge_vlan_del(h: Handle, index: int, vid: int, self_: bool = False) -> None:
    """`bridge vlan del dev <index> vid <vid> [self]`."""
    h.request(RTM_DELLINK, _vlan_msg(index, vid, False, False, self_), f"delete vlan {vid} from {index}")


def bridge_vlans(h: Handle, index: int) -> list[BridgeVlan]:
    """The VLANs of a bridge port, or of the bridge itself (its "self" VLANs)."""
    body = _ifinfo(family=AF_BRIDGE) + nl.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN)
    out = []
    for msg_type, reply in h.dump(RTM_GETLINK, body, f"list vlans of {index}"):
        if msg_type != RTM_NEWLINK or _IFINFO.unpack_from(reply)[2] != index:
            continue
        spec = nl.parse_attrs(reply, _IFINFO.size).get(IFLA_AF_SPEC, b"")
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


# --- addresses --------------------------------------------------------------------------


class Address(Record):
    """An address on a link.  `ip` is an IPv4Interface/IPv6Interface ("10.1.0.5/24")."""

    __slots__ = ("flags", "index", "ip", "label", "scope")
    index: int
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    scope: int
    flags: int
    label: str

    @property
    def tentative(self) -> bool:
        """Still doing duplicate address detection (IPv6); not usable yet."""
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dadfailed(self) -> bool:
        """Duplicate address detection found the address in use."""
        return bool(self.flags & IFA_F_DADFAILED)

    @property
    def permanent(self) -> bool:
        return bool(self.flags & IFA_F_PERMANENT)


def _family(version: int) -> int:
    return AF_INET if version == 4 else AF_INET6


def _addr_msg(index: int, cidr: ipaddress.IPv4Interface | ipaddress.IPv6Interface, flags: int) -> bytes:
    raw = cidr.ip.packed
    body = _IFADDR.pack(_family(cidr.version), cidr.network.prefixlen, flags & 0xFF, 0, index)
    body += nl.attr(IFA_LOCAL, raw) + nl.attr(IFA_ADDRESS, raw)
    return body


def add_address(
    h: Handle, index: int, cidr: ipaddress.IPv4Interface | ipaddress.IPv6Interface, nodad: bool = False
) -> None:
    """Add `cidr` (e.g. IPv4Interface("10.1.0.1/24")) to link `index`.

    IPv4 gets the subnet's broadcast address for prefixes shorter than /31, as the
    reference plugins do.  FileExistsError if the address is already there.  On a link
    whose IPv6 is disabled an IPv6 address fails with EACCES and says so.
    """
    flags = IFA_F_NODAD if nodad else 0
    body = _addr_msg(index, cidr, flags)
    if cidr.version == 4 and cidr.network.prefixlen < 31:
        body += nl.attr(IFA_BROADCAST, cidr.network.broadcast_address.packed)
    if flags:
        body += nl.attr_u32(IFA_FLAGS, flags)
    op = f"add address {cidr} to link {index}"
    try:
        h.request(RTM_NEWADDR, body, op, nl.NLM_F_CREATE | nl.NLM_F_EXCL)
    except OSError as err:
        if cidr.version == 6 and err.errno == 13:  # EACCES
            detail = "IPv6 is disabled on this interface: net.ipv6.conf.<if>.disable_ipv6=1"
            raise nl.error(13, op, detail) from None
        if cidr.version == 6 and err.errno == 97:  # EAFNOSUPPORT
            raise nl.error(97, op, "IPv6 is disabled in this kernel") from None
        raise


def delete_address(h: Handle, index: int, cidr: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    """Remove `cidr` from link `index`; EADDRNOTAVAIL if it is not there."""
    h.request(RTM_DELADDR, _addr_msg(index, cidr, 0), f"delete address {cidr} from link {index}")


def list_addresses(h: Handle, index: int | None = None, family: int | None = None) -> list[Address]:
    """Addresses of one link (or all), of one family (4, 6, AF_INET, AF_INET6) or both."""
    fam = {None: AF_UNSPEC, 4: AF_INET, 6: AF_INET6}.get(family, family)
    body = _IFADDR.pack(fam, 0, 0, 0, index or 0)
    out = []
    for msg_type, reply in h.dump(RTM_GETADDR, body, "list addresses"):
        if msg_type != RTM_NEWADDR:
            continue
        afam, plen, aflags, scope, aindex = _IFADDR.unpack_from(reply)
        if (index is not None and aindex != index) or afam not in (AF_INET, AF_INET6):
            continue
        if fam != AF_UNSPEC and afam != fam:
            continue
        a = nl.parse_attrs(reply, _IFADDR.size)
        raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
        if raw is None:
            continue
        if IFA_FLAGS in a:
            aflags = nl.u32(a[IFA_FLAGS])
        ip = (ipaddress.IPv4Interface if afam == AF_INET else ipaddress.IPv6Interface)((raw, plen))
        label = nl.cstr(a.get(IFA_LABEL, b""))
        out.append(Address(index=aindex, ip=ip, scope=scope, flags=aflags, label=label))
    return out


# --- routes -----------------------------------------------------------------------------


class Route(Record):
    """A route.  `dst` is a network (0.0.0.0/0 for default), `gw` an address or None.

    Multipath routes (RTA_MULTIPATH) are listed without their next hops (gw, oif None).
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


def _route_msg(
    cmd: int,
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network,
    gw: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    oif: int | None,
    scope: int | None,
    table: int | None,
    priority: int | None,
    src: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    mtu: int | None = None,
    advmss: int | None = None,
) -> bytes:
    table = RT_TABLE_MAIN if table is None else table
    if cmd == RTM_DELROUTE:
        proto, rtype = 0, 0
        scope = RT_SCOPE_NOWHERE if scope is None else scope  # "any scope"
    else:
        proto, rtype = RTPROT_BOOT, RTN_UNICAST
        if scope is None:
            scope = RT_SCOPE_UNIVERSE if gw is not None or oif is None else RT_SCOPE_LINK
    small_table = table if table < 256 else 0
    body = _RTMSG.pack(_family(dst.version), dst.prefixlen, 0, 0, small_table, proto, scope, rtype, 0)
    body += nl.attr_u32(RTA_TABLE, table)
    if dst.prefixlen:
        body += nl.attr(RTA_DST, dst.network_address.packed)
    if gw is not None:
        if gw.version != dst.version:
            raise ValueError(f"gateway {gw} is not of the same family as {dst}")
        body += nl.attr(RTA_GATEWAY, gw.packed)
    if oif is not None:
        body += nl.attr_u32(RTA_OIF, oif)
    if priority is not None:
        body += nl.attr_u32(RTA_PRIORITY, priority)
    if src is not None:
        body += nl.attr(RTA_PREFSRC, src.packed)
    metrics = b""
    if mtu is not None:
        metrics += nl.attr_u32(RTAX_MTU, mtu)
    if advmss is not None:
        metrics += nl.attr_u32(RTAX_ADVMSS, advmss)
    if metrics:
        body += nl.attr(RTA_METRICS, metrics)
    return body


def add_route(
    h: Handle,
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network,
    gw: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    oif: int | None = None,
    scope: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    mtu: int | None = None,
    advmss: int | None = None,
    src: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    replace: bool = False,
) -> None:
    """Add a unicast route (protocol "boot", like `ip route add`).

    Default scope: link for a device route without gateway, else universe.  Table: main.
    FileExistsError if an identical route exists (unless `replace`).
    """
    body = _route_msg(RTM_NEWROUTE, dst, gw, oif, scope, table, priority, src, mtu, advmss)
    flags = nl.NLM_F_CREATE | (nl.NLM_F_REPLACE if replace else nl.NLM_F_EXCL)
    via = f" via {gw}" if gw is not None else ""
    h.request(RTM_NEWROUTE, body, f"add route {dst}{via} dev {oif}", flags)


def delete_route(
    h: Handle,
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network,
    gw: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    oif: int | None = None,
    table: int | None = None,
    priority: int | None = None,
    scope: int | None = None,
) -> None:
    """Delete the first route matching what is given; ESRCH if none matches."""
    body = _route_msg(RTM_DELROUTE, dst, gw, oif, scope, table, priority)
    h.request(RTM_DELROUTE, body, f"delete route {dst}")


def list_routes(h: Handle, family: int | None = None, table: int | None = RT_TABLE_MAIN) -> list[Route]:
    """Routes of one family (4, 6, AF_INET, AF_INET6 or None for both) in `table` (None: all)."""
    fam = {None: AF_UNSPEC, 4: AF_INET, 6: AF_INET6}.get(family, family)
    out = []
    for msg_type, reply in h.dump(RTM_GETROUTE, _RTMSG.pack(fam, 0, 0, 0, 0, 0, 0, 0, 0), "list routes"):
        if msg_type != RTM_NEWROUTE:
            continue
        rfam, dst_len, _s, _t, rtable, proto, scope, rtype, _f = _RTMSG.unpack_from(reply)
        if rfam not in (AF_INET, AF_INET6) or (fam != AF_UNSPEC and rfam != fam):
            continue
        a = nl.parse_attrs(reply, _RTMSG.size)
        if RTA_TABLE in a:
            rtable = nl.u32(a[RTA_TABLE])
        if table is not None and rtable != table:
            continue
        net = ipaddress.IPv4Network if rfam == AF_INET else ipaddress.IPv6Network
        dst = net((a.get(RTA_DST, bytes(4 if rfam == AF_INET else 16)), dst_len), strict=False)
        metrics = nl.parse_attrs(a.get(RTA_METRICS, b""))
        out.append(
            Route(
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
