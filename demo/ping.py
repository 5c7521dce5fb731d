"""ICMP echo from inside a network namespace, with the standard library only (no ping binary needed)."""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time

from cni.net import netns


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns_path: str, target: str, timeout: float = 1.0, count: int = 3) -> float | None:
    """Round-trip time in ms of the first answered echo from the namespace to `target`, or None."""
    addr = ipaddress.ip_address(target)
    v6 = addr.version == 6
    with netns.entered(netns_path):  # a socket stays in the namespace it was created in
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                             socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    echo_request, echo_reply = (128, 129) if v6 else (8, 0)
    try:
        for seq in range(1, count + 1):
            payload = b"pycni-demo" + struct.pack("!d", time.monotonic())
            header = struct.pack("!BBHHH", echo_request, 0, 0, ident, seq)
            csum = 0 if v6 else _checksum(header + payload)  # the kernel fills in the ICMPv6 sum
            packet = struct.pack("!BBHHH", echo_request, 0, csum, ident, seq) + payload
            sent = time.monotonic()
            sock.sendto(packet, (target, 0))
            deadline = sent + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data = sock.recv(2048)
                icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
                kind, _code, _sum, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if kind == echo_reply and rid == ident and rseq == seq:
                    return (time.monotonic() - sent) * 1000
        return None
    finally:
        sock.close()
