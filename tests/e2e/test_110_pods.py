"""A node starting its 110 pods (the kubelet's default maximum) at once through containerd's CRI:
every RunPodSandbox succeeds with its own address, and stopping and removing them all leaves
nothing: no reservation, veth, IFB, qdisc or cached result.

The time of each RunPodSandbox is printed (p50, p99) for the reliability figures (docs/BENCHMARKS.md); it is
not asserted (latency belongs to the benchmarks).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import unique_name
from kindnode import KindNode
from nodecheck import cached_results, links_of_kind, network_name, reservations, shaping_qdiscs

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.9.0/24")
PODS = 110
BANDWIDTH = {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"}


@pytest.fixture(scope="module")
def node(node_factory) -> KindNode:
    return node_factory(str(POD_CIDR), namespaces=("k8s.io",))


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def test_110_pods_at_once(node: KindNode, cri_factory, chain_plugins) -> None:
    cri = cri_factory(node)
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    network = network_name(conf)
    made: list[str] = []

    def start(i: int) -> tuple[str, float]:
        t0 = time.perf_counter()
        sid = cri.run_pod(unique_name(f"pod{i}-", 6), annotations=BANDWIDTH)
        return sid, time.perf_counter() - t0

    def stop(sid: str) -> float:
        t0 = time.perf_counter()
        cri.stop_pod(sid)
        cri.remove_pod(sid)
        return time.perf_counter() - t0

    try:
        with ThreadPoolExecutor(PODS) as pool:
            started = list(pool.map(start, range(PODS)))
        made = [sid for sid, _ in started]
        ips = [cri.sandbox(sid).ip for sid in made]
        assert len(set(ips)) == PODS, sorted(ips)
        assert all(ipaddress.ip_address(ip) in POD_CIDR for ip in ips)
        assert sorted(reservations(node, network)) == sorted(ips)
        assert len(links_of_kind(node.netns_path, "veth")) == PODS
        assert len(links_of_kind(node.netns_path, "ifb")) == PODS
        with ThreadPoolExecutor(PODS) as pool:
            stopped = list(pool.map(stop, made))
        made = []
    finally:
        for sid in made:
            for call in (cri.stop_pod, cri.remove_pod):
                with contextlib.suppress(grpc.RpcError):
                    call(sid)
    assert reservations(node, network) == []
    assert links_of_kind(node.netns_path, "veth") == [] and links_of_kind(node.netns_path, "ifb") == []
    assert shaping_qdiscs(node.netns_path) == []
    assert cached_results(node) == []
    run = [t for _, t in started]
    ms = {k: round(_quantile(v, q) * 1000) for k, v, q in
          (("run50", run, 0.5), ("run99", run, 0.99), ("stop50", stopped, 0.5), ("stop99", stopped, 0.99))}
    print(f"\n{chain_plugins[0]}: {PODS} pods at once: RunPodSandbox p50 {ms['run50']} ms, "
          f"p99 {ms['run99']} ms, "
          f"all started in {max(run):.1f} s; stop+remove p50 {ms['stop50']} ms, p99 {ms['stop99']} ms")
