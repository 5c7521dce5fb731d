"""kind's own network on three nodes, with only our plugins in every node's /opt/cni/bin.

Three emulated kind nodes (containerd 2.3.4, each in its own network and mount namespaces) share an
underlay (kind's docker network) as their eth0. On each, kindnetd's part is played by the test: its
``10-kindnet.conflist`` for the node's pod CIDRs and eth0's MTU (ptp without masquerade, host-local
in /run/cni-ipam-state, portmap), and a route to every other node's pod CIDRs via that node's
address. The cluster is IPv4 (kind's default), then dual-stack (a /24 and a /64 per node, every
check made in both families).
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

NODES = 3
# kind's pod subnets (10.244.0.0/16 and fd00:10:244::/56), one /24 and one /64 per node.
POD_CIDRS4 = [f"10.244.{i}.0/24" for i in range(NODES)]
POD_CIDRS6 = [f"fd00:10:244:{i}::/64" for i in range(NODES)]
PODS_PER_NODE = 2
HOST_PORT = 30080
EXTERNAL_IPS = {4: "172.18.0.100", 6: "fd00:18::100"}


@dataclass
class Node:
    kind: KindNode
    addresses: dict[int, str]  # underlay address by IP version
    pod_cidrs: list[str]
    cri: CriClient
    pods: list[Sandbox] = field(default_factory=list)


@dataclass
class Cluster:
    nodes: list[Node]
    external: str  # the path of the namespace standing for the world outside the cluster
    versions: tuple[int, ...]  # 4, or 4 and 6 on a dual-stack cluster

    @property
    def pods(self) -> list[tuple[Node, Sandbox]]:
        return [(n, p) for n in self.nodes for p in n.pods]


def _pod_netns(pod: Sandbox) -> str:
    return f"/proc/{pod.pid}/ns/net"


def _of(ips, version: int) -> list[str]:
    return [a for a in ips if ipaddress.ip_address(a).version == version]


def _same(a: str, b: str) -> bool:
    """Two address strings name the same address (forms of IPv6 differ)."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _nat_rules(node: KindNode) -> str:
    """The node's NAT rules in both backends portmap may use."""
    return (node.run("iptables-save", "-t", "nat").stdout
            + node.run("nft", "list", "ruleset", check=False).stdout)


@pytest.fixture(scope="module", params=[(4,), (4, 6)], ids=["ipv4", "dual-stack"])
def cluster(request, node_factory, underlay_factory, cri_stubs) -> Iterator[Cluster]:
    versions: tuple[int, ...] = request.param
    dual = 6 in versions
    underlay = underlay_factory()
    external = unique_name("pycni-ext-", 12)
    servers = EchoServers()
    nodes: list[Node] = []
    try:
        ext_path = add_netns(external)
        underlay.plug(external, EXTERNAL_IPS[4], EXTERNAL_IPS[6] if dual else None)
        for i in range(NODES):
            kind = node_factory(None, namespaces=("k8s.io",))
            cidrs = [POD_CIDRS4[i], POD_CIDRS6[i]] if dual else [POD_CIDRS4[i]]
            addrs = {v: address(i, v) for v in versions}
            nodes.append(Node(kind, addrs, cidrs, CriClient(kind.socket, *cri_stubs)))
            underlay.plug(kind.name, addrs[4], addrs.get(6))
            write_kindnet(kind, cidrs)
        route_pod_cidrs([Peer(n.kind.name, list(n.addresses.values()), n.pod_cidrs) for n in nodes])
        for n in nodes:
            wait_for(lambda n=n: n.cri.conditions()["NetworkReady"].status, 15, "NetworkReady")
            for j in range(PODS_PER_NODE):
                sid = n.cri.run_pod(unique_name("pod-", 8), host_ports={PORT: HOST_PORT} if j == 0 else None)
                pod = n.cri.sandbox(sid)
                n.pods.append(pod)
                for v in versions:
                    servers.serve(_pod_netns(pod), family=v)
        for v in versions:
            servers.serve(ext_path, family=v)
        yield Cluster(nodes, ext_path, versions)
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
    for n in cluster.nodes:
        assert sorted(a for p in n.pods for a in p.ips) == reservations(n.kind, KINDNET_NETWORK)
        for p in n.pods:  # one address of each pod CIDR
            assert sorted(c for c in n.pod_cidrs for a in p.ips
                          if ipaddress.ip_address(a) in ipaddress.ip_network(c)) == sorted(n.pod_cidrs), p.ips
    assert len({a for _, p in pods for a in p.ips}) == NODES * PODS_PER_NODE * len(cluster.versions)
    failures = []
    for v in cluster.versions:
        for _node, src in pods:
            (src_ip,) = _of(src.ips, v)
            seen = probe(_pod_netns(src), [a for _, p in pods if p is not src for a in _of(p.ips, v)])
            failures += [f"{src_ip} -> {dst}: receiver saw {saw!r}"
                         for dst, saw in seen.items() if not _same(saw, src_ip)]
    assert not failures, "\n".join(failures)


def test_host_port_from_outside_the_node(cluster: Cluster) -> None:
    """The node's address:hostPort reaches the pod that asked for it, from the outside and from
    another node, and the pod sees the real client (portmap DNATs, it does not masquerade)."""
    failures = []
    for v in cluster.versions:
        for i, n in enumerate(cluster.nodes):
            (target,) = _of(n.pods[0].ips, v)
            other = cluster.nodes[(i + 1) % len(cluster.nodes)]
            clients = ((cluster.external, EXTERNAL_IPS[v]), (other.kind.netns_path, other.addresses[v]))
            for client, client_ip in clients:
                seen = probe_both(client, [n.addresses[v]], HOST_PORT)[n.addresses[v]].split()
                if len(seen) != 2 or not (_same(seen[0], client_ip) and _same(seen[1], target)):
                    failures.append(f"{client_ip} -> {n.addresses[v]}:{HOST_PORT}: {seen!r}, "
                                    f"expected [{client_ip!r}, {target!r}]")
    for n in cluster.nodes:
        assert str(HOST_PORT) in _nat_rules(n.kind)
    assert not failures, "\n".join(failures)


def test_removing_every_pod_leaves_nothing(cluster: Cluster) -> None:
    for n in cluster.nodes:
        assert cached_results(n.kind), "containerd's libcni cached the results it got"
        for pod in n.pods:
            n.cri.stop_pod(pod.id)
            n.cri.remove_pod(pod.id)
    for n in cluster.nodes:
        node = n.kind
        pod_cidrs = [ipaddress.ip_network(c) for c in n.pod_cidrs]
        assert pod_veths(node.netns_path) == [], node.name
        routes = [r["dst"] for v in cluster.versions
                  for r in ip_json(f"-{v}", "route", "show", netns=node.netns_path) if r["dst"] != "default"]
        to_pods = [r for r in routes for c in pod_cidrs
                   if ipaddress.ip_network(r).version == c.version and ipaddress.ip_network(r).subnet_of(c)]
        assert to_pods == [], node.name
        assert reservations(node, KINDNET_NETWORK) == [], node.name
        left = [p.name for p in (node.ipam_state / KINDNET_NETWORK).iterdir()
                if p.name != "lock" and not p.name.startswith("last_reserved_ip")]
        assert left == [], f"{node.name}: /run/cni-ipam-state/{KINDNET_NETWORK} holds {left}"
        assert str(HOST_PORT) not in _nat_rules(node), node.name
        assert cached_results(node) == [], node.name
        # The routes kindnetd keeps to the other nodes stay (they are not the plugins').
        others = {str(ipaddress.ip_network(c)) for o in cluster.nodes if o is not n for c in o.pod_cidrs}
        assert others <= {str(ipaddress.ip_network(r)) for r in routes}, routes
    for v in cluster.versions:
        after = probe_both(cluster.external, [n.addresses[v] for n in cluster.nodes], HOST_PORT)
        assert all(seen.startswith("error:") for seen in after.values()), after
    for n in cluster.nodes:
        n.pods.clear()
