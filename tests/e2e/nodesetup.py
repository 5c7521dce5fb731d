"""Preparing a node as docs/OPERATIONS.md tells a kind user: plugins into /opt/cni/bin, the config list
into /etc/cni/net.d (both the node's private directories here)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import realnode
from kindnode import KindNode, Runtime, containerd_2, debian_containerd
from underlay import eth0_mtu

REPO = Path(__file__).resolve().parents[2]
OUR_TYPES = ("bridge", "ptp", "host-local", "bandwidth", "loopback", "portmap")
# What the kind node image ships in /opt/cni/bin; ours are installed over them.
KIND_SHIPPED = ("host-local", "loopback", "ptp", "portmap")
INSTALL_NETCONF = REPO / "conf" / "install-netconf.sh"
EXAMPLE = REPO / "conf" / "examples" / "10-pycni-cbr0.conflist"
# Debian 12's containerd 1.6 and libcni 1.1.2 (ctr, CRI, our cnitool) know spec versions up to 1.0.0;
# a kind node's containerd 2.x takes the example's 1.1.0 as it is (``Runtime.cni_version``).
RUNTIME_CNI_VERSION = "1.0.0"
# What libcni 1.3.0 (containerd 2.x, cnidrive) takes: the example's own version, with STATUS and GC.
KIND_CNI_VERSION = "1.1.0"


# kind's own network: the list kindnetd writes, under that file name.
KINDNET_NETWORK = "kindnet"
KINDNET_CONFLIST = "10-kindnet.conflist"
KINDNET_IPAM_DIR = "/run/cni-ipam-state"

# The runtimes a test can ask for by version: kind's containerd of today, Debian 12's.
RUNTIMES = ("2.3.4", "1.6.20")


def runtime_for(version: str) -> Runtime:
    """containerd ``2.3.4`` (kind's, from ../shared/realnode) or Debian's ``1.6.20``."""
    if version == "1.6.20":
        return debian_containerd()
    if version != "2.3.4":
        raise ValueError(f"no containerd {version} on the bench: {RUNTIMES}")
    return containerd_2(realnode.require(realnode.CONTAINERD))


def reference_dir() -> Path:
    """The reference plugins a kind node ships (v1.9.1)."""
    return realnode.reference_plugins()


def install_plugins(dest: Path, chain: tuple[str, Path]) -> None:
    """Fill a node's /opt/cni/bin as a kind user would: the kind image's plugins, then ours."""
    mode, src = chain
    ref = reference_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name in KIND_SHIPPED:
        shutil.copy2(ref / name, dest / name)
    if mode == "reference":
        for name in OUR_TYPES:
            shutil.copy2(ref / name, dest / name)
        return
    if src.resolve() == (REPO / "dist" / "bin").resolve():
        proc = subprocess.run(["bash", str(REPO / "build.sh"), "install", str(dest)], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"./build.sh install {dest} failed:\n{proc.stdout}\n{proc.stderr}")
    else:
        for name in OUR_TYPES:
            target = (src / name).resolve()
            (dest / name).unlink(missing_ok=True)
            (dest / name).symlink_to(target)


def render_netconf(pod_cidr: str, conf_dir: Path, env: dict[str, str] | None = None,
                   cni_version: str = RUNTIME_CNI_VERSION) -> Path:
    """``conf/install-netconf.sh POD_CIDR DIR`` at ``cni_version`` (the node runtime's: pass
    ``node.runtime.cni_version``); returns the file it wrote (the only one in DIR)."""
    if not INSTALL_NETCONF.exists():
        pytest.skip(f"{INSTALL_NETCONF.relative_to(REPO)} missing")
    if not EXAMPLE.exists() and "PYCNI_NETCONF_TEMPLATE" not in (env or os.environ):
        pytest.skip(f"the example list {EXAMPLE.relative_to(REPO)} is not written yet")
    before = set(conf_dir.iterdir()) if conf_dir.exists() else set()
    full_env = {**os.environ, "CNI_VERSION": cni_version, **(env or {})}
    proc = subprocess.run(["sh", str(INSTALL_NETCONF), pod_cidr, str(conf_dir)], capture_output=True,
                          text=True, timeout=60, env=full_env)
    if proc.returncode != 0:
        raise AssertionError(f"install-netconf.sh {pod_cidr} failed:\n{proc.stdout}\n{proc.stderr}")
    written = Path(proc.stdout.strip().splitlines()[-1])
    assert set(conf_dir.iterdir()) - before <= {written}, "install-netconf.sh left other files behind"
    assert written.parent == conf_dir and written.is_file(), proc.stdout
    return written


def kindnet_conflist(pod_cidrs: Sequence[str], mtu: int) -> dict:
    """The list kindnetd writes for a node with these pod CIDRs (one, or a v4 and a v6) and eth0's
    MTU: ptp without masquerade, host-local in /run/cni-ipam-state with a default route per family
    and one range per CIDR, then portmap."""
    nets = [ipaddress.ip_network(c) for c in pod_cidrs]
    routes = [{"dst": d} for v, d in ((4, "0.0.0.0/0"), (6, "::/0")) if any(n.version == v for n in nets)]
    ipam = {"type": "host-local", "dataDir": KINDNET_IPAM_DIR, "routes": routes,
            "ranges": [[{"subnet": str(n)}] for n in nets]}
    ptp: dict = {"type": "ptp", "ipMasq": False, "ipam": ipam}
    if mtu:
        ptp["mtu"] = mtu
    return {"cniVersion": "0.3.1", "name": KINDNET_NETWORK,
            "plugins": [ptp, {"type": "portmap", "capabilities": {"portMappings": True}}]}


def write_kindnet(node: KindNode, pod_cidrs: Sequence[str]) -> Path:
    """Do what kindnetd does on ``node``: its list, with the MTU of the node's eth0, written into the
    node's /etc/cni/net.d by a temporary file and a rename."""
    return node.write_netconf(kindnet_conflist(pod_cidrs, eth0_mtu(node.name)), KINDNET_CONFLIST)
