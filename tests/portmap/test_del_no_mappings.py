"""DEL of an attachment that has no hostport rule (every pod without a hostPort: containerd 2.x
then passes no runtimeConfig at all) asks nf_tables over netlink whether the attachment's chains
and the hostport tables exist, and starts no firewall tool; the reference v1.9.1 returns before
the firewall when runtimeConfig has no mapping. An attachment with rules still loses them, with
or without runtimeConfig.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import ns_argv

pytestmark = pytest.mark.root

TOOLS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
         "ip6tables-restore", "nft")
READERS = ("iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore", "nft")
strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace missing (apt install strace)")
MAPS = [{"hostPort": 18620, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 18620, "containerPort": 80, "protocol": "udp"}]


def _traced(argv: list[str], log: Path) -> list[str]:
    """argv run under strace, which writes every program started to `log`."""
    return ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log), *argv]


def _tools_run(log: Path) -> list[str]:
    """The firewall tools a traced run started (the plugin itself is not one)."""
    started = [line.split('execve("', 1)[1].split('"', 1)[0] for line in log.read_text().splitlines()
               if 'execve("' in line]
    return [p for p in started if p.rsplit("/", 1)[-1] in TOOLS]


def _del(node, pod, plugin: Path, runtime_config: dict | None, log: Path) -> subprocess.CompletedProcess:
    conf = {"cniVersion": "1.0.0", "name": pod.network, "type": "portmap",
            "capabilities": {"portMappings": True}}
    if runtime_config is not None:
        conf["runtimeConfig"] = runtime_config
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=DEL",
           f"CNI_CONTAINERID={pod.cid}", f"CNI_NETNS={pod.ns.path}", "CNI_IFNAME=eth0",
           "CNI_PATH=/nonexistent", f"XTABLES_LOCKFILE={node.lock}"]
    return subprocess.run(ns_argv(node.ns, *_traced([*env, str(plugin)], log)), input=json.dumps(conf),
                          capture_output=True, text=True, timeout=60, check=False)


def _rules(node, pod) -> list[str]:
    return [line for f in (4, 6) for line in node.iptables_save(f) if pod.cid in line or "CNI-DN-" in line]


def _nft_rules(node, pod) -> list[dict]:
    return [i["rule"] for fam in ("ip", "ip6") for i in (node.nft(fam) or {"nftables": []})["nftables"]
            if "rule" in i and i["rule"].get("comment") == pod.cid]


@strace
@pytest.mark.parametrize("impl", ["ours", "ref"])
@pytest.mark.parametrize("runtime_config", [None, {"portMappings": []}], ids=["no-runtimeconfig", "empty"])
def test_del_without_rules_reads_no_table(impl, runtime_config, node, pods, pm_dirs, tmp_path):
    other = pods(MAPS)  # another attachment's rules: they make the nat tables non-empty
    before = _rules(node, other)
    pod = pods([])
    log = tmp_path / "execve.log"
    out = _del(node, pod, pm_dirs[impl] / "portmap", runtime_config, log)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    readers = [p for p in _tools_run(log) if p.rsplit("/", 1)[-1] in READERS]
    assert not readers, readers  # the reference asks `iptables --version` and lists INPUT's first rule
    assert _rules(node, other) == before


@pytest.mark.parametrize("runtime_config", [None, {"portMappings": []}], ids=["no-runtimeconfig", "empty"])
def test_del_of_rules_removes_them(runtime_config, node, pods, pm_dirs, tmp_path):
    """Rules are found by name: DEL removes them whatever runtimeConfig says (the reference leaves
    them when it says no mapping)."""
    pod = pods(MAPS)
    assert _rules(node, pod)
    out = _del(node, pod, pm_dirs["ours"] / "portmap", runtime_config, tmp_path / "execve.log")
    assert out.returncode == 0, (out.stdout, out.stderr)
    pod.deleted = True
    assert not [line for line in _rules(node, pod) if "CNI-DN-" in line]


@strace
def test_nft_del_without_rules_reads_no_table(node, pods, pm_dirs, tmp_path):
    """The nftables backend: no cni_hostport table, no `nft list`; with one, the rules go."""
    pod = pods(MAPS, portmap={"backend": "nftables"})
    assert _nft_rules(node, pod)
    bare = pods([], portmap={"backend": "nftables"})
    out = _del(node, pod, pm_dirs["ours"] / "portmap", None, tmp_path / "first.log")
    assert out.returncode == 0, (out.stdout, out.stderr)
    pod.deleted = True
    assert _nft_rules(node, pod) == []
    node.sh("nft", "delete", "table", "ip", "cni_hostport", check=False)
    node.sh("nft", "delete", "table", "ip6", "cni_hostport", check=False)
    log = tmp_path / "execve.log"
    out = _del(node, bare, pm_dirs["ours"] / "portmap", None, log)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert _tools_run(log) == [], log.read_text()
