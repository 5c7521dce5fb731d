"""Pods ADDed at once on a fresh node all get their rules: the first ones race to create the
shared chains, and a batch that loses (its `-N` finds the chain made) is retried on a fresh read,
never emptying a chain another pod's ADD filled."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cni.layout.portmap import dnat_chain

pytestmark = pytest.mark.root

PODS = 6


def test_concurrent_adds_on_a_fresh_node(node, pods):
    net = pods.network()
    maps = [[{"HostPort": 18100 + i, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]
            for i in range(PODS)]
    with ThreadPoolExecutor(PODS) as pool:
        made = list(pool.map(lambda m: pods(m, net=net), maps))
    for fam in (4, 6):
        saved = node.iptables_save(fam)
        entries = [line for line in saved if line.startswith("-A CNI-HOSTPORT-DNAT ")]
        expected = sorted(dnat_chain(net[0], p.cid) for p in made)
        assert sorted(line.split("-j ")[-1] for line in entries) == expected
        assert saved.count("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT") == 1
    v4 = node.iptables_save(4)
    for i, p in enumerate(made):
        chain = dnat_chain(net[0], p.cid)
        assert f"-A {chain} -p tcp -m tcp --dport {18100 + i} -j DNAT --to-destination {p.ip4}:80" in v4
