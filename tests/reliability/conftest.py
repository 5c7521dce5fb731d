"""A private node for the fault tests: a network namespace that holds the bridge, the veths' host
ends and the firewall rules, and cnitool running inside it, so nothing of a test touches the host's
own links or rules (other tests run on this kernel at the same time).

``node(plugins, data_dir=..., ipmasq=True) -> Node`` makes one: a conflist of the given chain
(``bridge`` gets a unique bridge name and /24 and the dataDir), pods created with ``node.pod()``.
Everything is removed afterwards, also when the test fails.

Every test runs on both launch paths (`launch_path`): cold, and warm, through a `pycni serve`
started inside each node's namespace (it serves only callers of its own namespaces); the node's
drivers carry the path in PYCNI_WARM_SOCKET (``node.launch_env``), which libcni passes to the plugins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Cnitool, NetNS, conflist, ns_exec, unique_name
from helpers.warm import WARM_ENV, WarmServer


def in_ns(ns: str, *argv: str, env: dict | None = None) -> str:
    return ns_exec(ns, *argv, timeout=60, env=env).stdout


def links(ns: str) -> dict[str, str]:
    """name -> kind of every link in the namespace."""
    out = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show") or "[]")
    return {link["ifname"]: (link.get("linkinfo") or {}).get("info_kind", "") for link in out}


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
    new_netns: Callable[[str], NetNS]
    warm: WarmServer | None = None

    @property
    def launch_env(self) -> dict[str, str]:
        """The launch path every call of this node carries (libcni passes it to the plugins)."""
        return {WARM_ENV: str(self.warm.socket) if self.warm else "off"}

    def pod(self) -> str:
        """A new pod namespace's path (the ``netns`` fixture deletes it)."""
        return self.new_netns("pcrp").path

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


@pytest.fixture
def node(cnitool: Cnitool, state_dir: Path, netns, bin_dir: Path, launch_path: str) -> Iterator:
    made: list[Node] = []

    def make(plugins: list[dict] | None = None, data_dir: Path | None = None, ipmasq: bool = True,
             version: str = "1.0.0") -> Node:
        name, path = (ns := netns("pcrn")).name, ns.path
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
        warm = WarmServer(bin_dir, state_dir / f"warm-{name}", netns=path) if launch_path == "warm" else None
        n = Node(name, path, conf_dir, state_dir / f"cache-{name}", Path(data), bridge, subnet,
                 cnitool, Path(cnitool.binary), netns, warm)
        n.cnitool = cnitool.inside(path, cache_dir=n.cache_dir, env=n.launch_env, keep_mounts=True)
        made.append(n)
        return n

    try:
        yield make
    finally:
        for n in made:
            if n.warm:
                n.warm.stop()
