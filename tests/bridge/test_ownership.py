"""ipMasq of attachments whose names collide: (network X1, container abc) and (X, 1abc) hash to one
chain name, as the reference names it. The chain's comments say whose it is: the other one's ADD is
refused (11) without touching it, and its DEL leaves it working; on nftables each has its own rules.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest
from helpers import unique_name, unique_subnet_v4

from cni.layout.masq import chain_name
from cni.ops import firewall

from .conftest import iptables_lines, masq_rules_nft

pytestmark = pytest.mark.root


def _plugins(bridge: str, backend: str) -> tuple[dict, dict]:
    """Two networks on one bridge: one subnet (one gateway address), apart in their ranges."""
    subnet = unique_subnet_v4()

    def plugin(start: int) -> dict:
        span = {"subnet": str(subnet), "rangeStart": str(subnet[start]), "rangeEnd": str(subnet[start + 50])}
        return {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
                "ipMasqBackend": backend, "ipam": {"type": "host-local", "ranges": [[span]]}}

    return plugin(2), plugin(100)


def _colliding():
    """Networks X and X1 and container IDs 1abc and abc: (X, 1abc) and (X1, abc) share their names."""
    base, cid = unique_name("pco", 8), "abc" + secrets.token_hex(8)
    return base, "1" + cid, base + "1", cid


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_colliding_attachments_keep_their_own_masquerade(backend, ours, net, netns, bridge_name):
    x_name, x_cid, x1_name, x1_cid = _colliding()
    assert chain_name(x_name, x_cid) == chain_name(x1_name, x1_cid)
    px, px1 = _plugins(bridge_name, backend)
    x, x1 = net(px, name=x_name), net(px1, name=x1_name)
    ns_x, ns_x1 = netns(), netns()
    x("add", ns_x, ours, container_id=x_cid).check()
    before = (iptables_lines(x_name), masq_rules_nft(x_name))
    assert before[0] if backend == "iptables" else before[1]

    second = x1("add", ns_x1, ours, container_id=x1_cid)
    if backend == "iptables":
        # the chain is X's: X1's ADD would empty it; refused, and its undo leaves it too
        second.expect_error(11)
        assert chain_name(x_name, x_cid) in second.json["msg"] and repr(x_name) in second.json["msg"]
        assert iptables_lines(x1_name) == []
        chains = [c for c in firewall.read_chains([]) if c.chain == chain_name(x_name, x_cid)]
        assert [(c.kind, c.network, c.container_id) for c in chains] == [("ipMasq", x_name, x_cid)]
    else:
        second.check()  # nft rules carry a hash of each network apart: no shared name
        assert len(masq_rules_nft(x1_name)) == 1
    assert (iptables_lines(x_name), masq_rules_nft(x_name)) == before

    x1("del", ns_x1, ours, container_id=x1_cid).check()
    assert (iptables_lines(x_name), masq_rules_nft(x_name)) == before, "X1's DEL touched X's rules"
    assert iptables_lines(x1_name) == [] and masq_rules_nft(x1_name) == []
    x("check", ns_x, ours, container_id=x_cid).check()
    x("del", ns_x, ours, container_id=x_cid).check()
    assert iptables_lines(x_name) == [] and masq_rules_nft(x_name) == []


def test_del_of_a_chain_both_wrote_to_keeps_the_others(ours, net, netns, bridge_name):
    """The reference's ADD appends to a chain it finds: a chain then holds both owners' rules. A DEL
    removes its own rules only, and the chain stays while another's rules are in it."""
    x_name, x_cid, x1_name, x1_cid = _colliding()
    chain = chain_name(x_name, x_cid)
    px, px1 = _plugins(bridge_name, "iptables")
    x, x1 = net(px, name=x_name), net(px1, name=x1_name)
    ns_x = netns()
    x("add", ns_x, ours, container_id=x_cid).check()
    mine = f'"name: \\"{x1_name}\\" id: \\"{x1_cid}\\""'
    subprocess.run(["iptables-restore", "-w", "--noflush"], check=True, text=True, input="\n".join([
        "*nat", f"-A {chain} -d 10.255.0.0/24 -m comment --comment {mine} -j ACCEPT",
        f"-A POSTROUTING -s 10.255.0.9/32 -m comment --comment {mine} -j {chain}", "COMMIT", ""]))
    x1.ids.append(x1_cid)

    def nat() -> str:
        out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True)
        return out.stdout

    x("del", ns_x, ours, container_id=x_cid).check()  # X's own rules go, X1's stay with the chain
    assert iptables_lines(x_name) == []
    assert f":{chain} " in nat() and "10.255.0.9/32" in nat() and "10.255.0.0/24" in nat()
    x1("del", netns(), ours, container_id=x1_cid).check()  # now the chain is X1's alone: all of it goes
    assert f":{chain} " not in nat() and "10.255.0." not in nat()


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_gc_of_the_colliding_network_keeps_the_others_masquerade(backend, ours, net, netns, bridge_name,
                                                                   run_plugin):
    """GC of X1 with nothing valid: X's chain (named as X1/abc's would be) is not X1's to collect."""
    x_name, x_cid, x1_name, _x1_cid = _colliding()
    px, px1 = _plugins(bridge_name, backend)
    x, x1 = net(px, name=x_name), net(px1, name=x1_name)
    x1.version = "1.1.0"
    ns_x = netns()
    x("add", ns_x, ours, container_id=x_cid).check()
    before = (iptables_lines(x_name), masq_rules_nft(x_name))
    run_plugin("bridge", "GC", x1.plugin_stdin(**{"cni.dev/valid-attachments": []}), cni_path=ours,
               container_id="", ifname="").check()
    assert (iptables_lines(x_name), masq_rules_nft(x_name)) == before
    x("del", ns_x, ours, container_id=x_cid).check()


@pytest.mark.parametrize("impl", ["ours", "ref"])
def test_the_reference_loses_the_others_chain_where_we_do_not(impl, ours, ref, net, netns, bridge_name):
    """The same names, two answers. X's chain is made by the implementation under test; then X1/abc
    (whose chain name is X/1abc's) is ADDed and DELeted by it. The reference v1.9.1 appends X1's
    rules to X's chain and its DEL empties and removes the chain: X's pod is no longer masqueraded.
    pycni refuses X1's ADD (11), and X's rules are as they were after X1's DEL."""
    cni_path = ours if impl == "ours" else ref
    x_name, x_cid, x1_name, x1_cid = _colliding()
    px, px1 = _plugins(bridge_name, "iptables")
    x, x1 = net(px, name=x_name), net(px1, name=x1_name)
    ns_x, ns_x1 = netns(), netns()
    x("add", ns_x, cni_path, container_id=x_cid).check()
    before = iptables_lines(x_name)
    second = x1("add", ns_x1, cni_path, container_id=x1_cid)
    x1("del", ns_x1, cni_path, container_id=x1_cid)
    if impl == "ours":
        second.expect_error(11)
        assert iptables_lines(x_name) == before
    else:
        second.check()
        lost = [line for line in before if line not in iptables_lines(x_name)]
        assert any(line.startswith(f"-A {chain_name(x_name, x_cid)} ") for line in lost), lost
    x("del", ns_x, cni_path, container_id=x_cid)


def test_ipmasq_add_of_a_new_chain_reads_no_table(ours, net, netns, bridge_name, tmp_path):
    """The usual ipMasq ADD (iptables, the chain not there yet) makes its chain with `-N` in its one
    restore batch and runs no iptables-save: the owner is read only when that batch fails."""
    log, wrap = tmp_path / "calls", tmp_path / "bin"
    wrap.mkdir()
    for tool in ("iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore"):
        real = shutil.which(tool)
        assert real, tool
        (wrap / tool).write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {real} "$@"\n')
        (wrap / tool).chmod(0o755)
    plugin, _ = _plugins(bridge_name, "iptables")
    n, ns, cid = net(plugin), netns(), unique_name("pcq", 12)
    env = {"PATH": f"{wrap}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
    try:
        n("add", ns, ours, container_id=cid, extra_env=env).check()
        assert log.read_text().split() == ["iptables-restore"]
        assert len([line for line in iptables_lines(n.name) if "MASQUERADE" in line]) == 1
    finally:
        n("del", ns, ours, container_id=cid).check()
    assert iptables_lines(n.name) == []
