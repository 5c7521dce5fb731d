"""Our portmap and the reference v1.9.1 on configs that fail or do nothing: both fail, or both
succeed with the same output. Codes differ where docs/plugins/portmap.md says (v1.9.1 reports
every error as 999; ours says 7 for a config at fault)."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import ns_argv

pytestmark = pytest.mark.root

PREV = {"cniVersion": "1.0.0", "interfaces": [{"name": "vethx"}, {"name": "eth0", "sandbox": "/x"}],
        "ips": [{"interface": 1, "address": "10.99.0.2/24"}]}
MAP = [{"hostPort": 18500, "containerPort": 80, "protocol": "tcp"}]


def _conf(version="1.0.0", prev=True, maps=None, **extra) -> dict:
    conf = {"cniVersion": version, "name": "pmverbs", "type": "portmap", **extra}
    if prev:
        conf["prevResult"] = PREV if prev is True else prev
    if maps is not None:
        conf["runtimeConfig"] = {"portMappings": maps}
    return conf


FAIL = {
    "mark-bit-32": ("ADD", _conf(maps=MAP, markMasqBit=32)),
    "mark-bit-negative": ("ADD", _conf(maps=MAP, markMasqBit=-1)),
    "mark-bit-and-external-chain": ("ADD", _conf(maps=MAP, markMasqBit=5, externalSetMarkChain="X")),
    "nftables-external-chain": ("ADD", _conf(maps=MAP, backend="nftables", externalSetMarkChain="X")),
    "unknown-backend": ("ADD", _conf(maps=MAP, backend="ipchains")),
    "iptables-nft-conditions": ("ADD", _conf(maps=MAP, backend="iptables",
                                             conditionsV4=["ip", "saddr", "1.2.3.4"])),
    "nftables-iptables-conditions": ("ADD", _conf(maps=MAP, backend="nftables",
                                                  conditionsV6=["!", "-s", "::1"])),
    "host-port-0": ("ADD", _conf(maps=[{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}])),
    "container-port-negative": ("ADD", _conf(maps=[{"hostPort": 18501, "containerPort": -1,
                                                    "protocol": "tcp"}])),
    "add-no-prev-result": ("ADD", _conf(prev=False, maps=MAP)),
    "add-no-prev-result-no-mappings": ("ADD", _conf(prev=False)),
    "check-no-prev-result": ("CHECK", _conf(prev=False)),
    "del-mark-bit-32": ("DEL", _conf(maps=MAP, markMasqBit=32)),
}

PASS = {
    "add-no-mappings": ("ADD", _conf()),
    "add-empty-mappings": ("ADD", _conf(maps=[])),
    "add-0.2.0": ("ADD", _conf("0.2.0", prev={"cniVersion": "0.2.0", "ip4": {"ip": "10.99.0.2/24"}})),
    "check-no-mappings": ("CHECK", _conf()),
    "del-no-mappings": ("DEL", _conf(prev=False)),
    "version": ("VERSION", _conf()),
    "status": ("STATUS", _conf("1.1.0")),
    "gc": ("GC", _conf("1.1.0", prev=False, **{"cni.dev/valid-attachments": []})),
}


def _run(node, pod, plugin_dir, command: str, conf: dict) -> tuple[int, dict | None, str]:
    """The plugin inside the node's namespace with a clean environment, `pod` as CNI_NETNS."""
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"CNI_COMMAND={command}",
           "CNI_CONTAINERID=pmverbs0cid", f"CNI_NETNS={pod.path}", "CNI_IFNAME=eth0",
           "CNI_PATH=/nonexistent", f"XTABLES_LOCKFILE={node.lock}"]
    proc = subprocess.run(ns_argv(node.ns, *env, str(plugin_dir / "portmap")), input=json.dumps(conf),
                          capture_output=True, text=True, timeout=60, check=False)
    text = proc.stdout.strip()
    out = json.JSONDecoder().raw_decode(text)[0] if text else None
    return proc.returncode, out, proc.stderr


@pytest.mark.parametrize("case", sorted(FAIL))
def test_both_fail(case, node, netns, bin_dir, ref_bin_dir):
    command, conf = FAIL[case]
    pod = netns("pmvpod-")
    ours, theirs = _run(node, pod, bin_dir, command, conf), _run(node, pod, ref_bin_dir, command, conf)
    assert theirs[0] != 0, theirs
    assert ours[0] != 0 and ours[1]["code"] in (2, 4, 7, 11, 999), ours
    assert "Traceback" not in ours[2]
    assert not [line for line in node.iptables_save(4) if "CNI-DN-" in line]


@pytest.mark.parametrize("case", sorted(PASS))
def test_both_succeed_alike(case, node, netns, bin_dir, ref_bin_dir):
    command, conf = PASS[case]
    pod = netns("pmvpod-")
    ours, theirs = _run(node, pod, bin_dir, command, conf), _run(node, pod, ref_bin_dir, command, conf)
    assert theirs[0] == 0 and ours[0] == 0, (ours, theirs)
    assert ours[1] == theirs[1], (ours, theirs)
