"""Fixtures of the portmap tests: an emulated node, pods on it through libcni, echo servers.

``node``      an emulated node: a network namespace with its own iptables, nft and conntrack
              tables, an uplink veth to a ``client`` namespace outside it (addresses of both
              families), forwarding on. The whole chain runs inside it (cnitool through
              ``ip netns exec``), so every rule the tests make dies with the namespace.
``pm_dirs``   CNI_PATH directories: ``ours`` (our bridge, host-local, portmap) and ``ref`` (ours,
              but the reference's portmap).
``pods``      factory: ``pods(portmap_conf, mappings, ...)`` -> Pod, ADDed through cnitool with
              CAP_ARGS portMappings, chained after our bridge (hairpin on); DEL on teardown.
``echo``      factory: ``echo(pod, port)`` starts the echo server in a pod; stopped on teardown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import conflist, ns_argv, ns_exec, unique_ifname, unique_name, unique_subnet_v4, unique_subnet_v6

from cni.layout.portmap import LOCALNET_DIR

ECHO = Path(__file__).resolve().parent / "echo.py"


@dataclass
class Node:
    ns: Any
    client: Any
    ip4: str
    ip6: str
    client4: str
    client6: str
    lock: Path

    def sh(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.ns.exec(*cmd, check=check)

    def iptables_save(self, family: int = 4) -> list[str]:
        tool = "iptables-save" if family == 4 else "ip6tables-save"
        out = self.sh(tool, "-t", "nat").stdout
        return [line.split(" [", 1)[0] if line.startswith(":") else line
                for line in out.splitlines() if line and not line.startswith("#")]

    def nft(self, family: str) -> dict | None:
        r = self.sh("nft", "-j", "list", "table", family, "cni_hostport", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None


def _ip(ns, *args: str) -> None:
    ns.exec("ip", *args)


@pytest.fixture
def node(netns, state_dir: Path) -> Iterator[Node]:
    n, c = netns("pmnode-"), netns("pmcli-")
    up4, up6 = unique_subnet_v4(24), unique_subnet_v6(64)
    a, b = unique_ifname("pmu"), unique_ifname("pmv")
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    subprocess.run(["ip", "link", "set", a, "netns", n.name], check=True)
    subprocess.run(["ip", "link", "set", b, "netns", c.name], check=True)
    node4, cli4, node6, cli6 = str(up4[1]), str(up4[2]), str(up6[1]), str(up6[2])
    for ns, dev, ip4, ip6 in ((n, a, node4, node6), (c, b, cli4, cli6)):
        _ip(ns, "link", "set", "lo", "up")
        _ip(ns, "addr", "add", f"{ip4}/24", "dev", dev)
        _ip(ns, "-6", "addr", "add", f"{ip6}/64", "dev", dev, "nodad")
        _ip(ns, "link", "set", dev, "up")
    for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
        n.exec("sysctl", "-qw", key)
    yield Node(n, c, node4, node6, cli4, cli6, state_dir / "xtables.lock")
    # portmap's route_localnet records of this namespace (in the host's /run): a test whose pods
    # were not all DELeted leaves some, and the namespace they describe dies now
    inode = os.stat(n.path).st_ino
    for record in Path(LOCALNET_DIR).glob(f"{inode}-*"):
        record.unlink()


@pytest.fixture(scope="session")
def pm_dirs(bin_dir: Path, ref_bin_dir: Path, bench_tmp: Path) -> dict[str, Path]:
    out = {}
    for name, portmap in (("ours", bin_dir / "portmap"), ("ref", ref_bin_dir / "portmap")):
        d = bench_tmp / f"portmap-{name}"
        d.mkdir(exist_ok=True)
        for plugin, target in (("bridge", bin_dir / "bridge"), ("ptp", bin_dir / "ptp"),
                               ("host-local", bin_dir / "host-local"), ("portmap", portmap)):
            p = d / plugin
            if p.is_symlink() or p.exists():
                p.unlink()
            p.symlink_to(target)
        out[name] = d
    return out


@dataclass
class Pod:
    """One attachment on the node: its namespace, container ID, addresses and the network."""

    ns: Any
    cid: str
    ip4: str
    ip6: str
    gw4: str
    gw6: str
    network: str
    mappings: list[dict]
    run: Any  # run(cmd, cni_path=None, mappings=..., **kw) -> Outcome
    deleted: bool = False

    def ask(self, proto: str, host: str, port: int) -> str:
        return _ask(self.ns.name, proto, host, port)


def _ask(ns_name: str, proto: str, host: str, port: int) -> str:
    r = ns_exec(ns_name, sys.executable, str(ECHO), "ask", proto, host, str(port), check=False)
    return r.stdout.strip()


@dataclass
class PodFactory:
    node: Node
    cnitool: Any
    dirs: dict[str, Path]
    state: Path
    bench_tmp: Path
    netns: Any
    made: list[Pod] = field(default_factory=list)

    def network(self, portmap: dict | None = None, *, name: str | None = None, version: str = "1.0.0",
                hairpin: bool = True) -> tuple[str, Path, dict]:
        """A conflist (bridge, then portmap) in its own NETCONFPATH: (name, dir, subnets)."""
        name = name or unique_name("pmnet", 8)
        v4, v6 = unique_subnet_v4(24), unique_subnet_v6(64)
        bridge = {"type": "bridge", "bridge": unique_ifname("pmb"), "isGateway": True,
                  "isDefaultGateway": True, "hairpinMode": hairpin,
                  "ipam": {"type": "host-local", "dataDir": str(self.state / "ipam"),
                           "ranges": [[{"subnet": str(v4)}], [{"subnet": str(v6)}]]}}
        plugins = [bridge, {"type": "portmap", "capabilities": {"portMappings": True}, **(portmap or {})}]
        d = Path(tempfile.mkdtemp(prefix="netconf-", dir=self.bench_tmp))
        (d / f"{name}.conflist").write_text(json.dumps(conflist(name, plugins, version)))
        return name, d, {"v4": v4, "v6": v6}

    def __call__(self, mappings: list[dict], *, net: tuple[str, Path, dict] | None = None,
                 portmap: dict | None = None, impl: str = "ours", cid: str | None = None,
                 ns: Any = None, ifname: str = "eth0") -> Pod:
        """One attachment; `ns` and `ifname` put a second one into an existing pod (as podman does
        for a container on two networks)."""
        name, d, _ = net or self.network(portmap)
        ns = ns or self.netns("pmpod-")
        cid = cid or unique_name("pmpod", 12)
        state = self.state

        def run(cmd: str, cni_path: Path | str | None = None, mappings: list[dict] | None = mappings,
                netns_path: Any = None, **kw: Any):
            cap = {"portMappings": mappings} if mappings is not None else None
            kw.setdefault("ifname", ifname)
            inside = self.cnitool.inside(self.node.ns)
            return inside(cmd, name, ns if netns_path is None else netns_path, netconf_dir=d,
                          cni_path=cni_path or self.dirs[impl], cap_args=cap, container_id=cid,
                          cache_dir=state / "cache",
                          extra_env={"XTABLES_LOCKFILE": str(self.node.lock),
                                     **kw.pop("extra_env", {})}, **kw)

        out = run("add").check()
        ips = {4: "", 6: ""}
        gws = {4: "", 6: ""}
        for ip in out.json["ips"]:
            fam = 6 if ":" in ip["address"] else 4
            ips[fam] = ip["address"].split("/")[0]
            gws[fam] = ip.get("gateway", "")
        pod = Pod(ns, cid, ips[4], ips[6], gws[4], gws[6], name, mappings, run)
        self.made.append(pod)
        return pod


@pytest.fixture
def pods(node: Node, cnitool, pm_dirs, state_dir: Path, bench_tmp: Path, netns) -> Iterator[PodFactory]:
    f = PodFactory(node, cnitool, pm_dirs, state_dir, bench_tmp, netns)
    try:
        yield f
    finally:
        for pod in f.made:
            if not pod.deleted:
                pod.run("del")


@pytest.fixture
def echo() -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(pod: Pod, port: int) -> None:
        argv = ns_argv(pod.ns, sys.executable, str(ECHO), "serve", str(port))
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(p)
        line = p.stdout.readline() if p.stdout else ""
        assert line.strip() == "ready", f"echo server in {pod.ns.name} did not start"

    try:
        yield start
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


def ask_from(ns_name: str, proto: str, host: str, port: int) -> str:
    return _ask(ns_name, proto, host, port)

