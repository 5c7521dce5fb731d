"""Unique names and addresses, so concurrent runs never collide with each other or the host."""

from __future__ import annotations

import ipaddress
import secrets

IFNAMSIZ = 15  # longest Linux interface name


def unique_name(prefix: str, hex_chars: int = 8) -> str:
    """``prefix`` followed by random hex; fits an interface name when the total is at most 15 chars."""
    return prefix + secrets.token_hex((hex_chars + 1) // 2)[:hex_chars]


def unique_ifname(prefix: str = "pcb") -> str:
    """A random interface name of at most 15 characters, e.g. ``pcb1a2b3c4d``."""
    name = unique_name(prefix, 8)
    if len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} longer than {IFNAMSIZ}")
    return name


_ISSUED_V4: list[ipaddress.IPv4Network] = []


def unique_subnet_v4(prefixlen: int = 24) -> ipaddress.IPv4Network:
    """A random subnet of 198.18.0.0/15 (the benchmarking range, which real networks do not route),
    overlapping none this process handed out before: with 512 /24s, two random draws in one test
    (an old and a new subnet) would otherwise be the same one time in 512. When the range is used
    up, the oldest subnets are handed out again."""
    if not 15 <= prefixlen <= 30:
        raise ValueError("prefixlen must be in [15, 30]")
    base = int(ipaddress.ip_address("198.18.0.0"))
    for _ in range(4096):
        index = secrets.randbelow(1 << (prefixlen - 15))
        net = ipaddress.ip_network((base + (index << (32 - prefixlen)), prefixlen))
        if not any(net.overlaps(old) for old in _ISSUED_V4):
            break
    else:
        del _ISSUED_V4[: len(_ISSUED_V4) // 2]
    _ISSUED_V4.append(net)
    return net


def unique_subnet_v6(prefixlen: int = 64) -> ipaddress.IPv6Network:
    """A random subnet from the documentation range 2001:db8::/32."""
    if not 32 < prefixlen <= 120:
        raise ValueError("prefixlen must be in (32, 120]")
    index = secrets.randbits(min(prefixlen - 32, 32))
    base = int(ipaddress.ip_address("2001:db8::"))
    return ipaddress.ip_network((base | (index << (128 - 32 - min(prefixlen - 32, 32))), prefixlen))
