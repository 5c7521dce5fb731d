"""The Kubernetes network model across nodes, with our chain on every node.

Three "nodes" are network namespaces on one underlay (a bridge in an underlay namespace, like
kind's docker network), each running the chain through libcni 1.3.0 as a kind node's containerd 2.x
does (`cnidrive`, the list at cniVersion 1.1.0, executed *inside* the node's namespace, so the
bridge, the routes and any NAT rules are the node's own) with its own pod CIDR out of one cluster
CIDR, and routes to the other nodes' pod CIDRs via their underlay addresses (what kindnetd installs
on kind). Pods are namespaces attached to their node's bridge. A small TCP server in each receiving
pod answers with the address it saw the connection come from, so every check is made by the
receiver.

- every pod reaches every pod on every node, and the receiver sees the sender's pod address;
- each node reaches its pods;
- with ``ipMasq`` (and the node's exemption for the cluster CIDR, see docs/OPERATIONS.md), traffic leaving
  the cluster CIDR reaches an external namespace from the node's underlay address, while traffic
  inside the cluster CIDR keeps the pod address.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from echo import EchoServers, probe
from helpers import Outcome, ns_argv, ns_exec, parse_json
from nodesetup import KIND_CNI_VERSION, render_netconf
from underlay import Peer, Underlay, address, route_pod_cidrs

CLUSTER_CIDR = ipaddress.IPv4Network("10.244.0.0/16")
EXTERNAL_IP = "172.18.0.100"
NODES = 3
PODS_PER_NODE = 2


@dataclass
class Node:
    name: str
    ns: object  # NetNS
    underlay_ip: str
    pod_cidr: ipaddress.IPv4Network
    conf_dir: Path
    state: Path
    pods: list = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return str(self.pod_cidr.network_address + 1)


@dataclass
class Pod:
    node: Node
    ns: object  # NetNS
    ip: str


def _in_ns(ns, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return ns_exec(ns, *argv, check=check, timeout=timeout)


def _libcni_in_node(cnidrive: Path, node: Node, cmd: str, network: str, pod_ns, cni_path: Path) -> Outcome:
    """libcni in the node's namespace, as the node's runtime would run it (the pod's namespace name
    is its container ID)."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_PATH": str(cni_path),
           "NETCONFPATH": str(node.conf_dir), "CNI_IFNAME": "eth0", "CNI_CONTAINERID": pod_ns.name,
           "CNI_CACHE_DIR": str(node.state / "cache")}
    argv = ns_argv(node.ns, str(cnidrive), cmd, network, pod_ns.path)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, parse_json(proc.stdout), tuple(argv), env)


@dataclass
class Cluster:
    nodes: list[Node]
    external: object  # NetNS
    servers: EchoServers

    @property
    def pods(self) -> list[Pod]:
        return [p for n in self.nodes for p in n.pods]

    def probe(self, ns, targets: list[str]) -> dict[str, str]:
        """From ``ns``, connect to every target; what each receiver saw as the source address."""
        return probe(ns.path, targets)


@pytest.fixture
def make_cluster(netns, cnidrive: Path, node_bin_dir: Path, state_dir: Path) -> Iterator:
    """``make_cluster(ip_masq: bool) -> Cluster``: 3 nodes on an underlay, 2 pods each, echo servers
    in every pod and in the external namespace. Namespaces (and so every link, route and rule in
    them) go with the ``netns`` fixture and the underlay's close; the servers are killed here."""
    servers = EchoServers()
    underlays: list[Underlay] = []
    cni_path = node_bin_dir

    def make(ip_masq: bool) -> Cluster:
        underlay = Underlay.create()
        underlays.append(underlay)
        external = netns("pycni-ext-")
        underlay.plug(external.name, EXTERNAL_IP)
        nodes = []
        for i in range(NODES):
            ns = netns("pycni-node-")
            node = Node(name=f"node{i}", ns=ns, underlay_ip=address(i),
                        pod_cidr=list(CLUSTER_CIDR.subnets(new_prefix=24))[i],
                        conf_dir=state_dir / f"node{i}" / "net.d", state=state_dir / f"node{i}")
            underlay.plug(ns.name, node.underlay_ip)
            conf = render_netconf(str(node.pod_cidr), node.conf_dir,
                                  {"IP_MASQ": "true" if ip_masq else "false"}, cni_version=KIND_CNI_VERSION)
            data = json.loads(conf.read_text())
            (bridge_conf,) = [p for p in data["plugins"] if p["type"] == "bridge"]
            assert bridge_conf["ipMasq"] is ip_masq
            # host-local's state under the test's directory, not the host's /var/lib/cni.
            bridge_conf["ipam"]["dataDir"] = str(node.state / "ipam")
            conf.write_text(json.dumps(data))
            nodes.append(node)
        network = json.loads(conf.read_text())["name"]
        route_pod_cidrs([Peer(n.ns.name, [n.underlay_ip], [str(n.pod_cidr)]) for n in nodes])
        if ip_masq:
            for node in nodes:
                # The node's exemption: pod traffic to the cluster CIDR is never masqueraded.
                _in_ns(node.ns, "iptables", "-w", "-t", "nat", "-I", "POSTROUTING", "1", "-s",
                       str(node.pod_cidr), "-d", str(CLUSTER_CIDR), "-j", "RETURN")
        cluster = Cluster(nodes, external, servers)
        for node in nodes:
            for _ in range(PODS_PER_NODE):
                pod_ns = netns("pycni-pod-")
                out = _libcni_in_node(cnidrive, node, "add", network, pod_ns, cni_path)
                assert out.ok, f"ADD on {node.name}:\n{out.describe()}"
                ips = [ipaddress.ip_interface(i["address"]) for i in out.json.get("ips", [])]
                assert len(ips) == 1 and ips[0].ip in node.pod_cidr, f"{node.name}: {out.json}"
                node.pods.append(Pod(node, pod_ns, str(ips[0].ip)))
        for pod in cluster.pods:
            servers.serve(pod.ns.path)
        servers.serve(external.path)
        return cluster

    try:
        yield make
    finally:
        servers.close()
        for underlay in underlays:
            underlay.close()


def test_every_pod_reaches_every_pod_without_nat(make_cluster) -> None:
    cluster = make_cluster(ip_masq=False)
    pods = cluster.pods
    assert len({p.ip for p in pods}) == NODES * PODS_PER_NODE
    failures = []
    for src in pods:
        seen = cluster.probe(src.ns, [p.ip for p in pods if p is not src])
        for dst, saw in seen.items():
            if saw != src.ip:
                failures.append(f"{src.node.name}/{src.ip} -> {dst}: receiver saw {saw!r}")
    assert not failures, "\n".join(failures)


def test_each_node_reaches_its_pods(make_cluster) -> None:
    cluster = make_cluster(ip_masq=False)
    for node in cluster.nodes:
        seen = cluster.probe(node.ns, [p.ip for p in node.pods])
        # The node's own address on the pod network (the bridge's gateway) is the source.
        assert seen == {p.ip: node.gateway for p in node.pods}, f"{node.name}: {seen}"


def test_ip_masq_only_for_traffic_leaving_the_cluster(make_cluster) -> None:
    cluster = make_cluster(ip_masq=True)
    failures = []
    for src in cluster.pods:
        seen = cluster.probe(src.ns, [EXTERNAL_IP] + [p.ip for p in cluster.pods if p is not src])
        if seen[EXTERNAL_IP] != src.node.underlay_ip:
            failures.append(f"{src.ip} -> external: seen as {seen[EXTERNAL_IP]!r}, "
                            f"expected the node's {src.node.underlay_ip}")
        for dst, saw in seen.items():
            if dst != EXTERNAL_IP and saw != src.ip:
                failures.append(f"{src.ip} -> pod {dst}: seen as {saw!r} (masqueraded inside the cluster)")
    assert not failures, "\n".join(failures)
