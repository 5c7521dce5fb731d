"""Fixtures for the bandwidth tests: a chain run inside a namespace that plays the host.

Every plugin runs inside `host` (a namespace the test made), so the IFB devices, routes and
qdiscs the chain creates never reach the real host; `pod` is the container. The main plugin
is the reference `ptp` (or `bridge`) v1.9.1 (tests/helpers/realnode.py) with the reference
`host-local`; the `bandwidth` after it is ours or, for side-by-side comparisons, the reference one.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Outcome,
    conflist,
    ns_argv,
    ns_exec,
    parse_json,
    unique_name,
    unique_subnet_v4,
    write_netconf,
)

NETWORK = "bwtest"


class Chain:
    """One network (`ptp` or `bridge` + `bandwidth`) run by cnitool inside the namespace `host`."""

    def __init__(self, cnitool, host, pod, cni_dir: Path, state: Path, main: str = "ptp"):
        self.cnitool = cnitool
        self.host = host
        self.pod = pod
        self.cni_dir = cni_dir
        self.state = state
        self.netconf_dir = state / "netconf"
        self.subnet = unique_subnet_v4(24)
        self.main = main
        self.network = NETWORK
        self.bridge = unique_name("pbw", 8)

    def main_plugin(self) -> dict:
        ipam = {"type": "host-local", "subnet": str(self.subnet), "dataDir": str(self.state / "ipam")}
        if self.main == "bridge":
            return {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "ipam": ipam}
        return {"type": "ptp", "ipMasq": False, "ipam": ipam}

    def configure(self, bandwidth: dict | None, version: str = "1.0.0") -> dict:
        """Write the list: the main plugin, then bandwidth with `bandwidth`'s keys (None: no bandwidth)."""
        plugins = [self.main_plugin()]
        if bandwidth is not None:
            plugins.append({"type": "bandwidth", **bandwidth})
        config = conflist(self.network, plugins, version)
        for old in self.netconf_dir.glob("*"):
            old.unlink()
        write_netconf(self.netconf_dir, config)
        return config

    def run(self, cmd: str, *, cap_args: dict | None = None, container_id: str | None = None) -> Outcome:
        """cnitool CMD inside `host` (so the chain's "host namespace" is the test's)."""
        return self.cnitool.inside(self.host)(cmd, self.network, self.pod, netconf_dir=self.netconf_dir,
                                              cni_path=self.cni_dir, cap_args=cap_args,
                                              container_id=container_id, cache_dir=self.state / "cache")

    def container_id(self) -> str:
        return self.cnitool.container_id(self.pod.path)

    def plugin(self, command: str, config: dict, *, container_id: str | None = None,
               ifname: str = "eth0", netns: str | None = None) -> Outcome:
        """Run our bandwidth executable directly inside `host`, with exactly this config on stdin."""
        env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
        env.update(CNI_COMMAND=command, CNI_CONTAINERID=container_id or self.container_id(),
                   CNI_NETNS=self.pod.path if netns is None else netns, CNI_IFNAME=ifname,
                   CNI_PATH=str(self.cni_dir), CNI_ARGS="")
        argv = ns_argv(self.host, str(self.cni_dir / "bandwidth"))
        proc = subprocess.run(argv, input=json.dumps(config), env=env, capture_output=True, text=True,
                              timeout=60)
        return Outcome(proc.returncode, proc.stdout, proc.stderr, parse_json(proc.stdout), tuple(argv), env)


def plugin_dir(base: Path, ref: Path, bandwidth: Path, ours: Path | None = None) -> Path:
    """A CNI_PATH with the reference (`ref`) ptp, bridge and host-local, and the given bandwidth
    executable; with `ours` (our bin directory), our bridge and host-local instead of the reference ones."""
    base.mkdir(parents=True, exist_ok=True)
    for name in ("ptp", "bridge", "host-local"):
        source = (ours / name).resolve() if ours is not None and name != "ptp" else ref / name
        (base / name).symlink_to(source)
    (base / "bandwidth").symlink_to(bandwidth)
    return base


@pytest.fixture
def bw_state() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pycni-bw-"))
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def chain(cnitool, bin_dir, ref_bin_dir, netns, bw_state) -> Chain:
    """Our bandwidth after the reference ptp, in fresh `host` and `pod` namespaces."""
    cni_dir = plugin_dir(bw_state / "bin", ref_bin_dir, (bin_dir / "bandwidth").resolve())
    return Chain(cnitool, netns("pycni-bwh-"), netns("pycni-bwp-"), cni_dir, bw_state)


@pytest.fixture
def ref_chain(cnitool, ref_bin_dir, netns, bw_state) -> Chain:
    """The same chain with the reference bandwidth, for side-by-side figures."""
    cni_dir = plugin_dir(bw_state / "refbin", ref_bin_dir, ref_bin_dir / "bandwidth")
    return Chain(cnitool, netns("pycni-bwh-"), netns("pycni-bwp-"), cni_dir, bw_state / "ref")


def host_veth(result: dict) -> str:
    """The host-side interface a main plugin reports: the one without a sandbox that is not a bridge."""
    names = [i["name"] for i in result["interfaces"] if not i.get("sandbox")]
    return next(n for n in names if n.startswith("veth"))


def tc_raw(netns: Any, *args: str) -> Any:
    """`tc -raw -j ARGS` in a namespace: tbf options with exact burst (bytes) and buffer (ticks)."""
    return json.loads(ns_exec(netns, "tc", "-raw", "-j", *args).stdout or "[]")


def root_tbf(netns: Any, dev: str) -> dict | None:
    """The tbf root qdisc's options as tc reports them, or None."""
    for q in tc_raw(netns, "qdisc", "show", "dev", dev):
        if q.get("root") and q["kind"] == "tbf":
            return q["options"]
    return None
