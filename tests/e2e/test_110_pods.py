"""A node starting its 110 pods (the kubelet's default maximum) at once through containerd's CRI,
then stopping and removing them all at once: every RunPodSandbox succeeds with its own address,
and afterwards nothing is left: no reservation, veth, IFB, qdisc or cached result.

The same burst runs on a node of its own for each side: our plugins on the cold path
(``PYCNI_WARM_SOCKET=off``), the reference v1.9.1, and our plugins on the warm path (``pycni
serve`` inside the node's namespaces) when the bundle has it; under containerd 2.3.4 (a kind node
of today) and Debian's 1.6.20. The per-pod times (p50, p99 of RunPodSandbox and of StopPodSandbox
followed by RemovePodSandbox) are printed side by side with the load average, and the CPU the
plugins took in each phase (containerd's reaped children, and the warm process's): a burst
saturates the CPU, so that is what sets its length. None of it is asserted (latency belongs to
the benchmarks, and a shared machine moves them).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import unique_name
from kindnode import KindNode
from nodecheck import cached_results, links_of_kind, network_name, reservations, shaping_qdiscs
from nodesetup import reference_dir, runtime_for

from bench.warmserve import WARM_ENV, WarmServer

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.9.0/24")
PODS = 110
BANDWIDTH = {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"}
REFERENCE = "reference v1.9.1"
TICKS = os.sysconf("SC_CLK_TCK")


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _children_cpu(pids: list[int]) -> float:
    """The CPU seconds (user + system) of the reaped children of these processes: containerd's
    are the plugins it ran (and what they ran), the warm process's the calls it forked."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / TICKS


def _burst(node: KindNode, cri, cpu_of: list[int]) -> dict[str, list[float]]:
    """Start PODS pods at once, check them, stop and remove them at once, check nothing is left;
    the seconds each pod's start and stop+remove took, and the CPU seconds the children of
    `cpu_of` took in each phase."""
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

    cpu = [_children_cpu(cpu_of)]
    try:
        with ThreadPoolExecutor(PODS) as pool:
            started = list(pool.map(start, range(PODS)))
        cpu.append(_children_cpu(cpu_of))
        made = [sid for sid, _ in started]
        ips = [cri.sandbox(sid).ip for sid in made]
        assert len(set(ips)) == PODS, sorted(ips)
        assert all(ipaddress.ip_address(ip) in POD_CIDR for ip in ips)
        assert sorted(reservations(node, network)) == sorted(ips)
        assert len(links_of_kind(node.netns_path, "veth")) == PODS
        assert len(links_of_kind(node.netns_path, "ifb")) == PODS
        with ThreadPoolExecutor(PODS) as pool:
            stopped = list(pool.map(stop, made))
        cpu.append(_children_cpu(cpu_of))
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
    return {"start": [t for _, t in started], "stop": stopped,
            "cpu": [cpu[1] - cpu[0], cpu[2] - cpu[1]]}


def _warm_server(node: KindNode, directory: Path):
    """`pycni serve` from the node's bundle, inside the node's mount and network namespaces (it
    serves only callers of its own); skips, saying why, when the bundle or checkout has none."""
    try:
        return WarmServer(node.bin_dir, directory, enter=node.enter_argv())
    except RuntimeError as exc:
        pytest.skip(f"the bundle has no working `pycni serve`: {str(exc)[-300:]}")


def _row(side: str, times: dict[str, list[float]], ref: dict[str, list[float]] | None) -> str:
    cells = []
    for key in ("start", "stop"):
        for q in (0.5, 0.99):
            ms = _quantile(times[key], q) * 1000
            ratio = f" ({ms / (_quantile(ref[key], q) * 1000):.2f}x)" if ref else ""
            cells.append(f"{ms:.0f} ms{ratio}")
    cpu = " | ".join(f"{x:.1f} s" for x in times["cpu"])
    return f"| {side} | " + " | ".join(cells) + f" | {max(times['start']):.1f} s | {cpu} |"


@pytest.mark.parametrize("version", ["2.3.4", "1.6.20"])
def test_110_pods_at_once(version: str, node_factory, cri_factory, chain_plugins, e2e_tmp) -> None:
    runtime = runtime_for(version)
    load_before = _load()
    sides: list[tuple[str, tuple[str, Path], dict[str, str]]] = [
        (REFERENCE, ("reference", reference_dir()), {})]
    if chain_plugins[0] == "ours":
        sides.append(("ours, cold", chain_plugins, {WARM_ENV: "off"}))
        warm_dir = e2e_tmp / unique_name("warm-", 6)
        sides.append(("ours, warm", chain_plugins, {WARM_ENV: str(warm_dir / "s")}))
    figures: dict[str, dict[str, list[float]]] = {}
    skipped = ""
    handed = ""
    for side, chain, env in sides:
        node = node_factory(str(POD_CIDR), namespaces=("k8s.io",), runtime=runtime, chain=chain, env=env)
        try:
            server = None
            if side == "ours, warm":
                try:
                    server = _warm_server(node, warm_dir)
                except pytest.skip.Exception as exc:
                    skipped = str(exc)
                    continue
                assert server.socket == env[WARM_ENV]
            try:
                cpu_of = [node.proc.pid] + ([server.pid] if server is not None else [])
                figures[side] = _burst(node, cri_factory(node), cpu_of)
            finally:
                if server is not None:
                    served, log = server.served(), server.log()
                    server.stop()
            if server is not None:  # the warm figures are warm ones: the server handed calls over
                assert served >= PODS, f"the warm process served {served} calls: {log[-2000:]}"
                handed = (f"the warm process handed over {served} calls; {log.count('went cold')} of them "
                          f"went cold before their commit (their launchers stopped waiting), "
                          f"{server.refused()} were refused")
        finally:
            node.stop()
    ref = figures[REFERENCE]
    lines = [f"\n{runtime.name}: {PODS} pods at once, each side on a node of its own (load average "
             f"{load_before} before, {_load()} after; a shared machine: not figures to quote)",
             "| plugins | RunPodSandbox p50 | p99 | stop+remove p50 | p99 | all started in "
             "| plugins' CPU, start | stop+remove |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [_row(side, times, None if side == REFERENCE else ref) for side, times in figures.items()]
    if skipped:
        lines.append(f"(warm path not measured: {skipped})")
    if handed:
        lines.append(handed)
    print("\n".join(lines))
