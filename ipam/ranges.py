"""Address ranges of host-local: addresses read as Go reads them, ranges made canonical and checked.

Pure: values in, values out. `config` decodes the JSON into raw ranges; the rules that give a
range its defaults and refuse a bad one, in the reference's order and words, are here.
"""

from __future__ import annotations

import ipaddress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> IPAddress | None:
    """An address as Go's net.ParseIP reads it, in canonical form (IPv4-mapped IPv6 becomes IPv4)."""
    if not text or "%" in text or "/" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def ip_name(ip: IPAddress) -> str:
    """Go's net.IP.String() (dotted IPv4, RFC 5952 lower-case IPv6): the file name of a reservation."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_cidr(text: str) -> tuple[IPAddress, int, bool] | None:
    """Go's net.ParseCIDR: (address as written, prefix length, written as IPv6) or None."""
    addr_text, slash, prefix_text = text.partition("/")
    if not slash or not prefix_text.isdigit() or not prefix_text.isascii() or len(prefix_text) > 3:
        return None
    if not addr_text or "%" in addr_text:
        return None
    try:
        raw = ipaddress.ip_address(addr_text)
    except ValueError:
        return None
    prefix = int(prefix_text)
    if prefix > raw.max_prefixlen:
        return None
    written_v6 = raw.version == 6
    if written_v6 and raw.ipv4_mapped is not None:
        return raw.ipv4_mapped, prefix, True
    return raw, prefix, written_v6


def parse_requested(text: str) -> IPAddress | None:
    """A requested address, `ip` or `ip/prefix` (the prefix is ignored), or None when invalid."""
    if "/" in text:
        parsed = parse_cidr(text)
        return parsed[0] if parsed else None
    return parse_ip(text)


def make_ip(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


class Range:
    """One canonical range: a subnet, inclusive first and last addresses, and the gateway."""

    __slots__ = ("end", "first", "gateway", "gw", "last", "start", "subnet")

    def __init__(self, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, start: IPAddress,
                 end: IPAddress, gateway: IPAddress) -> None:
        self.subnet = subnet
        self.start = start
        self.end = end
        self.gateway = gateway
        # Integers for the allocator's walk; gw is None when the gateway is of the other family.
        self.first = int(start)
        self.last = int(end)
        self.gw = int(gateway) if gateway.version == subnet.version else None

    @property
    def version(self) -> int:
        return self.subnet.version

    def contains(self, ip: IPAddress) -> bool:
        """True when ip lies between start and end (both inclusive) and is of this family."""
        return ip.version == self.subnet.version and self.first <= int(ip) <= self.last

    def address(self, value: int) -> IPAddress:
        return make_ip(self.subnet.version, value)

    def __str__(self) -> str:
        return f"{ip_name(self.start)}-{ip_name(self.end)}"

    def __repr__(self) -> str:
        return f"Range({self.subnet}, {self}, gw={self.gateway})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Range) and self.subnet == other.subnet and self.start == other.start
                and self.end == other.end and self.gateway == other.gateway)

    def __hash__(self) -> int:
        return hash((self.subnet, self.start, self.end, self.gateway))


RangeSet = list[Range]


def range_set_str(rs: Iterable[Range]) -> str:
    return ",".join(str(r) for r in rs)


def range_for(rs: Iterable[Range], ip: IPAddress) -> Range | None:
    """The first range of a set that contains ip."""
    for r in rs:
        if r.contains(ip):
            return r
    return None


def overlaps(a: Range, b: Range) -> bool:
    return a.version == b.version and a.first <= b.last and b.first <= a.last


class RawRange:
    """A range as decoded from JSON, before defaults and validation."""

    __slots__ = ("end", "gateway", "start", "subnet")

    def __init__(self, subnet: tuple[IPAddress, int, bool] | None, start: IPAddress | None,
                 end: IPAddress | None, gateway: IPAddress | None) -> None:
        self.subnet = subnet
        self.start = start
        self.end = end
        self.gateway = gateway


class Invalid(Exception):
    """A validation failure inside one range set; the caller names the set."""


def canonical_range(raw: RawRange) -> Range:
    """Defaults and validation of one range, in the reference's order and words."""
    if raw.subnet is None:
        raise Invalid("range has no subnet")
    addr, prefix, written_v6 = raw.subnet
    bits = 128 if written_v6 else 32
    if prefix > bits - 2:
        raise Invalid(f"Network {ip_name(addr)}/{prefix} too small to allocate from")
    if written_v6 and addr.version == 4:
        raise Invalid("IPNet IP and Mask version mismatch")
    shift = bits - prefix
    network = ipaddress.ip_network((make_ip(addr.version, int(addr) >> shift << shift), prefix))
    if network.network_address != addr:
        raise Invalid(f"Network has host bits set. For a subnet mask of length {prefix} "
                       f"the network address is {ip_name(network.network_address)}")
    version = network.version
    base = int(network.network_address)
    gateway = raw.gateway if raw.gateway is not None else make_ip(version, base + 1)

    start = raw.start
    if start is not None:
        # The reference compares the start with a given end before it checks the end.
        backwards = raw.end is not None and raw.end.version == start.version and start > raw.end
        if start.version != version or start not in network or backwards:
            raise Invalid(f"RangeStart {ip_name(start)} not in network {network}")
    else:
        start = make_ip(version, base + 1)

    end = raw.end
    if end is not None:
        if end.version != version or end not in network or end < start:
            raise Invalid(f"RangeEnd {ip_name(end)} not in network {network}")
    else:
        last = int(network.broadcast_address)
        end = make_ip(version, last - 1 if version == 4 else last)
        if start > end:  # rangeStart on the IPv4 broadcast address: an empty range, never walked
            raise Invalid(f"RangeStart {ip_name(start)} is after the last usable address {ip_name(end)} "
                          f"of network {network}")
    return Range(network, start, end, gateway)


def canonical_set(raw_set: list[RawRange]) -> RangeSet:
    if not raw_set:
        raise Invalid("empty range set")
    ranges: RangeSet = []
    for raw in raw_set:
        r = canonical_range(raw)
        if ranges and r.start.version != ranges[0].start.version:
            raise Invalid("mixed address families")
        ranges.append(r)
    for i, r1 in enumerate(ranges):
        for r2 in ranges[i + 1:]:
            if overlaps(r1, r2):
                raise Invalid(f"subnets {r1} and {r2} overlap")
    return ranges
