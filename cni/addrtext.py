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


class Cidr(Record):
    """An address with its prefix length ("127.0.0.1/8"), printed as `ipaddress.ip_interface` prints it."""

    __slots__ = ("raw", "prefixlen")
    if TYPE_CHECKING:
        raw: bytes
        prefixlen: int

    @property
    def version(self) -> int:
        return 4 if len(self.raw) == 4 else 6

    @property
    def is_loopback(self) -> bool:
        """As `ipaddress`'s interfaces say: any address in 127.0.0.0/8, or exactly ::1/128."""
        if len(self.raw) == 4:
            return self.raw[0] == 127
        return self.raw == b"\0" * 15 + b"\1" and self.prefixlen == 128

    def __str__(self) -> str:
        return f"{ip_text(self.raw)}/{self.prefixlen}"

