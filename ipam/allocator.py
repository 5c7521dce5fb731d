"""Which addresses to try, in which order: the reference plugin's allocation rules over data.

Pure: nothing here reads or writes the disk. The store takes the candidates in the order given
here and keeps the first one nobody holds yet.

Round robin: the walk starts just after the range set's last reserved address, so an address
that was just released is handed out again only after the whole set has been used once (stale
ARP caches in other pods then have time to expire). It goes from each range's start to its end,
then on to the next range of the set, wrapping from the last range to the first, skips each
range's gateway, and stops when it comes back to where it started.
"""

from __future__ import annotations

from cni.contract.errors import INTERNAL, CNIError

from .ranges import ip_name, range_for, range_set_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .ranges import Addr, Range, RangeSet


def candidates(rs: RangeSet, last_reserved: Addr | None) -> Iterator[tuple[Addr, Range]]:
    """Every allocatable address of the set once, in round-robin order after `last_reserved`.

    `last_reserved` outside the set (or None) starts the walk at the first range's start.
    The last reserved address itself comes last.
    """
    count = len(rs)
    idx = 0
    cur: int | None = None
    stop: int | None = None
    if last_reserved is not None:
        for i, r in enumerate(rs):
            if r.contains(last_reserved):
                idx, cur = i, int(last_reserved)
                break
    while True:
        r = rs[idx]
        if cur is None:
            cur = stop = r.first
        else:
            if cur == r.last:
                idx = (idx + 1) % count
                r = rs[idx]
                cur = r.first
            else:
                cur += 1
            if stop is None:
                stop = cur
            elif cur == stop:
                return
        if cur == r.gw:
            continue
        yield r.address(cur), r


def assign_requested(ranges: list[RangeSet], requested: Iterable[Addr],
                     ) -> tuple[list[Addr | None], list[Addr]]:
    """Give each range set the first requested address inside it; also return the ones no set took."""
    remaining = list(requested)
    per_set: list[Addr | None] = []
    for rs in ranges:
        pick = None
        for ip in remaining:
            if range_for(rs, ip) is not None:
                pick = ip
                remaining.remove(ip)
                break
        per_set.append(pick)
    return per_set, remaining


def requested_range(rs: RangeSet, ip: Addr) -> Range:
    """The range a requested address belongs to; asking for a gateway is refused."""
    r = range_for(rs, ip)
    if r is None:
        raise CNIError(INTERNAL, f"{ip_name(ip)} not in range set {range_set_str(rs)}")
    if ip == r.gateway:
        raise CNIError(INTERNAL, f"requested ip {ip_name(ip)} is subnet's gateway")
    return r


def check_duplicate(rs: RangeSet, held: Iterable[Addr], container_id: str) -> None:
    """One address per attachment and range set: refuse when the attachment already holds one here."""
    for ip in held:
        if range_for(rs, ip) is not None:
            raise CNIError(INTERNAL, f"{ip_name(ip)} has been allocated to {container_id}, "
                                     "duplicate allocation is not allowed")


def capacity(rs: RangeSet) -> int:
    """How many addresses the set can hand out (each range's own gateway excluded)."""
    total = 0
    for r in rs:
        total += r.last - r.first + 1
        if r.first <= r.gw <= r.last:
            total -= 1
    return total


def free_count(rs: RangeSet, reserved: Iterable[Addr]) -> int:
    """Addresses of the set that no reservation holds."""
    used = set()
    for ip in reserved:
        r = range_for(rs, ip)
        if r is not None and int(ip) != r.gw:
            used.add(int(ip))
    return capacity(rs) - len(used)


def exhausted_error(rs: RangeSet) -> CNIError:
    return CNIError(INTERNAL, f"no IP addresses available in range set: {range_set_str(rs)}")


def unavailable_error(rs: RangeSet, ip: Addr) -> CNIError:
    return CNIError(INTERNAL, f"requested IP address {ip_name(ip)} is not available in range set "
                              f"{range_set_str(rs)}")
