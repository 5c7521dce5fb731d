"""Our portmap next to the reference portmap v1.9.1 (iptables backend), on one emulated node:
the same request gives the same nat table, byte for byte once the pod's addresses are named, and
each one's DEL removes the other's ADD. Each one's CHECK accepts the other's rules. The nftables
backend is compared in test_differential_nft.py.
"""

from __future__ import annotations

import pytest
from helpers import unique_name

pytestmark = pytest.mark.root


def _m(host, cont, proto="tcp", host_ip=""):
    return {"hostPort": host, "containerPort": cont, "protocol": proto, "hostIP": host_ip}


CASES = {
    "tcp-udp": ({}, lambda node: [_m(18080, 80), _m(18053, 53, "udp")]),
    "capitalised": ({}, lambda node: [{"HostPort": 18081, "ContainerPort": 81, "Protocol": "tcp",
                                       "HostIP": ""}]),
    "host-ip": ({}, lambda node: [_m(18082, 82, host_ip=node.ip4), _m(18083, 83, host_ip=node.ip6),
                                  _m(18084, 84, host_ip="0.0.0.0")]),
    "no-snat": ({"snat": False}, lambda node: [_m(18085, 85), _m(18086, 86, "udp")]),
    "mark-bit": ({"markMasqBit": 5}, lambda node: [_m(18088, 88)]),
    "masq-all": ({"masqAll": True}, lambda node: [_m(18087, 87), _m(18091, 91, "udp")]),
    "sctp": ({}, lambda node: [_m(18092, 92, "sctp"), _m(18093, 93, "SCTP")]),
    "external-mark": ({"externalSetMarkChain": "PMTEST-MARK"}, lambda node: [_m(18089, 89)]),
    "many-ports": ({}, lambda node: [_m(18100 + i, 100 + i, "udp" if i % 3 == 0 else "tcp")
                                     for i in range(40)]),
    "conditions": ({"conditionsV4": ["-s", "198.51.100.0/24"],
                    "conditionsV6": ["!", "-s", "2001:db8:1::/48"]}, lambda node: [_m(18090, 90)]),
}


def _state(node, pod) -> list[str]:
    """Both families' nat tables, the pod's addresses named."""
    lines = [f"v{f} {line}" for f in (4, 6) for line in node.iptables_save(f)]
    return [line.replace(f"[{pod.ip6}]", "[<pod6>]").replace(pod.ip4 + ":", "<pod4>:") for line in lines]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_rules_and_cross_del(case, node, pods):
    portmap, mappings = CASES[case]
    if "externalSetMarkChain" in portmap:
        for tool in ("iptables", "ip6tables"):
            node.sh(tool, "-t", "nat", "-N", "PMTEST-MARK")
    net = pods.network(portmap)
    cid = unique_name("pmdiff", 10)
    clean = _state_empty(node)
    states = {}
    for add_impl, del_impl in (("ours", "ref"), ("ref", "ours")):
        pod = pods(mappings(node), net=net, impl=add_impl, cid=cid)
        states[add_impl] = _state(node, pod)
        for checker in ("ours", "ref"):
            checked = pod.run("check", pods.dirs[checker])
            assert checked.ok, f"{checker}'s CHECK of {add_impl}'s ADD: {checked.stdout} {states}"
        pod.run("del", pods.dirs[del_impl]).check()
        pod.deleted = True
        assert not [line for f in (4, 6) for line in node.iptables_save(f) if "CNI-DN-" in line], \
            f"{del_impl}'s DEL left {add_impl}'s rules"
        _drop_shared(node)
        assert _state_empty(node) == clean
    assert states["ours"] == states["ref"]
    assert any("CNI-DN-" in line for line in states["ours"])


def _state_empty(node) -> list[str]:
    return [f"v{f} {line}" for f in (4, 6) for line in node.iptables_save(f)]


def _drop_shared(node) -> None:
    """The shared chains stay after DEL (in both implementations); remove them so that the next ADD
    starts from the same empty table, and the comparison sees who creates them and how."""
    for tool in ("iptables", "ip6tables"):
        for rule in (["PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
                     ["OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
                     ["POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j",
                      "CNI-HOSTPORT-MASQ"]):
            while node.sh(tool, "-t", "nat", "-D", *rule, check=False).returncode == 0:
                pass
        for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"):
            node.sh(tool, "-t", "nat", "-F", chain, check=False)
            node.sh(tool, "-t", "nat", "-X", chain, check=False)
