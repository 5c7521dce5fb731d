"""Fixtures of the bridge tests: plugin directories, networks with unique names, firewall clean-up.

``ours``  a CNI_PATH directory with our ``bridge``, ``loopback`` and ``host-local`` (the reference's
          host-local only with ``PYCNI_REF_HOSTLOCAL=1``; ours failing VERSION fails the tests).
``ref``   the reference plugins v1.9.1 (``ref_bin_dir``: ../shared/realnode).
``net``   factory: ``net(plugin_conf, version=...) -> Net`` writes a one-plugin conflist with a unique
          network name and a private IPAM dataDir, and runs cnitool on it with either directory;
          every rule and chain named after that network is removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import conflist, unique_name

from cni.layout import masq as masq_layout

SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")
NFT_TABLES = ((masq_layout.NFT_FAMILY, masq_layout.NFT_TABLE), ("bridge", "nat"))
MASQ_CHAIN = (masq_layout.NFT_FAMILY, masq_layout.NFT_TABLE, masq_layout.NFT_CHAIN)


def _check_our_hostlocal(bin_dir: Path) -> None:
    """Fail (not fall back to the reference) when our host-local does not answer VERSION."""
    proc = subprocess.run([str(bin_dir / "host-local")], env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin"},
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "supportedVersions" not in proc.stdout:
        pytest.fail(f"our host-local fails VERSION (exit {proc.returncode}): {proc.stdout}{proc.stderr}; "
                    "PYCNI_REF_HOSTLOCAL=1 runs the bridge tests with the reference host-local")


@pytest.fixture(scope="session")
def ours(bin_dir: Path, ref_bin_dir: Path, bench_tmp: Path) -> Path:
    """CNI_PATH for our bridge: our plugins (the reference host-local only when asked for)."""
    d = bench_tmp / "bridge-ours"
    d.mkdir(exist_ok=True)
    use_ref = os.environ.get("PYCNI_REF_HOSTLOCAL") == "1"
    if not use_ref:
        _check_our_hostlocal(bin_dir)
    links = {"bridge": bin_dir / "bridge", "loopback": bin_dir / "loopback",
             "host-local": (ref_bin_dir if use_ref else bin_dir) / "host-local"}
    for name, target in links.items():
        p = d / name
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(target)
    return d


@pytest.fixture(scope="session")
def ref(ref_bin_dir: Path) -> Path:
    return ref_bin_dir


@contextlib.contextmanager
def forwarding_restored() -> Iterator[None]:
    """The host's forwarding sysctls (SYSCTLS) as they were before the block (bridge's and ptp's
    gateways turn forwarding on, as the reference does)."""
    saved = {}
    for path in SYSCTLS:
        with contextlib.suppress(OSError):
            saved[path] = Path(path).read_text()
    try:
        yield
    finally:
        for path, value in saved.items():
            if Path(path).read_text() != value:
                Path(path).write_text(value)


@pytest.fixture(scope="session", autouse=True)
def _restore_host_sysctls() -> Iterator[None]:
    """Gateways turn forwarding on, as the reference does; put the host back as it was."""
    existed = {t for t in NFT_TABLES if _nft_table_exists(*t)}
    try:
        with forwarding_restored():
            yield
    finally:
        for family, table in NFT_TABLES:
            if (family, table) not in existed and _nft_table_exists(family, table):
                subprocess.run(["nft", "delete", "table", family, table], capture_output=True, check=False)


def _nft_table_exists(family: str, table: str) -> bool:
    try:
        return subprocess.run(["nft", "list", "table", family, table], capture_output=True,
                              check=False).returncode == 0
    except FileNotFoundError:  # no nft on PATH (a user's shell without /usr/sbin): nothing to restore
        return False


# ---- firewall read-back and clean-up -----------------------------------------------------------
def iptables_lines(network: str, family: int = 4) -> list[str]:
    """nat-table lines of iptables-save (counters stripped) that belong to `network`."""
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    out = subprocess.run([tool, "-t", "nat"], capture_output=True, text=True, check=True).stdout
    tag = f'name: \\"{network}\\"'
    chains = {m.group(1) for line in out.splitlines() if tag in line
              for m in [re.search(r"-j (CNI-[0-9a-f]+)", line)] if m}
    chains |= {line.split()[1] for line in out.splitlines() if tag in line and line.startswith("-A CNI-")}
    return [line for line in out.splitlines()
            if tag in line or any(line.startswith(f":{c} ") for c in chains)]


def nft_rules(family: str, table: str, chain: str | None = None) -> list[dict]:
    argv = ["nft", "-j", "list"] + (["chain", family, table, chain] if chain else ["table", family, table])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return []
    return [i["rule"] for i in json.loads(proc.stdout)["nftables"] if "rule" in i]


def nft_chains(family: str, table: str) -> list[str]:
    proc = subprocess.run(["nft", "-j", "list", "table", family, table], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return []
    return [i["chain"]["name"] for i in json.loads(proc.stdout)["nftables"] if "chain" in i]


def masq_rules_nft(network: str) -> list[dict]:
    return [r for r in nft_rules(*MASQ_CHAIN)
            if f"net: {network}," in r.get("comment", "")]


def spoof_rules(cid: str) -> list[dict]:
    return [r for r in nft_rules("bridge", "nat") if r.get("comment", "").startswith(f"macspoofchk-{cid}")]


def clean_firewall(network: str, container_ids: list[str]) -> None:
    """Remove every iptables/nft object a test of `network` may have left."""
    for family, restore in ((4, "iptables-restore"), (6, "ip6tables-restore")):
        lines = iptables_lines(network, family)
        rules = ["-D " + ln[3:] for ln in lines if ln.startswith("-A POSTROUTING ")]
        chains = [ln[1:].split()[0] for ln in lines if ln.startswith(":")]
        if rules or chains:
            script = "\n".join(["*nat", *rules, *[f"-F {c}\n-X {c}" for c in chains], "COMMIT", ""])
            subprocess.run([restore, "-w", "--noflush"], input=script, text=True, capture_output=True,
                           check=False)
    for r in masq_rules_nft(network):
        subprocess.run(["nft", "delete", "rule", *MASQ_CHAIN, "handle",
                        str(r["handle"])], capture_output=True, check=False)
    for cid in container_ids:
        for r in spoof_rules(cid):
            subprocess.run(["nft", "delete", "rule", "bridge", "nat", r["chain"], "handle", str(r["handle"])],
                           capture_output=True, check=False)
        for chain in nft_chains("bridge", "nat"):
            if chain.startswith(f"cni-br-iface-{cid}"):
                subprocess.run(["nft", "flush", "chain", "bridge", "nat", chain], capture_output=True)
        for chain in nft_chains("bridge", "nat"):
            if chain.startswith(f"cni-br-iface-{cid}"):
                subprocess.run(["nft", "delete", "chain", "bridge", "nat", chain], capture_output=True)


# ---- networks -----------------------------------------------------------------------------------
@dataclass
class Net:
    """One network config in a private NETCONFPATH, run through cnitool."""

    name: str
    conf: dict
    version: str
    dir: Path
    state: Path
    cnitool: Any
    ids: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.state / "ipam"

    def __call__(self, cmd: str, ns: Any, cni_path: Path, **kw: Any):
        cid = kw.get("container_id") or self.cnitool.container_id(getattr(ns, "path", ns) or "/nonexistent")
        if cid not in self.ids:
            self.ids.append(cid)
        kw.setdefault("cache_dir", self.state / "cache")
        return self.cnitool(cmd, self.name, ns, netconf_dir=self.dir, cni_path=cni_path, **kw)

    def plugin_stdin(self, **extra: Any) -> dict:
        """The plugin object as libcni hands it over (name and version injected)."""
        return {"cniVersion": self.version, "name": self.name, **self.conf, **extra}


def net_factory(cnitool, state_dir: Path, bench_tmp: Path, prefix: str) -> Iterator:
    """The body of a ``net`` fixture (bridge's and ptp's): networks named ``prefix`` + a unique
    suffix, their firewall rules removed afterwards."""
    made: list[Net] = []

    def make(plugin: dict, version: str = "1.0.0", name: str | None = None, extra: list | None = None) -> Net:
        name = name or unique_name(prefix, 8)
        plugin = json.loads(json.dumps(plugin))
        ipam = plugin.get("ipam")
        if ipam and ipam.get("type") == "host-local":
            ipam.setdefault("dataDir", str(state_dir / "ipam"))
        d = Path(tempfile.mkdtemp(prefix="netconf-", dir=bench_tmp))
        (d / f"{name}.conflist").write_text(json.dumps(conflist(name, [plugin, *(extra or [])], version)))
        n = Net(name, plugin, version, d, state_dir, cnitool)
        made.append(n)
        return n

    try:
        yield make
    finally:
        for n in made:
            clean_firewall(n.name, n.ids)


@pytest.fixture
def net(cnitool, state_dir: Path, bench_tmp: Path) -> Iterator:
    yield from net_factory(cnitool, state_dir, bench_tmp, "pcbn")
