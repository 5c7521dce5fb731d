"""loopback: bring the container's `lo` up (ADD), down (DEL), and check it is up (CHECK).

CNI_IFNAME is ignored, as in the reference plugin: the loopback device is always `lo`.
"""

from __future__ import annotations

from cni.addrtext import Cidr
from cni.contract.errors import INTERNAL, CNIError
from cni.contract.request import Request
from cni.contract.result import Interface, IPConfig, Result, text_always
from cni.contract.versions import SUPPORTED
from cni.net import addr, link
from cni.net.netns import open_handle

TYPE = "loopback"
SCHEMA = "loopback"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
NEEDS_NETNS = True
VERSIONS = SUPPORTED
READS_PREV_RESULT = True
IPAM = False
# prevResult is passed on (ADD) or not read (CHECK, DEL): its addresses stay text.
prev_result_as_text = text_always

LOOPBACK_MAC = "00:00:00:00:00:00"


def add(req: Request) -> Result:
    with open_handle(req.netns) as h:
        lo = _lo(h)
        link.set_link(h, lo.index, up=True)
        # Cidr, not ipaddress: this path only classifies and prints what the kernel lists.
        addresses = [a.cidr for a in addr.list_addresses(h, index=lo.index)]
    # The reference's message, naming the first such address (IPv4 before IPv6, as it lists them);
    # the details name them all.
    foreign = [ip for version in (4, 6) for ip in addresses if ip.version == version and not _loopback(ip)]
    if foreign:
        raise CNIError(INTERNAL, f'loopback interface found with non-loopback address "{foreign[0].ip}"',
                       f"lo in {req.netns} holds {', '.join(map(str, foreign))}; the loopback plugin "
                       "only manages 127.0.0.0/8 and ::1")
    if req.prev_result is not None:
        return req.prev_result
    return Result(
        interfaces=[Interface(name="lo", mac=LOOPBACK_MAC, sandbox=req.netns)],
        ips=[IPConfig(address=ip, interface=0) for ip in _first_per_family(addresses)],
    )


def delete(req: Request) -> None:
    if not req.netns:
        return
    try:
        h = open_handle(req.netns)
    except OSError:
        return  # the namespace is gone: so is its loopback device
    with h:
        lo = link.get_link(h, "lo")
        if lo is not None:
            link.set_link(h, lo.index, up=False)


def check(req: Request) -> None:
    with open_handle(req.netns) as h:
        if not _lo(h).up:
            raise CNIError(INTERNAL, "loopback interface is down",
                           f"lo in {req.netns} is down; ADD sets it up")


def status(req: Request) -> None:
    """Nothing to depend on: always ready."""


def gc(req: Request) -> None:
    """loopback keeps no state outside the container's namespace."""


def _lo(h: link.Handle) -> link.Link:
    lo = link.get_link(h, "lo")
    if lo is None:
        raise CNIError(INTERNAL, "no lo device in the container's network namespace")
    return lo


def _loopback(cidr: Cidr) -> bool:
    """Go's IP.IsLoopback, as the reference asks it: the address alone, whatever the prefix
    (so `::1/64` is loopback too, and `::ffff:127.0.0.1`)."""
    raw = cidr.raw
    if len(raw) == 16 and raw[:12] == _V4_MAPPED:
        raw = raw[12:]
    return raw[0] == 127 if len(raw) == 4 else raw == _V6_LOOPBACK


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"
_V6_LOOPBACK = b"\0" * 15 + b"\1"


def _first_per_family(addresses: list[Cidr]) -> list[Cidr]:
    out = []
    for version in (4, 6):
        first = next((ip for ip in addresses if ip.version == version), None)
        if first is not None:
            out.append(first)
    return out
