"""A private node for the fault tests: a network namespace that holds the bridge, the veths' host
ends and the firewall rules, and cnitool running inside it, so nothing of a test touches the host's
own links or rules (other tests run on this kernel at the same time).

``node(plugins, data_dir=..., ipmasq=True) -> Node`` makes one: a conflist of the given chain
(``bridge`` gets a unique bridge name and /24 and the dataDir), pods created with ``node.pod()``.
Everything is removed afterwards, also when the test fails.

Every test runs on both launch paths (`launch_path`): cold, and warm, through a `pycni serve`
started inside each node's namespace (it serves only callers of its own namespaces); the node's
drivers carry the path in PYCNI_WARM_SOCKET (``node.shell_env``), which libcni passes to the plugins.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import Cnitool, conflist, unique_name
from helpers.warm import PATHS, WARM_ENV, WarmServer

NETNS_DIR = Path("/var/run/netns")


def ip_netns(*args: str) -> None:
    subprocess.run(["ip", "netns", *args], check=True, capture_output=True, timeout=60)


def in_ns(ns: str, *argv: str, env: dict | None = None) -> str:
    proc = subprocess.run(["nsenter", f"--net={ns}", "--", *argv], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, f"{argv} in {ns}: {proc.stderr}"
    return proc.stdout


def links(ns: str) -> dict[str, str]:
    """name -> kind of every link in the namespace."""
    out = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show") or "[]")
    return {link["ifname"]: (link.get("linkinfo") or {}).get("info_kind", "") for link in out}


def warm_export(warm: WarmServer | None) -> str:
    return f"export {WARM_ENV}={warm.socket if warm else 'off'}"


@dataclass
class Node:
    name: str
    path: str
    netconf_dir: Path
    cache_dir: Path
    data_dir: Path
    bridge: str
    subnet: str
    cnitool: Cnitool
    real_cnitool: Path
    pods: list[str] = field(default_factory=list)
    warm: WarmServer | None = None

    @property
    def shell_env(self) -> str:
        """`export` of the launch path, for a driver's wrapper script."""
        return warm_export(self.warm)

    def pod(self) -> str:
        name = unique_name("pcrp", 8)
        ip_netns("add", name)
        self.pods.append(name)
        return str(NETNS_DIR / name)

    def __call__(self, cmd: str, pod: str, cni_path: Path, **kw: Any):
        kw.setdefault("cache_dir", self.cache_dir)
        return self.cnitool(cmd, self.name, pod, netconf_dir=self.netconf_dir, cni_path=cni_path, **kw)

    def reservations(self) -> dict[str, str]:
        d = self.data_dir / self.name
        if not d.is_dir():
            return {}
        return {p.name: p.read_bytes().decode(errors="replace") for p in d.iterdir()
                if p.name != "lock" and not p.name.startswith("last_reserved_ip")}

    def firewall(self, save: str = "iptables-save", env: dict | None = None) -> list[str]:
        """The node's nat chains and rules of any attachment (CNI-...)."""
        return [ln for ln in in_ns(self.path, save, "-t", "nat", env=env).splitlines()
                if "CNI-" in ln]

    def host_links(self) -> dict[str, str]:
        """The node's links other than lo and its bridge: veth host ends, IFBs."""
        return {n: k for n, k in links(self.path).items() if n not in ("lo", self.bridge)}


@pytest.fixture(scope="session", params=PATHS)
def launch_path(request) -> str:
    return request.param


@pytest.fixture
def node(cnitool: Cnitool, state_dir: Path, bin_dir: Path, launch_path: str) -> Iterator:
    made: list[Node] = []

    def make(plugins: list[dict] | None = None, data_dir: Path | None = None, ipmasq: bool = True,
             version: str = "1.0.0") -> Node:
        name = unique_name("pcrn", 8)
        ip_netns("add", name)
        path = str(NETNS_DIR / name)
        try:
            warm = (WarmServer(bin_dir, state_dir / f"warm-{name}", netns=path)
                    if launch_path == "warm" else None)
        except RuntimeError:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            raise
        wrapper = state_dir / f"cnitool-{name}"
        wrapper.write_text(f'#!/bin/sh\n{warm_export(warm)}\n'
                           f'exec nsenter --net={path} -- {cnitool.binary} "$@"\n')
        wrapper.chmod(0o755)
        index = len(made) + 1
        subnet = f"10.{200 + index}.{hash(name) % 250}.0/24"
        data = data_dir or state_dir / f"ipam-{name}"
        bridge = unique_name("pcrb", 8)
        chain = plugins if plugins is not None else [{"type": "loopback"}, {"type": "bridge"}]
        out = []
        for p in chain:
            p = dict(p)
            if p["type"] == "bridge":
                p.update(bridge=bridge, isGateway=True, ipMasq=ipmasq,
                         ipam={"type": "host-local", "subnet": subnet, "dataDir": str(data)})
            out.append(p)
        conf_dir = state_dir / f"net.d-{name}"
        conf_dir.mkdir()
        (conf_dir / f"{name}.conflist").write_text(json.dumps(conflist(name, out, version)))
        n = Node(name, path, conf_dir, state_dir / f"cache-{name}", Path(data), bridge, subnet,
                 Cnitool(wrapper, state_dir / f"cache-{name}"), Path(cnitool.binary), warm=warm)
        made.append(n)
        return n

    try:
        yield make
    finally:
        for n in made:
            if n.warm:
                n.warm.stop()
            for pod in n.pods:
                subprocess.run(["ip", "netns", "del", pod], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", n.name], capture_output=True, check=False)
