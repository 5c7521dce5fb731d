"""The kubelet's path: CRI RunPodSandbox / PodSandboxStatus / StopPodSandbox / RemovePodSandbox and
Status against containerd's CRI plugin, which runs the node's first config list (plus `loopback`)
from /etc/cni/net.d and /opt/cni/bin, and turns the pod's bandwidth annotations into the
`bandwidth` capability. The pod tests run on kind's containerd 2.3.4 (list at cniVersion 1.1.0) and
on Debian's 1.6.20 (1.0.0), whose CRI plugins pass capabilities and results differently.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cri import CriClient
from helpers import ip_json, ns_argv, tc_json, unique_name
from kindnode import KindNode
from nodecheck import (
    assert_reaches,
    cached_results,
    ipv4_of,
    links_of_kind,
    network_name,
    peer_veth,
    reservations,
    shaping_qdiscs,
    wait_for,
)
from nodesetup import RUNTIMES, render_netconf, runtime_for

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.2.0/24")
GATEWAY = str(POD_CIDR.network_address + 1)
BANDWIDTH = {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"}
MBIT = 1_000_000


@pytest.fixture(scope="module", params=RUNTIMES, ids=lambda v: f"containerd-{v}")
def node(request: pytest.FixtureRequest, node_factory) -> Iterator[KindNode]:
    """A node on kind's containerd 2.3.4 (list at 1.1.0), then one on Debian's 1.6.20 (at 1.0.0)."""
    node = node_factory(str(POD_CIDR), namespaces=("k8s.io",), runtime=runtime_for(request.param))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def network(node: KindNode) -> str:
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    return network_name(conf)


def _rate_bits(qdisc: dict) -> int:
    """tbf's rate from ``tc -j`` (bytes per second there) in bits per second."""
    return int(qdisc["options"]["rate"]) * 8


def test_network_ready_follows_the_config(node_factory, cri_factory) -> None:
    """A node starts NotReady for networking until a config list appears, as on kind with
    disableDefaultCNI; install-netconf.sh (docs/OPERATIONS.md) is what makes it Ready."""
    bare = node_factory(None, namespaces=("k8s.io",))
    cri = cri_factory(bare)
    cond = cri.conditions()
    assert cond["RuntimeReady"].status
    assert not cond["NetworkReady"].status, "NetworkReady without any CNI config"
    assert (cond["NetworkReady"].reason, cond["NetworkReady"].message) == (
        "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized")
    render_netconf(str(POD_CIDR), bare.conf_dir, cni_version=bare.runtime.cni_version)
    wait_for(lambda: cri.conditions()["NetworkReady"].status, 15, "NetworkReady after writing the config")
    sid = cri.run_pod(unique_name("pod-", 8))
    try:
        assert ipaddress.ip_address(cri.sandbox(sid).ip) in POD_CIDR
    finally:
        cri.stop_pod(sid)
        cri.remove_pod(sid)
    bare.stop()


def test_pod_gets_network_and_bandwidth(node: KindNode, network: str, pods) -> None:
    cri: CriClient = pods.cri
    assert cri.conditions()["NetworkReady"].status
    sid = pods(BANDWIDTH)
    sb = cri.sandbox(sid)
    pod_ns = f"/proc/{sb.pid}/ns/net"

    # Address: reported to the kubelet, configured on eth0, reserved by host-local.
    ip = ipaddress.ip_address(sb.ip)
    assert ip in POD_CIDR and str(ip) != GATEWAY
    assert [str(a.ip) for a in ipv4_of(pod_ns)] == [sb.ip]
    assert reservations(node, network) == [sb.ip]
    # loopback ran too (containerd always adds it).
    lo = ip_json("link", "show", "dev", "lo", netns=pod_ns)[0]
    assert "UP" in lo["flags"]
    assert_reaches(pod_ns, GATEWAY, "pod -> gateway")
    assert_reaches(node.netns_path, sb.ip, "node -> pod")

    # Ingress (to the pod): a token bucket on the node side of the veth.
    veth = peer_veth(node, pod_ns)["ifname"]
    qdiscs = tc_json("qdisc", "show", "dev", veth, netns=node.netns_path)
    tbf = [q for q in qdiscs if q["kind"] == "tbf"]
    assert len(tbf) == 1 and _rate_bits(tbf[0]) == 1 * MBIT, qdiscs
    # Egress (from the pod): the veth's ingress is redirected to an ifb with its own token bucket.
    assert any(q["kind"] in ("ingress", "clsact") for q in qdiscs), qdiscs
    ifbs = links_of_kind(node.netns_path, "ifb")
    assert len(ifbs) == 1, ifbs
    ifb_tbf = [q for q in tc_json("qdisc", "show", "dev", ifbs[0]["ifname"], netns=node.netns_path)
               if q["kind"] == "tbf"]
    assert len(ifb_tbf) == 1 and _rate_bits(ifb_tbf[0]) == 2 * MBIT, ifb_tbf
    filters = tc_json("filter", "show", "dev", veth, "parent", "ffff:", netns=node.netns_path)
    assert ifbs[0]["ifname"] in str(filters), f"no redirect from {veth} to the ifb: {filters}"

    # StopPodSandbox releases everything; a second stop and RemovePodSandbox are no-ops.
    cri.stop_pod(sid)
    assert reservations(node, network) == []
    assert links_of_kind(node.netns_path, "veth") == []
    assert links_of_kind(node.netns_path, "ifb") == []
    assert shaping_qdiscs(node.netns_path) == []
    assert not [n for n in cached_results(node) if sid in n]
    cri.stop_pod(sid)
    cri.remove_pod(sid)
    with pytest.raises(grpc.RpcError) as err:
        cri.status(sid)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_pods_reach_each_other(node: KindNode, network: str, pods) -> None:
    cri: CriClient = pods.cri
    a, b = (cri.sandbox(pods()) for _ in range(2))
    assert a.ip != b.ip
    assert sorted([a.ip, b.ip]) == reservations(node, network)
    assert_reaches(f"/proc/{a.pid}/ns/net", b.ip, "pod a -> pod b")
    assert_reaches(f"/proc/{b.pid}/ns/net", a.ip, "pod b -> pod a")


ECHO_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    with c:
        c.sendall(b"pod:" + peer[0].encode())
"""


def test_host_port_reaches_the_pod(node: KindNode, network: str, pods, chain_plugins) -> None:
    """hostPort: containerd passes portMappings (go-cni's capitalised keys) to the chain's portmap,
    ours unless the whole chain is the reference's."""
    portmap = subprocess.run([str(node.bin_dir / "portmap")], env={"PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, timeout=60, check=False)
    if chain_plugins[0] == "ours":
        assert "pycni" in portmap.stderr, f"the node runs another portmap: {portmap.stderr!r}"
    cri: CriClient = pods.cri
    sb = cri.sandbox(pods(host_ports={8080: 30080}))
    node_ip = "192.0.2.10"  # a node address outside the pod network, like a kind node's eth0 address
    node.run("ip", "addr", "replace", f"{node_ip}/32", "dev", "lo")
    server = subprocess.Popen(ns_argv(f"/proc/{sb.pid}/ns/net", sys.executable, "-I", "-c", ECHO_SERVER),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = ("import socket\n"
                  f"c = socket.create_connection(('{node_ip}', 30080), timeout=5)\n"
                  "print(c.recv(64).decode())")
        # From the node to its own address: portmap's DNAT in the node's OUTPUT path sends it to the pod.
        out = node.run(sys.executable, "-I", "-c", client, timeout=30)
        assert out.stdout.strip() == f"pod:{node_ip}", out.stdout
    finally:
        server.kill()
        server.wait(timeout=10)
