"""Links over one `Handle`: look them up, create bridges, veth pairs and IFBs, change, delete.

Every function takes the handle first; the handle decides which namespace is acted on.
Errors are OSError with errno (FileExistsError for EEXIST, FileNotFoundError for ENOENT,
plain OSError for ENODEV...), and a message naming the operation.
"""

from __future__ import annotations

import errno

from cni import sysapi
from cni.net import netlink as nl
from cni.net.bridge_port import NO_VLAN_FILTERING
from cni.net.netlink import Handle
from cni.record import Record

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18

IFF_UP = 0x1
IFF_PROMISC = 0x100

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_LINK_NETNSID = 37

IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4

VETH_INFO_PEER = 1
IFLA_BR_VLAN_FILTERING = 7

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")


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
    )  # fmt: skip
    _defaults = {"alias": "", "vlan_filtering": None}

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
    alias: str


def _parse_link(body: bytes) -> Link:
    _family, _type, index, flags, _change = nl.IFINFO.unpack_from(body)
    a = nl.parse_attrs(body, nl.IFINFO.size)
    kind = slave_kind = ""
    vlan_filtering = None
    info = a.get(IFLA_LINKINFO)
    if info:
        li = nl.parse_attrs(info)
        kind = nl.cstr(li.get(IFLA_INFO_KIND, b""))
        slave_kind = nl.cstr(li.get(IFLA_INFO_SLAVE_KIND, b""))
        data = nl.parse_attrs(li.get(IFLA_INFO_DATA, b""))
        if kind == "bridge" and IFLA_BR_VLAN_FILTERING in data:
            vlan_filtering = bool(data[IFLA_BR_VLAN_FILTERING][0])
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
        alias=nl.cstr(a.get(IFLA_IFALIAS, b"")),
    )


def _get_link_raw(h: Handle, name_or_index: str | int) -> bytes | None:
    if isinstance(name_or_index, int):
        body = nl.ifinfo(name_or_index)
    else:
        if not name_or_index or len(name_or_index.encode("utf-8", "surrogateescape")) > 15:
            return None  # no such name can exist
        body = nl.ifinfo() + nl.attr_str(IFLA_IFNAME, name_or_index)
    try:
        replies = h.request(RTM_GETLINK, body, f"get link {name_or_index}")
    except OSError as err:
        if err.errno == errno.ENODEV:
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
    return [_parse_link(b) for t, b in h.dump(RTM_GETLINK, nl.ifinfo(), "list links") if t == RTM_NEWLINK]


def _need_link(h: Handle, name: str) -> Link:
    link = get_link(h, name)
    if link is None:
        raise nl.error(errno.ENODEV, f"get link {name}", "vanished right after creation")
    return link


def _create(h: Handle, name: str, kind: str, attrs: bytes, data: bytes, up: bool, op: str) -> Link:
    info = nl.attr_str(IFLA_INFO_KIND, kind)
    if data:
        info += nl.attr(IFLA_INFO_DATA, data)
    body = nl.ifinfo(flags=IFF_UP if up else 0, change=IFF_UP if up else 0)
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
        if vlan_filtering and err.errno == errno.EOPNOTSUPP:
            raise nl.error(errno.EOPNOTSUPP, op, NO_VLAN_FILTERING) from None
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
    peer_txqlen: int | None = None,
) -> Link:
    """Create a veth pair; the peer goes straight into `peer_netns_fd` when given.

    Returns the local end; its `link` is the peer's ifindex.  FileExistsError if either
    name is taken (in its namespace), so callers can retry with another random name.
    `peer_txqlen` None leaves the peer's queue length at the kernel's default (1000).
    """
    peer = nl.ifinfo() + nl.attr_str(IFLA_IFNAME, peer_name) + _common(mtu, peer_mac, peer_txqlen)
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
    its alias. An ifb already named `temp_name` that carries no alias or this one is taken for
    what a killed creation left and replaced (one tagged otherwise is another device's: EEXIST).
    FileExistsError if `name` is taken; the temporary device is then removed again.
    """
    op = f"create ifb {name}"
    if alias is None:
        return _create(h, name, "ifb", _common(mtu, txqlen=txqlen), b"", up, op)
    if temp_name is None:
        temp_name = "ifbtmp" + sysapi.urandom(4).hex()
    else:  # a name of this device's own: one left by a creation killed before its rename is stale
        stale = get_link(h, temp_name)
        if stale is not None and stale.kind == "ifb" and stale.alias in ("", alias):
            delete_link(h, stale.index)
    temp = _create(h, temp_name, "ifb", _common(mtu, txqlen=txqlen), b"", False, op)
    try:
        set_link(h, temp.index, alias=alias)
        set_link(h, temp.index, name=name, up=up or None)
    except BaseException as err:
        try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
            delete_link(h, temp.index)
        except OSError:
            pass
        if isinstance(err, FileExistsError):
            raise nl.error(errno.EEXIST, op) from None
        raise
    return _need_link(h, name)


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
    alias: str | None = None,
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
    body = nl.ifinfo(index, flags=flags, change=change)
    if netns_fd is not None:
        body += nl.attr_u32(IFLA_NET_NS_FD, netns_fd)
    if name is not None:
        body += nl.attr_str(IFLA_IFNAME, name)
    body += _common(mtu, mac, txqlen)
    if master is not None:
        body += nl.attr_u32(IFLA_MASTER, master)
    if alias is not None:  # the tag of a device we made (cni/layout): the kernel keeps 255 bytes
        body += nl.attr_str(IFLA_IFALIAS, alias)
    h.request(RTM_NEWLINK, body, f"set link {index}")


def delete_link(h: Handle, index: int) -> None:
    """Delete a link (a veth takes its peer with it).  ENODEV if it is already gone."""
    h.request(RTM_DELLINK, nl.ifinfo(index), f"delete link {index}")
