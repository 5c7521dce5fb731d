"""Everything the bench creates on the host, and the one place that removes it again.

The machine is shared: every name is unique to this run (``pcbench-<run>-<hex>`` namespaces,
``pcbb<run><hex>`` bridges, subnets of the benchmarking range 198.18.0.0/15 that no route on the
host overlaps), and cleanup deletes exactly what this run registered, never anything matched by a
pattern.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from cni.layout import portmap as hostport
from cni.layout.iptables_save import quote

from . import spawn

NETNS_DIR = "/var/run/netns"
# portmap's chains that all pods share; its DEL (ours and the reference's) leaves them in place
HOSTPORT_SHARED = (hostport.DNAT_CHAIN, hostport.SETMARK_CHAIN, hostport.MASQ_CHAIN)
HOSTPORT_JUMPS = (f"PREROUTING -m addrtype --dst-type LOCAL -j {hostport.DNAT_CHAIN}",
                  f"OUTPUT -m addrtype --dst-type LOCAL -j {hostport.DNAT_CHAIN}",
                  f"POSTROUTING -m comment --comment {quote(hostport.MASQ_COMMENT)} -j {hostport.MASQ_CHAIN}")
BENCH_RANGE = ipaddress.ip_network("198.18.0.0/15")


def ip(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, input=stdin, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args[:4])}...: {proc.stderr.strip()}")
    return proc


class Host:
    """Registry of the namespaces, links and directories this run made; ``cleanup`` removes them all."""

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(3)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pycni-benchrun-{self.run_id}-"))
        self.netns: set[str] = set()
        self.links: set[str] = set()
        self._subnets: set[ipaddress.IPv4Network] = set()
        self._serial = 0
        self._hostport_before = {fam: _nat_has(fam, HOSTPORT_SHARED[0]) for fam in (4, 6)}

    # ------------------------------------------------------------------ names
    def name(self, prefix: str, width: int = 8) -> str:
        """A name no one else uses: the prefix, then random hex."""
        return prefix + secrets.token_hex(width // 2)

    def bridge_name(self) -> str:
        """``pcbb``, this run's id and random hex (14 characters, under IFNAMSIZ)."""
        name = self.name(f"pcbb{self.run_id}", 4)
        self.links.add(name)
        return name

    def register_link(self, name: str) -> None:
        self.links.add(name)

    def subnet(self) -> ipaddress.IPv4Network:
        """A random /24 of 198.18.0.0/15 that no route on the host overlaps yet."""
        routes = json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
        taken = []
        for r in routes:
            dst = r.get("dst", "")
            if dst and dst != "default":
                try:
                    taken.append(ipaddress.ip_network(dst, strict=False))
                except ValueError:
                    continue
        for _ in range(1000):
            index = secrets.randbelow(1 << (24 - 15))
            net = ipaddress.IPv4Network((int(BENCH_RANGE.network_address) + (index << 8), 24))
            if net in self._subnets or any(net.overlaps(t) for t in taken):
                continue
            self._subnets.add(net)
            return net
        raise RuntimeError("no free /24 in 198.18.0.0/15")

    def directory(self, label: str) -> Path:
        self._serial += 1
        path = self.tmp / f"{label}-{self._serial}"
        path.mkdir(parents=True)
        return path

    # ------------------------------------------------------------------ namespaces
    def add_netns(self, count: int) -> list[str]:
        """Create ``count`` namespaces in one ``ip -batch`` and return their paths."""
        names = [self.name(f"pcbench-{self.run_id}-", 8) for _ in range(count)]
        self.netns.update(names)
        ip("-batch", "-", stdin="".join(f"netns add {n}\n" for n in names))
        return [f"{NETNS_DIR}/{n}" for n in names]

    def del_netns(self, paths: list[str]) -> None:
        names = [os.path.basename(p) for p in paths]
        existing = [n for n in names if os.path.exists(f"{NETNS_DIR}/{n}")]
        if existing:
            ip("-batch", "-", "-force", stdin="".join(f"netns del {n}\n" for n in existing), check=False)
        self.netns.difference_update(names)

    # ------------------------------------------------------------------ cleanup
    def leftovers(self) -> list[str]:
        """What of ours is still on the host (for the final report; should be empty)."""
        out = [f"netns {n}" for n in sorted(self.netns) if os.path.exists(f"{NETNS_DIR}/{n}")]
        out += [f"link {n}" for n in sorted(self.links) if os.path.exists(f"/sys/class/net/{n}")]
        if self.tmp.exists():
            out.append(f"dir {self.tmp}")
        return out

    def cleanup(self) -> list[str]:
        """Kill our running plugins, delete our namespaces, links and directories; return what stayed."""
        spawn.kill_running()
        self.del_netns([f"{NETNS_DIR}/{n}" for n in list(self.netns)])
        links = [n for n in sorted(self.links) if os.path.exists(f"/sys/class/net/{n}")]
        if links:
            ip("-batch", "-", "-force", stdin="".join(f"link del {n}\n" for n in links), check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        for fam, before in self._hostport_before.items():
            if not before:
                _drop_hostport_shared(fam)
        remaining = self.leftovers()
        self.links = {n for n in self.links if os.path.exists(f"/sys/class/net/{n}")}
        return remaining


def _nat_save(family: int) -> str:
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    try:
        proc = subprocess.run([tool, "-t", "nat"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def _nat_has(family: int, chain: str) -> bool:
    return f":{chain} " in _nat_save(family)


def _drop_hostport_shared(family: int) -> None:
    """Remove the portmap chains shared by all pods when this run made them and no pod still uses
    them (no entry left in CNI-HOSTPORT-DNAT): the host's nat table ends as it began."""
    saved = _nat_save(family)
    if f":{HOSTPORT_SHARED[0]} " not in saved or f"-A {HOSTPORT_SHARED[0]} " in saved:
        return
    lines = ["*nat"] + [f"-D {j}" for j in HOSTPORT_JUMPS if f"-A {j}" in saved]
    for chain in HOSTPORT_SHARED:
        if f":{chain} " in saved:
            lines += [f"-F {chain}", f"-X {chain}"]
    tool = "iptables-restore" if family == 4 else "ip6tables-restore"
    subprocess.run([tool, "-w", "--noflush"], input="\n".join([*lines, "COMMIT", ""]), capture_output=True,
                   text=True, timeout=60, check=False)
