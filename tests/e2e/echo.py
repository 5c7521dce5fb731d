"""Who did the receiver see? A small TCP server in a namespace answers every connection with the
peer address it saw (and its own, the address the connection finally reached), so a check of NAT
(or its absence) is made by the receiver itself."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import ns_argv

PORT = 8080
PROBE_TIMEOUT = 3.0

# The server: accept, answer "PEER LOCAL" (the two addresses of the connection), repeat.
# It prints "ready" once listening.
SERVER = """
import socket, sys
v6 = sys.argv[2] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::" if v6 else "0.0.0.0", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    with c:
        c.sendall((peer[0] + " " + c.getsockname()[0]).encode())
"""

# The client: connect to every target given as argv after the port, print {target: seen-as | "error: ..."}.
CLIENT = f"""
import json, socket, sys
out = {{}}
port = int(sys.argv[1])
for target in sys.argv[2:]:
    try:
        with socket.create_connection((target, port), timeout={PROBE_TIMEOUT}) as c:
            out[target] = c.recv(64).decode()
    except OSError as exc:
        out[target] = "error: " + str(exc)
print(json.dumps(out))
"""


def _enter(netns_path: str) -> list[str]:
    return ns_argv(netns_path, sys.executable, "-I", "-c")


class EchoServers:
    """Servers started in namespaces; :meth:`close` kills them all."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def serve(self, netns_path: str, port: int = PORT, family: int = 4) -> None:
        """A server for one address family (4 or 6), so each family's peers show in their own form."""
        proc = subprocess.Popen([*_enter(netns_path), SERVER, str(port), str(family)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if line != "ready":
            raise AssertionError(f"echo server in {netns_path} did not start: {line!r} "
                                 f"{proc.stderr.read() if proc.stderr else ''}")

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        self.procs.clear()


def probe_both(netns_path: str, targets: list[str], port: int = PORT) -> dict[str, str]:
    """From ``netns_path``, connect to every target's ``port``; each receiver's "PEER LOCAL" (or
    "error: ...")."""
    argv = [*_enter(netns_path), CLIENT, str(port), *targets]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT * len(targets) + 30)
    if proc.returncode != 0:
        raise AssertionError(f"probe from {netns_path} exited {proc.returncode}: {proc.stderr}")
    return json.loads(proc.stdout)


def probe(netns_path: str, targets: list[str], port: int = PORT) -> dict[str, str]:
    """What each receiver saw as the source address (or "error: ...")."""
    return {t: seen if seen.startswith("error:") else seen.split()[0]
            for t, seen in probe_both(netns_path, targets, port).items()}
