"""kind's own network on three nodes, with only our plugins in every node's /opt/cni/bin.

Three emulated kind nodes (containerd 2.3.4, each in its own network and mount namespaces) share an
underlay (kind's docker network) as their eth0. On each, kindnetd's part is played by the test: its
``10-kindnet.conflist`` for the node's pod CIDR and eth0's MTU (ptp without masquerade, host-local in
/run/cni-ipam-state, portmap), and a route to every other node's pod CIDR via that node's address.
Pods are made through the CRI as the kubelet makes them; the first pod of each node asks for a
hostPort. An echo server in every pod answers with the address the connection came from, so each
check is made by the receiver:

- pods reach every pod on every node, seen with their own address (no NAT on the way);
- a hostPort answers on the node's address from the outside and from another node, DNAT only;
- StopPodSandbox and RemovePodSandbox of every pod leave nothing on any node: no veth, no route to a
  pod, no reservation in /run/cni-ipam-state, no portmap rule, no cached result.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cri import CriClient, Sandbox
from echo import PORT, EchoServers, probe, probe_both
from helpers import add_netns, del_netns, ip_json, unique_name
from kindnode import KindNode
from nodecheck import cached_results, pod_veths, reservations, wait_for
from nodesetup import KIND_SHIPPED, KINDNET_NETWORK, write_kindnet
from underlay import Peer, address, route_pod_cidrs

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDRS = ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]  # kind's 10.244.0.0/16, one per node
PODS_PER_NODE = 2
HOST_PORT = 30080
EXTERNAL_IP = "172.18.0.100"


@dataclass
class Node:
    kind: KindNode
    address: str
    pod_cidr: str
    cri: CriClient
    pods: list[Sandbox] = field(default_factory=list)


@dataclass
class Cluster:
    nodes: list[Node]
    external: str  # the path of the namespace standing for the world outside the cluster

    @property
    def pods(self) -> list[tuple[Node, Sandbox]]:
        return [(n, p) for n in self.nodes for p in n.pods]


def _pod_netns(pod: Sandbox) -> str:
    return f"/proc/{pod.pid}/ns/net"


def _nat_rules(node: KindNode) -> str:
    """The node's NAT rules in both backends portmap may use."""
    return (node.run("iptables-save", "-t", "nat").stdout
            + node.run("nft", "list", "ruleset", check=False).stdout)


@pytest.fixture(scope="module")
def cluster(node_factory, underlay_factory, cri_stubs) -> Iterator[Cluster]:
    underlay = underlay_factory()
    external = unique_name("pycni-ext-", 12)
    servers = EchoServers()
    nodes: list[Node] = []
    try:
        ext_path = add_netns(external)
        underlay.plug(external, EXTERNAL_IP)
        for i, cidr in enumerate(POD_CIDRS):
            kind = node_factory(None, namespaces=("k8s.io",))
            nodes.append(Node(kind, address(i), cidr, CriClient(kind.socket, *cri_stubs)))
            underlay.plug(kind.name, address(i))
            write_kindnet(kind, [cidr])
        route_pod_cidrs([Peer(n.kind.name, n.address, [n.pod_cidr]) for n in nodes])
        for n in nodes:
            wait_for(lambda n=n: n.cri.conditions()["NetworkReady"].status, 15, "NetworkReady")
            for j in range(PODS_PER_NODE):
                sid = n.cri.run_pod(unique_name("pod-", 8), host_ports={PORT: HOST_PORT} if j == 0 else None)
                pod = n.cri.sandbox(sid)
                n.pods.append(pod)
                servers.serve(_pod_netns(pod))
        yield Cluster(nodes, ext_path)
    finally:
        servers.close()
        for n in nodes:
            for pod in n.pods:
                for call in (n.cri.stop_pod, n.cri.remove_pod):
                    with contextlib.suppress(grpc.RpcError):
                        call(pod.id)
            n.cri.close()
            n.kind.stop()
        del_netns(external)


def test_nodes_run_only_our_plugins(cluster: Cluster, chain_plugins) -> None:
    """Every plugin kind ships in /opt/cni/bin was replaced by ours: the name resolves into our
    bundle, and it introduces itself as pycni."""
    if chain_plugins[0] != "ours":
        pytest.skip("the bench runs the reference plugins (PYCNI_E2E_PLUGINS=reference)")
    for n in cluster.nodes:
        for name in KIND_SHIPPED:
            path = n.kind.bin_dir / name
            target = path.resolve()
            assert target.name == "pycni", f"{path} -> {target}"
            proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
            about = proc.stdout + proc.stderr
            assert f"CNI {name} plugin (pycni " in about, f"{path}: {about!r}"


def test_pods_reach_across_nodes_with_their_own_address(cluster: Cluster) -> None:
    pods = cluster.pods
    assert len({p.ip for _, p in pods}) == len(POD_CIDRS) * PODS_PER_NODE
    for n in cluster.nodes:
        assert sorted(p.ip for p in n.pods) == reservations(n.kind, KINDNET_NETWORK)
        assert all(ipaddress.ip_address(p.ip) in ipaddress.ip_network(n.pod_cidr) for p in n.pods)
    failures = []
    for node, src in pods:
        seen = probe(_pod_netns(src), [p.ip for _, p in pods if p is not src])
        failures += [f"{node.address}/{src.ip} -> {dst}: receiver saw {saw!r}"
                     for dst, saw in seen.items() if saw != src.ip]
    assert not failures, "\n".join(failures)


def test_host_port_from_outside_the_node(cluster: Cluster) -> None:
    """The node's address:hostPort reaches the pod that asked for it, from the outside and from
    another node, and the pod sees the real client (portmap DNATs, it does not masquerade)."""
    failures = []
    for i, n in enumerate(cluster.nodes):
        target = n.pods[0]
        other = cluster.nodes[(i + 1) % len(cluster.nodes)]
        for client, client_ip in ((cluster.external, EXTERNAL_IP), (other.kind.netns_path, other.address)):
            seen = probe_both(client, [n.address], HOST_PORT)[n.address]
            if seen != f"{client_ip} {target.ip}":
                failures.append(f"{client_ip} -> {n.address}:{HOST_PORT}: {seen!r}, "
                                f"expected '{client_ip} {target.ip}'")
        assert str(HOST_PORT) in _nat_rules(n.kind)
    assert not failures, "\n".join(failures)


def test_removing_every_pod_leaves_nothing(cluster: Cluster) -> None:
    for n in cluster.nodes:
        assert cached_results(n.kind), "containerd's libcni cached the results it got"
        for pod in n.pods:
            n.cri.stop_pod(pod.id)
            n.cri.remove_pod(pod.id)
    for n in cluster.nodes:
        node, pod_cidr = n.kind, ipaddress.ip_network(n.pod_cidr)
        assert pod_veths(node.netns_path) == [], node.name
        pod_routes = [r for r in ip_json("-4", "route", "show", netns=node.netns_path)
                      if r["dst"] != "default" and ipaddress.ip_network(r["dst"]).subnet_of(pod_cidr)]
        assert pod_routes == [], node.name
        assert reservations(node, KINDNET_NETWORK) == [], node.name
        left = [p.name for p in (node.ipam_state / KINDNET_NETWORK).iterdir()
                if p.name not in ("lock",) and not p.name.startswith("last_reserved_ip")]
        assert left == [], f"{node.name}: /run/cni-ipam-state/{KINDNET_NETWORK} holds {left}"
        assert str(HOST_PORT) not in _nat_rules(node), node.name
        assert cached_results(node) == [], node.name
        # The routes kindnetd keeps to the other nodes stay (they are not the plugins').
        others = {o.pod_cidr for o in cluster.nodes if o is not n}
        assert others <= {r["dst"] for r in ip_json("-4", "route", "show", netns=node.netns_path)}
    probe_after = probe_both(cluster.external, [n.address for n in cluster.nodes], HOST_PORT)
    assert all(seen.startswith("error:") for seen in probe_after.values()), probe_after
    for n in cluster.nodes:
        n.pods.clear()
