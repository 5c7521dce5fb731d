"""A call for one attachment changes no other's hostPorts, read back from the kernel.

- one container ID on two networks (podman does this), or on one network under two interface
  names: ADD again and DEL of one leave the other's DNAT and masquerade rules, and its hostPort
  still answers from outside the node;
- iptables chains named by a hash of network and container ID run together: (`X1`, `abc`) and
  (`X`, `1abc`) share a name; the second ADD is refused without emptying the first's chain, and
  its DEL leaves that chain;
- nft rules of v1.9.1 (no marker) are still removed by our DEL for the one-network case.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import ns_argv, unique_name

from cni.layout import portmap as layout

from .conftest import ask_from

pytestmark = pytest.mark.root

PORT_A, PORT_B, POD_PORT = 18180, 18181, 8080


def _m(host: int) -> list[dict]:
    return [{"HostPort": host, "ContainerPort": POD_PORT, "Protocol": "tcp", "HostIP": ""}]


def _nft_rules_to(node, cid: str, ip: str) -> list[str]:
    """The chains of the rules commented with `cid` about `ip` (DNAT target or masquerade's)."""
    listing = node.nft("ip") or {"nftables": []}
    rules = layout.nft_items(listing["nftables"])
    return sorted(r["chain"] for r in layout.nft_of_address(rules, cid, ip))


def _iptables_dnat_to(node, ip: str) -> list[str]:
    return [line for line in node.iptables_save(4) if f"--to-destination {ip}:" in line]


def _rules_of(backend: str, node, pod) -> list[str]:
    if backend == "nftables":
        return _nft_rules_to(node, pod.cid, pod.ip4)
    return _iptables_dnat_to(node, pod.ip4)


@pytest.mark.parametrize(("backend", "second"), [("nftables", "other-network"), ("iptables", "other-network"),
                                                  ("nftables", "other-ifname")])
def test_add_and_del_of_one_attachment_leave_the_others(backend, second, node, pods, echo):
    """(iptables names its chain by network and container ID only, as v1.9.1: two interfaces of one
    container on one network share it there.)"""
    cid = unique_name("pmown", 10)
    net_a = pods.network({"backend": backend})
    net_b = pods.network({"backend": backend}) if second == "other-network" else net_a
    a = pods(_m(PORT_A), net=net_a, cid=cid)
    before = _rules_of(backend, node, a)
    assert before, "the first attachment's rules are there"
    b = pods(_m(PORT_B), net=net_b, cid=cid, ifname="eth1" if second == "other-ifname" else "eth0")
    assert _rules_of(backend, node, b)
    assert _rules_of(backend, node, a) == before, "the second ADD removed the first's rules"
    b.run("del").check()
    b.deleted = True
    assert _rules_of(backend, node, a) == before, "the second DEL removed the first's rules"
    assert not _rules_of(backend, node, b), "the second DEL left its own rules"
    echo(a, POD_PORT)
    assert ask_from(node.client.name, "tcp", node.ip4, PORT_A) == node.client4
    a.run("check").check()


def test_nft_gc_of_one_network_keeps_the_same_container_on_another(node, pods, bin_dir):
    cid = unique_name("pmown", 10)
    net_a, net_b = pods.network({"backend": "nftables"}), pods.network({"backend": "nftables"})
    a = pods(_m(PORT_A), net=net_a, cid=cid)
    before = _nft_rules_to(node, cid, a.ip4)
    b = pods(_m(PORT_B), net=net_b, cid=cid)
    assert before and _nft_rules_to(node, cid, b.ip4)
    config = {"cniVersion": "1.1.0", "name": b.network, "type": "portmap", "backend": "nftables",
              "cni.dev/valid-attachments": []}
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=GC", "CNI_PATH=/nonexistent"]
    r = subprocess.run(ns_argv(node.ns, *env, str(bin_dir / "portmap")), input=json.dumps(config),
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _nft_rules_to(node, cid, a.ip4) == before, "GC of network B removed A's rules"
    assert not _nft_rules_to(node, cid, b.ip4), "GC of network B left B's rules"


def test_iptables_chains_whose_names_collide(node, pods, echo):
    """(`<n>1`, `<c>`) and (`<n>`, `1<c>`) hash to one CNI-DN- chain."""
    base, cid = unique_name("pmx", 6), unique_name("c", 8)
    assert layout.dnat_chain(base + "1", cid) == layout.dnat_chain(base, "1" + cid)
    first = pods(_m(PORT_A), net=pods.network(name=base), cid="1" + cid)
    chain = layout.dnat_chain(base, "1" + cid)
    mine = [line for line in node.iptables_save(4) if chain in line]
    name, d, _ = pods.network(name=base + "1")
    ns = pods.netns("pmpod-")

    def run(cmd: str, **kw):
        return pods.cnitool.inside(pods.node.ns)(cmd, name, ns, netconf_dir=d, cni_path=pods.dirs["ours"],
                                                 container_id=cid, cache_dir=pods.state / "cache",
                                                 extra_env={"XTABLES_LOCKFILE": str(node.lock)}, **kw)

    # refused as the ipMasq chain and the IFB are: 11 (the other's DEL frees the name), naming
    # the chain and who holds it
    msg = run("add", cap_args={"portMappings": _m(PORT_B)}).expect_error(11).msg or ""
    assert f"hostport chain {chain} " in msg and f"network {base!r} container {'1' + cid!r}" in msg, msg
    assert [line for line in node.iptables_save(4) if chain in line] == mine, "the refused ADD changed it"
    # the DEL of the refused attachment (a runtime always sends one) leaves the other's chain
    run("del").check()
    assert [line for line in node.iptables_save(4) if chain in line] == mine, "the other's DEL removed it"
    echo(first, POD_PORT)
    assert ask_from(node.client.name, "tcp", node.ip4, PORT_A) == node.client4


def test_our_del_removes_the_reference_nft_rules(node, pods):
    """v1.9.1 writes no marker: for one network our DEL still removes what its ADD made."""
    pod = pods(_m(PORT_A), net=pods.network({"backend": "nftables"}), impl="ref")
    assert _nft_rules_to(node, pod.cid, pod.ip4)
    pod.run("del", pods.dirs["ours"]).check()
    pod.deleted = True
    assert not _nft_rules_to(node, pod.cid, pod.ip4)
