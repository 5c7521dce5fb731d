"""Addresses of links over one `Handle`: add, delete, list (with their DAD state), wait for DAD."""

from __future__ import annotations

import errno
import struct

from cni.addrtext import Cidr
from cni.net import netlink as nl
from cni.net.netlink import Handle
from cni.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress

    from cni.addrtext import IPInterface

RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80

_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index


class Address(Record):
    """An address on a link as the kernel lists it: `raw` its packed bytes, `prefixlen` its prefix.

    `ip` makes the IPv4Interface/IPv6Interface ("10.1.0.5/24") on first use, so that a caller
    that only prints or classifies the addresses (`cidr`) never imports `ipaddress`.
    """

    __slots__ = ("flags", "index", "raw", "prefixlen", "label", "scope")
    if TYPE_CHECKING:
        index: int
        raw: bytes
        prefixlen: int
        scope: int
        flags: int
        label: str

    @property
    def ip(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        import ipaddress

        cls = ipaddress.IPv4Interface if len(self.raw) == 4 else ipaddress.IPv6Interface
        return cls((self.raw, self.prefixlen))

    @property
    def cidr(self) -> Cidr:
        """The same address without `ipaddress`: printed identically, `version`, `is_loopback`."""
        return Cidr(raw=self.raw, prefixlen=self.prefixlen)

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


def _addr_msg(index: int, cidr: IPInterface, flags: int) -> bytes:
    raw = cidr.ip.packed
    body = _IFADDR.pack(nl.family_of(cidr.version), cidr.network.prefixlen, flags & 0xFF, 0, index)
    body += nl.attr(IFA_LOCAL, raw) + nl.attr(IFA_ADDRESS, raw)
    return body


def add_address(h: Handle, index: int, cidr: IPInterface, nodad: bool = False) -> None:
    """Add `cidr` (e.g. Cidr or IPv4Interface "10.1.0.1/24") to link `index`.

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
        if cidr.version == 6 and err.errno == errno.EACCES:
            detail = "IPv6 is disabled on this interface: net.ipv6.conf.<if>.disable_ipv6=1"
            raise nl.error(errno.EACCES, op, detail) from None
        if cidr.version == 6 and err.errno == errno.EAFNOSUPPORT:
            raise nl.error(errno.EAFNOSUPPORT, op, "IPv6 is disabled in this kernel") from None
        raise


def delete_address(h: Handle, index: int, cidr: IPInterface) -> None:
    """Remove `cidr` from link `index`; EADDRNOTAVAIL if it is not there."""
    h.request(RTM_DELADDR, _addr_msg(index, cidr, 0), f"delete address {cidr} from link {index}")


def list_addresses(h: Handle, index: int | None = None, family: int | None = None) -> list[Address]:
    """Addresses of one link (or all), of one family (4, 6, AF_INET, AF_INET6) or both."""
    fam = nl.family_filter(family)
    body = _IFADDR.pack(fam, 0, 0, 0, index or 0)
    out = []
    for msg_type, reply in h.dump(RTM_GETADDR, body, "list addresses"):
        if msg_type != RTM_NEWADDR:
            continue
        afam, plen, aflags, scope, aindex = _IFADDR.unpack_from(reply)
        if (index is not None and aindex != index) or afam not in (nl.AF_INET, nl.AF_INET6):
            continue
        if fam != nl.AF_UNSPEC and afam != fam:
            continue
        a = nl.parse_attrs(reply, _IFADDR.size)
        raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
        if raw is None:
            continue
        if IFA_FLAGS in a:
            aflags = nl.u32(a[IFA_FLAGS])
        label = nl.cstr(a.get(IFA_LABEL, b""))
        out.append(Address(index=aindex, raw=bytes(raw), prefixlen=plen, scope=scope, flags=aflags,
                           label=label))
    return out


def wait_settled(h: Handle, index: int, timeout: float) -> None:
    """Wait until no IPv6 address of link `index` is tentative (duplicate address detection done).

    OSError(EADDRINUSE) naming the addresses whose DAD failed; TimeoutError naming those still
    tentative after `timeout` seconds, but only while the link is operationally up: on a link that
    is not (its peer is down) DAD never finishes, so there is nothing to wait for (as the reference
    since v1.7.0).
    """
    import time  # only attachments with an IPv6 gateway wait

    deadline = time.monotonic() + timeout
    while True:
        addrs = list_addresses(h, index=index, family=6)
        failed = [str(a.cidr) for a in addrs if a.dadfailed]
        if failed:
            raise OSError(errno.EADDRINUSE, f"duplicate address detected: {', '.join(failed)}")
        tentative = [str(a.cidr) for a in addrs if a.tentative]
        if not tentative:
            return
        if time.monotonic() >= deadline:
            from cni.net import link  # only on a timeout

            dev = link.get_link(h, index)
            if dev is not None and dev.operstate != "up":
                return
            still = ", ".join(tentative)
            raise TimeoutError(errno.ETIMEDOUT, f"still tentative after {timeout:g} s: {still}")
        time.sleep(0.05)
