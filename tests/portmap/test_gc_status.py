"""GC and STATUS (no reference plugin has them): GC removes the rules of attachments missing from
the valid list, in both backends, and never another network's; STATUS answers whether the
backend's tools are there."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import ns_argv

pytestmark = pytest.mark.root


def _call(node, bin_dir, command: str, config: dict, path: str | None = None) -> subprocess.CompletedProcess:
    env = ["env", "-i", f"PATH={path or '/usr/sbin:/usr/bin:/sbin:/bin'}", f"CNI_COMMAND={command}",
           "CNI_PATH=/nonexistent", f"XTABLES_LOCKFILE={node.lock}"]
    return subprocess.run(ns_argv(node.ns, *env, str(bin_dir / "portmap")), input=json.dumps(config),
                          capture_output=True, text=True, timeout=60, check=False)


def _cids(node) -> set[str]:
    """Container IDs with rules on the node: iptables comments and nft comments."""
    out = set()
    for fam in (4, 6):
        for line in node.iptables_save(fam):
            if 'id: \\"' in line:
                out.add(line.split('id: \\"', 1)[1].split('\\"', 1)[0])
    for fam in ("ip", "ip6"):
        listing = node.nft(fam) or {"nftables": []}
        out |= {i["rule"]["comment"] for i in listing["nftables"]
                if "rule" in i and i["rule"]["chain"] == "hostports" and "comment" in i["rule"]}
    return out


@pytest.mark.parametrize("backend", ("iptables", "nftables"))
def test_gc_keeps_the_valid_and_other_networks(backend, node, pods, bin_dir):
    net = pods.network({"backend": backend})
    other_net = pods.network({"backend": backend})
    keep = pods([{"hostPort": 18080, "containerPort": 80}], net=net)
    leak = pods([{"hostPort": 18081, "containerPort": 81, "protocol": "udp"}], net=net)
    other = pods([{"hostPort": 18082, "containerPort": 82}], net=other_net)
    assert _cids(node) == {keep.cid, leak.cid, other.cid}
    config = {"cniVersion": "1.1.0", "name": net[0], "type": "portmap", "backend": backend,
              "cni.dev/valid-attachments": [{"containerID": keep.cid, "ifname": "eth0"}]}
    r = _call(node, bin_dir, "GC", config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _cids(node) == {keep.cid, other.cid}
    assert keep.run("check").ok and other.run("check").ok


def test_status(node, bin_dir):
    config = {"cniVersion": "1.1.0", "name": "pmstatus", "type": "portmap"}
    assert _call(node, bin_dir, "STATUS", config).returncode == 0
    assert _call(node, bin_dir, "STATUS", {**config, "backend": "nftables"}).returncode == 0


@pytest.mark.parametrize("backend", ("iptables", "nftables"))
def test_status_without_the_tools_is_50(backend, bin_dir):
    """In a private mount namespace whose sbin directories are empty, no backend is usable."""
    script = ("mount -t tmpfs none /usr/sbin && { [ -L /sbin ] || mount -t tmpfs none /sbin; } && "
              f"exec env -i PATH=/nonexistent CNI_COMMAND=STATUS CNI_PATH=/nonexistent {bin_dir / 'portmap'}")
    config = {"cniVersion": "1.1.0", "name": "pmstatus", "type": "portmap", "backend": backend}
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       input=json.dumps(config), capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == 50, r.stdout + r.stderr


def test_pycni_gc_frees_a_stale_attachments_markers_and_localnet_key(node, pods, bin_dir, tmp_path):
    """`pycni gc` on the node: an attachment the runtime no longer lists and whose libcni cache entry
    is gone (no DEL can be replayed for it) loses its nft rules, its owner marker and its key in
    the route_localnet record, through portmap's GC; the listed pod keeps all of its own."""
    import os
    from pathlib import Path

    from helpers.cristub import stub_runtime

    from cni.layout import portmap as layout

    net = pods.network({"backend": "nftables"})
    name, conf_dir, _ = net
    stale = pods([{"hostPort": 18090, "containerPort": 80}], net=net)
    live = pods([{"hostPort": 18091, "containerPort": 80}], net=net)
    records = list(Path(layout.LOCALNET_DIR).glob(f"{os.stat(node.ns.path).st_ino}-*"))
    assert len(records) == 1, records

    def marked() -> set:
        listing = node.nft("ip") or {"nftables": []}
        return layout.nft_marked(layout.nft_items(listing["nftables"]), name)

    def keys() -> set[str]:
        return layout.parse_localnet_record(records[0].read_bytes())[1]

    assert marked() == {(stale.cid, "eth0"), (live.cid, "eth0")}
    assert keys() == {layout.attachment_key(name, p.cid, "eth0") for p in (stale, live)}
    (pods.state / "cache" / "results" / f"{name}-{stale.cid}-eth0").unlink()
    with stub_runtime(tmp_path / "cri.sock") as (endpoint, ids):
        ids[:] = [live.cid]
        env = ["env", f"XTABLES_LOCKFILE={node.lock}"]
        out = subprocess.run(ns_argv(node.ns, *env, str(bin_dir / "pycni"), "gc", "--conf-dir", str(conf_dir),
                                     "--bin-dir", str(pods.dirs["ours"]), "--cri-endpoint", endpoint,
                                     "--grace", "0", "--json"),
                             capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stdout + out.stderr
    stale.deleted = True  # its DEL would now find nothing of portmap's
    assert marked() == {(live.cid, "eth0")}
    assert _cids(node) == {live.cid}
    assert keys() == {layout.attachment_key(name, live.cid, "eth0")}
    assert live.run("check").ok
