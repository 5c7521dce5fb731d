"""kind's default network on a node: kindnetd's list (ptp + host-local in /run/cni-ipam-state with a
default route, then portmap, at 0.3.1, the MTU of the node's eth0) run by containerd's CRI through our
plugins. Pods get addresses of the pod CIDR routed through the host end of their veth, with eth0's
MTU, reach each other, and leave nothing when removed."""

from __future__ import annotations

import ipaddress

import pytest
from cri import CriClient
from helpers import addresses, ip_json
from kindnode import KindNode
from nodecheck import assert_reaches, cached_results, peer_veth, pod_veths, reservations, wait_for
from nodesetup import KINDNET_NETWORK, write_kindnet
from underlay import address

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.3.0/24")
GATEWAY = str(POD_CIDR.network_address + 1)
NETWORK = KINDNET_NETWORK
NODE_MTU = 1400  # not the default, so the list's mtu visibly reaches the pods


@pytest.fixture(scope="module")
def node(node_factory, underlay_factory) -> KindNode:
    node = node_factory(None, namespaces=("k8s.io",))
    underlay_factory(NODE_MTU).plug(node.name, address(0))
    write_kindnet(node, [str(POD_CIDR)])
    return node


def test_pods_on_kindnets_list(node: KindNode, pods) -> None:
    cri: CriClient = pods.cri
    wait_for(lambda: cri.conditions()["NetworkReady"].status, 15, "NetworkReady with kindnet's list")
    a, b = (cri.sandbox(pods()) for _ in range(2))
    assert a.ip != b.ip and {ipaddress.ip_address(a.ip), ipaddress.ip_address(b.ip)} <= set(POD_CIDR)
    assert sorted([a.ip, b.ip]) == reservations(node, NETWORK)
    assert not (node.cni_state / "networks").exists(), "host-local used /var/lib/cni, not the list's dataDir"
    for pod in (a, b):
        netns = f"/proc/{pod.pid}/ns/net"
        assert addresses("eth0", netns) == [f"{pod.ip}/{POD_CIDR.prefixlen}"]
        assert ip_json("link", "show", "dev", "eth0", netns=netns)[0]["mtu"] == NODE_MTU
        routes = {r["dst"]: r for r in ip_json("-4", "route", "show", netns=netns)}
        assert routes["default"]["gateway"] == GATEWAY
        assert routes[str(POD_CIDR)]["gateway"] == GATEWAY and routes[GATEWAY]["scope"] == "link"
        host = peer_veth(node, netns)
        assert host["ifname"].startswith("veth")
        assert addresses(host["ifname"], node.netns_path) == [f"{GATEWAY}/32"]
        node_routes = {r["dst"]: r for r in ip_json("-4", "route", "show", "dev", host["ifname"],
                                                    netns=node.netns_path)}
        assert node_routes[pod.ip]["scope"] == "host"
    assert_reaches(f"/proc/{a.pid}/ns/net", b.ip, "pod a -> pod b")
    assert_reaches(f"/proc/{b.pid}/ns/net", a.ip, "pod b -> pod a")
    assert_reaches(f"/proc/{a.pid}/ns/net", GATEWAY, "pod a -> its gateway on the node")
    for sid in (a.id, b.id):
        cri.stop_pod(sid)
        cri.remove_pod(sid)
    assert reservations(node, NETWORK) == []
    assert pod_veths(node.netns_path) == []
    assert not [c for c in cached_results(node) if NETWORK in c]
