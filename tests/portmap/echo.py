"""A tiny echo peer for the hostPort tests: the server answers every TCP connection and UDP
datagram with the source address it saw, so a test learns whether DNAT preserved it.

    python3 echo.py serve PORT           listen on TCP and UDP, IPv4 and IPv6; prints "ready"
    python3 echo.py ask tcp|udp HOST PORT   print the server's answer (exit 1 on timeout)
    python3 echo.py flow HOST PORT SPORT    UDP from a fixed source port (a conntrack entry)
"""

from __future__ import annotations

import select
import socket
import sys

TIMEOUT = 10.0  # generous: the machine is shared, and a timeout here reads as "unreachable"
UDP_TRIES = 5


def serve(port: int) -> None:
    socks = []
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(family, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
            if kind == socket.SOCK_STREAM:
                s.listen(16)
            socks.append(s)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            if s.type == socket.SOCK_STREAM:
                conn, peer = s.accept()
                conn.sendall(f"{peer[0]}\n".encode())
                conn.close()
            else:
                _, peer = s.recvfrom(2048)
                s.sendto(f"{peer[0]}\n".encode(), peer)


def ask(proto: str, host: str, port: int, sport: int = 0) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if proto == "tcp":
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            return s.recv(256).decode().strip()
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT / UDP_TRIES)
        if sport:
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", sport))
        for _ in range(UDP_TRIES):
            s.sendto(b"?", (host, port))
            try:
                return s.recv(256).decode().strip()
            except TimeoutError:
                continue
    raise TimeoutError(f"no answer from {host} udp/{port}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        try:
            if sys.argv[1] == "flow":
                print(ask("udp", sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
            else:
                print(ask(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        except OSError as e:
            print(f"error: {e}")
            sys.exit(1)
