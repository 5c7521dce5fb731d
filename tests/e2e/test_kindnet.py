"""kind's default network on a node: kindnetd's list (ptp + host-local with a default route, then
portmap, at 0.3.1) run by containerd's CRI through our plugins. Pods get addresses of the pod CIDR
routed through the host end of their veth, reach each other, and leave nothing when removed."""

from __future__ import annotations

import ipaddress

import pytest
from cri import CriClient
from helpers import addresses, ip_json
from kindnode import KindNode
from nodecheck import assert_reaches, cached_results, links_of_kind, peer_veth, reservations, wait_for

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.3.0/24")
GATEWAY = str(POD_CIDR.network_address + 1)
NETWORK = "kindnet"


@pytest.fixture(scope="module")
def node(node_factory) -> KindNode:
    node = node_factory(None, namespaces=("k8s.io",))
    node.write_netconf({"cniVersion": "0.3.1", "name": NETWORK, "plugins": [
        {"type": "ptp", "ipMasq": False, "mtu": 1500,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": str(POD_CIDR)}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}, "10-kindnet.conflist")
    return node


def test_pods_on_kindnets_list(node: KindNode, pods) -> None:
    cri: CriClient = pods.cri
    wait_for(lambda: cri.conditions()["NetworkReady"].status, 15, "NetworkReady with kindnet's list")
    a, b = (cri.sandbox(pods()) for _ in range(2))
    assert a.ip != b.ip and {ipaddress.ip_address(a.ip), ipaddress.ip_address(b.ip)} <= set(POD_CIDR)
    assert sorted([a.ip, b.ip]) == reservations(node, NETWORK)
    for pod in (a, b):
        netns = f"/proc/{pod.pid}/ns/net"
        assert addresses("eth0", netns) == [f"{pod.ip}/{POD_CIDR.prefixlen}"]
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
    assert links_of_kind(node.netns_path, "veth") == []
    assert not [c for c in cached_results(node) if NETWORK in c]
