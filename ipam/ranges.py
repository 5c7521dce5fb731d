"""Address ranges of host-local: addresses read as Go reads them, ranges made canonical and checked.

Pure: values in, values out. `config` decodes the JSON into raw ranges; the rules that give a
range its defaults and refuse a bad one, in the reference's order and words, are here.
Addresses are integers with their family: canonical text is read by `cni.addrtext`, and only other
text (upper case, embedded IPv4, leading zeros...) loads `ipaddress`, whose verdict stands.
"""

from __future__ import annotations

from cni import addrtext

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def _mapped(value: int) -> bool:
    """An IPv6 value in ::ffff:0:0/96, where IPv6 carries IPv4 addresses (Go reads them as IPv4)."""
    return value >> 32 == 0xFFFF


class Addr:
    """An address as its family and integer value: the allocator walks integers, and `ipaddress`
    (a few milliseconds of start-up per call) is needed only to read text that is not canonical."""

    __slots__ = ("value", "version")

    def __init__(self, version: int, value: int) -> None:
        self.version = version
        self.value = value

    @property
    def bits(self) -> int:
        return 32 if self.version == 4 else 128

    @property
    def raw(self) -> bytes:
        return self.value.to_bytes(self.bits // 8, "big")

    def ip(self) -> addrtext.IP:
        """As a result holds it (printed as `ipaddress` prints it)."""
        return addrtext.IP(raw=self.raw)

    def __int__(self) -> int:
        return self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Addr) and self.version == other.version and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.version, self.value))

    def __lt__(self, other: Addr) -> bool:
        return (self.version, self.value) < (other.version, other.value)

    def __le__(self, other: Addr) -> bool:
        return (self.version, self.value) <= (other.version, other.value)

    def __gt__(self, other: Addr) -> bool:
        return (self.version, self.value) > (other.version, other.value)

    def __ge__(self, other: Addr) -> bool:
        return (self.version, self.value) >= (other.version, other.value)

    def __str__(self) -> str:
        return ip_name(self)

    def __repr__(self) -> str:
        return f"Addr({ip_name(self)!r})"


class Network:
    """A subnet: family, first address (no host bits) and prefix length."""

    __slots__ = ("base", "prefixlen", "version")

    def __init__(self, version: int, base: int, prefixlen: int) -> None:
        self.version = version
        self.base = base
        self.prefixlen = prefixlen

    @classmethod
    def of(cls, addr: Addr, prefixlen: int) -> Network:
        """The network of prefixlen bits around addr (its host bits cleared)."""
        host = addr.bits - prefixlen
        return cls(addr.version, addr.value >> host << host, prefixlen)

    @property
    def max_prefixlen(self) -> int:
        return 32 if self.version == 4 else 128

    @property
    def last(self) -> int:
        """The integer of the network's last address (IPv4's broadcast)."""
        return self.base | ((1 << (self.max_prefixlen - self.prefixlen)) - 1)

    @property
    def num_addresses(self) -> int:
        return 1 << (self.max_prefixlen - self.prefixlen)

    def cidr(self) -> addrtext.Cidr:
        """As a result holds a route's destination (printed as `ipaddress.ip_network` prints it)."""
        return addrtext.Cidr(raw=Addr(self.version, self.base).raw, prefixlen=self.prefixlen)

    def __contains__(self, addr: Addr) -> bool:
        return addr.version == self.version and self.base <= addr.value <= self.last

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Network) and self.version == other.version and self.base == other.base
                and self.prefixlen == other.prefixlen)

    def __hash__(self) -> int:
        return hash((self.version, self.base, self.prefixlen))

    def __str__(self) -> str:
        return f"{addrtext.ip_text(Addr(self.version, self.base).raw)}/{self.prefixlen}"

    def __repr__(self) -> str:
        return f"Network({str(self)!r})"


def _from_raw(raw: bytes) -> Addr:
    """Packed bytes as Go reads them: an IPv4-mapped IPv6 address is the IPv4 address."""
    value = int.from_bytes(raw, "big")
    if len(raw) == 4:
        return Addr(4, value)
    if _mapped(value):
        return Addr(4, value & 0xFFFFFFFF)
    return Addr(6, value)


def parse_ip(text: str) -> Addr | None:
    """An address as Go's net.ParseIP reads it, in canonical form (IPv4-mapped IPv6 becomes IPv4)."""
    fast = addrtext.parse_ip(text)
    return _from_raw(fast.raw) if fast is not None else _parse_ip_slow(text)


def _parse_ip_slow(text: str) -> Addr | None:
    """Text that is not canonical (upper case, embedded IPv4, leading zeros...): `ipaddress` judges."""
    if not text or "%" in text or "/" in text:
        return None
    import ipaddress

    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return _from_raw(ip.packed)


def ip_name(ip: Addr) -> str:
    """Go's net.IP.String() (dotted IPv4, RFC 5952 lower-case IPv6): the file name of a reservation."""
    if ip.version == 6 and _mapped(ip.value):
        return addrtext.ip_text((ip.value & 0xFFFFFFFF).to_bytes(4, "big"))
    return addrtext.ip_text(ip.raw)


def parse_cidr(text: str) -> tuple[Addr, int, bool] | None:
    """Go's net.ParseCIDR: (address as written, prefix length, written as IPv6) or None."""
    fast = addrtext.parse_cidr(text)
    if fast is not None:
        return _from_raw(fast.raw), fast.prefixlen, len(fast.raw) == 16
    return _parse_cidr_slow(text)


def _parse_cidr_slow(text: str) -> tuple[Addr, int, bool] | None:
    addr_text, slash, prefix_text = text.partition("/")
    if not slash or not prefix_text.isdigit() or not prefix_text.isascii() or len(prefix_text) > 3:
        return None
    if not addr_text or "%" in addr_text:
        return None
    import ipaddress

    try:
        raw = ipaddress.ip_address(addr_text)
    except ValueError:
        return None
    prefix = int(prefix_text)
    if prefix > raw.max_prefixlen:
        return None
    return _from_raw(raw.packed), prefix, raw.version == 6


def parse_requested(text: str) -> Addr | None:
    """A requested address, `ip` or `ip/prefix` (the prefix is ignored), or None when invalid."""
    if "/" in text:
        parsed = parse_cidr(text)
        return parsed[0] if parsed else None
    return parse_ip(text)


class Range:
    """One canonical range: a subnet, inclusive first and last addresses, and the gateway."""

    __slots__ = ("end", "first", "gateway", "gw", "last", "start", "subnet")

    def __init__(self, subnet: Network, start: Addr, end: Addr, gateway: Addr) -> None:
        self.subnet = subnet
        self.start = start
        self.end = end
        self.gateway = gateway
        # Integers for the allocator's walk (the gateway is of the subnet's family: canonical_range).
        self.first = start.value
        self.last = end.value
        self.gw = gateway.value

    @property
    def version(self) -> int:
        return self.subnet.version

    def contains(self, ip: Addr) -> bool:
        """True when ip lies between start and end (both inclusive) and is of this family."""
        return ip.version == self.subnet.version and self.first <= ip.value <= self.last

    def address(self, value: int) -> Addr:
        return Addr(self.subnet.version, value)

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


def range_for(rs: Iterable[Range], ip: Addr) -> Range | None:
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

    def __init__(self, subnet: tuple[Addr, int, bool] | None, start: Addr | None,
                 end: Addr | None, gateway: Addr | None) -> None:
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
    network = Network.of(addr, prefix)
    if network.base != addr.value:
        raise Invalid(f"Network has host bits set. For a subnet mask of length {prefix} "
                       f"the network address is {ip_name(Addr(network.version, network.base))}")
    version = network.version
    base = network.base
    gateway = raw.gateway if raw.gateway is not None else Addr(version, base + 1)
    if gateway.version != version:  # the reference takes it, and the bridge would route a wrong net
        raise Invalid(f"gateway {ip_name(gateway)} is not of the family of network {network}")

    start = raw.start
    if start is not None:
        # The reference compares the start with a given end before it checks the end.
        backwards = raw.end is not None and raw.end.version == start.version and start > raw.end
        if start not in network or backwards:
            raise Invalid(f"RangeStart {ip_name(start)} not in network {network}")
    else:
        start = Addr(version, base + 1)

    end = raw.end
    if end is not None:
        if end not in network or end < start:
            raise Invalid(f"RangeEnd {ip_name(end)} not in network {network}")
    else:
        last = network.last
        end = Addr(version, last - 1 if version == 4 else last)
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
