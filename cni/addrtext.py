"""Addresses as the kernel hands them (packed bytes) printed as text, without `ipaddress`.

`ipaddress` and what it imports (functools, collections, operator, reprlib, keyword, types,
itertools) cost every call a few milliseconds at start-up; a path that only prints the
addresses it reads from netlink needs none of it. The text is exactly `str()` of the matching
`ipaddress` object (tests/properties/test_addrtext.py holds it to that).
"""

from __future__ import annotations

from cni.record import Record

TYPE_CHECKING = False


def ip_text(raw: bytes) -> str:
    """4 bytes as dotted quad, 16 as RFC 5952 text with the longest zero run (of 2+) as `::`."""
    if len(raw) == 4:
        return ".".join(map(str, raw))
    if len(raw) != 16:
        raise ValueError(f"not an IPv4 or IPv6 address: {len(raw)} bytes")
    hextets = ["%x" % (raw[i] << 8 | raw[i + 1]) for i in range(0, 16, 2)]
    best_start, best_len, start = -1, 0, -1
    for i, h in enumerate(hextets):
        if h == "0":
            if start < 0:
                start = i
            if i - start + 1 > best_len:
                best_start, best_len = start, i - start + 1
        else:
            start = -1
    if best_len > 1:
        end = best_start + best_len
        head, tail = hextets[:best_start], hextets[end:]
        return ":".join(head or [""]) + "::" + ":".join(tail or [""]) if head or tail else "::"
    return ":".join(hextets)


def offset(raw: bytes, n: int) -> bytes:
    """The address `n` after `raw` (same width), as `ipaddress` objects add an int."""
    value = int.from_bytes(raw, "big") + n
    if not 0 <= value < 1 << (len(raw) * 8):
        raise ValueError(f"{ip_text(raw)} + {n} is outside its family")
    return value.to_bytes(len(raw), "big")


def masked(raw: bytes, prefixlen: int) -> bytes:
    """`raw` with the bits after the first `prefixlen` cleared: its network's address."""
    bits = len(raw) * 8
    value = int.from_bytes(raw, "big") >> (bits - prefixlen) << (bits - prefixlen)
    return value.to_bytes(len(raw), "big")


class IP(Record):
    """A bare address (a gateway), printed as `ipaddress.ip_address` prints it.

    It answers the attributes the call path reads of an `ipaddress` address (`version`,
    `packed`, `is_link_local`), so code that takes either kind reads both the same way.
    """

    __slots__ = ("raw",)
    if TYPE_CHECKING:
        raw: bytes

    @property
    def version(self) -> int:
        return 4 if len(self.raw) == 4 else 6

    @property
    def packed(self) -> bytes:
        return self.raw

    @property
    def is_link_local(self) -> bool:
        """169.254.0.0/16 or fe80::/10, as `ipaddress` says."""
        if len(self.raw) == 4:
            return self.raw[:2] == b"\xa9\xfe"
        return self.raw[0] == 0xFE and self.raw[1] & 0xC0 == 0x80

    def __str__(self) -> str:
        return ip_text(self.raw)


class Cidr(Record):
    """An address with its prefix length ("127.0.0.1/8"), printed as `ipaddress.ip_interface` prints it.

    Like an `ipaddress` interface it is also its network's view: `ip`, `network`,
    `network_address`, `broadcast_address`, `max_prefixlen` and `address in cidr` (the address
    lies in the network), so the kernel edge (cni.net.addr, cni.net.route) and the bridge take
    either kind. Equal when address and prefix are; a network is the Cidr with no host bits.
    """

    __slots__ = ("raw", "prefixlen")
    if TYPE_CHECKING:
        raw: bytes
        prefixlen: int

    @property
    def version(self) -> int:
        return 4 if len(self.raw) == 4 else 6

    @property
    def max_prefixlen(self) -> int:
        return len(self.raw) * 8

    @property
    def is_loopback(self) -> bool:
        """As `ipaddress`'s interfaces say: any address in 127.0.0.0/8, or exactly ::1/128."""
        if len(self.raw) == 4:
            return self.raw[0] == 127
        return self.raw == b"\0" * 15 + b"\1" and self.prefixlen == 128

    @property
    def ip(self) -> IP:
        return IP(raw=self.raw)

    @property
    def network(self) -> Cidr:
        return Cidr(raw=masked(self.raw, self.prefixlen), prefixlen=self.prefixlen)

    @property
    def network_address(self) -> IP:
        return IP(raw=masked(self.raw, self.prefixlen))

    @property
    def broadcast_address(self) -> IP:
        host_bits = (1 << (self.max_prefixlen - self.prefixlen)) - 1
        value = int.from_bytes(self.raw, "big") | host_bits
        return IP(raw=value.to_bytes(len(self.raw), "big"))

    def __contains__(self, address: object) -> bool:
        raw = getattr(address, "packed", None)
        return (isinstance(raw, bytes) and len(raw) == len(self.raw)
                and masked(raw, self.prefixlen) == masked(self.raw, self.prefixlen))

    def __str__(self) -> str:
        return f"{ip_text(self.raw)}/{self.prefixlen}"


if TYPE_CHECKING:
    import ipaddress

    # What the kernel edge (cni.net), the result and the plugins take: either kind, read through
    # the attributes both answer (version, packed, prefixlen, network, ...).
    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address | IP
    IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface | Cidr
    IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network | Cidr


# ---- canonical text only ------------------------------------------------------------------
# These accept a string only when it is exactly what `ipaddress` would print for it, and say
# None for anything else (upper case, leading zeros, embedded IPv4, zone ids, netmasks, host
# bits on a network...): the caller then falls back to `ipaddress`, whose verdict and message
# stand. So a text accepted here prints unchanged, as the `ipaddress` object would print it.
_HEX = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")


def _packed(text: str) -> bytes | None:
    """The bytes of `text` if it is an address in its canonical form, else None."""
    if "." in text:
        parts = text.split(".")
        if len(parts) != 4 or not all(p and len(p) <= 3 and _DIGITS.issuperset(p) for p in parts):
            return None
        numbers = [int(p) for p in parts]
        if max(numbers) > 255:
            return None
        raw = bytes(numbers)
    else:
        halves = text.split("::")
        if len(halves) > 2:
            return None
        groups = [h.split(":") if h else [] for h in halves]
        if not all(g and len(g) <= 4 and _HEX.issuperset(g) for side in groups for g in side):
            return None
        count = sum(len(side) for side in groups)
        if (len(groups) == 1 and count != 8) or (len(groups) == 2 and count > 7):
            return None
        hextets = groups[0] + (["0"] * (8 - count) + groups[1] if len(groups) == 2 else [])
        raw = b"".join(int(g, 16).to_bytes(2, "big") for g in hextets)
    return raw if ip_text(raw) == text else None


def parse_ip(text: str) -> IP | None:
    """An address in canonical text ("10.1.0.1", "fd00::1"), else None."""
    raw = _packed(text)
    return None if raw is None else IP(raw=raw)


def _prefix(text: str, raw: bytes) -> int | None:
    if not text or not _DIGITS.issuperset(text) or (len(text) > 1 and text[0] == "0"):
        return None
    prefixlen = int(text)
    return prefixlen if prefixlen <= len(raw) * 8 else None


def parse_cidr(text: str) -> Cidr | None:
    """An address with a prefix length in canonical text ("10.1.0.5/24"), else None."""
    address, slash, prefix = text.partition("/")
    raw = _packed(address) if slash else None
    prefixlen = None if raw is None else _prefix(prefix, raw)
    return None if prefixlen is None else Cidr(raw=raw, prefixlen=prefixlen)


def parse_network(text: str) -> Cidr | None:
    """A network in canonical text, no host bits set ("10.1.0.0/16"), else None."""
    cidr = parse_cidr(text)
    if cidr is None:
        return None
    host_bits = len(cidr.raw) * 8 - cidr.prefixlen
    return cidr if int.from_bytes(cidr.raw, "big") & ((1 << host_bits) - 1) == 0 else None
