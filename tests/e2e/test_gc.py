"""`pycni status` and `pycni gc` on an emulated kind node, against its containerd's CRI.

The node runs our chain (bridge with ipMasq, host-local, bandwidth, then kind's portmap) for pods
made through the CRI. Leaks are made the way a reboot makes them: a chain ADD (through libcni, as
the runtime runs it: libcni 1.3.0's cnidrive) whose DEL never runs, then its network namespace
removed; and reservations written by the reference host-local (v1.9.1) for a container the runtime
never had. The list is at the runtime's cniVersion (1.1.0 on containerd 2.x). `pycni` is run
inside the node, as `docker exec <node> /opt/cni/bin/pycni ...` runs it on kind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import unique_name
from kindnode import KindNode
from nodecheck import assert_reaches, cached_results, links_of_kind, network_name, reservations
from nodesetup import reference_dir, render_netconf

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

POD_CIDR = ipaddress.IPv4Network("10.244.7.0/24")
BANDWIDTH = {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"}
LEAK_CAPS = {"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 2**32 - 1, "egressRate": 2_000_000,
                           "egressBurst": 2**32 - 1},
             "portMappings": [{"hostPort": 30099, "containerPort": 80, "protocol": "tcp"}]}
PYCNI = "/opt/cni/bin/pycni"


@pytest.fixture(scope="module")
def node(node_factory, chain_plugins) -> KindNode:
    if chain_plugins[0] != "ours":
        pytest.skip("`pycni` is installed with our plugins only (PYCNI_E2E_PLUGINS=reference)")
    n = node_factory(None, namespaces=("k8s.io",))
    render_netconf(str(POD_CIDR), n.conf_dir, env={"IP_MASQ": "true"}, cni_version=n.runtime.cni_version)
    return n


@pytest.fixture(scope="module")
def network(node: KindNode) -> str:
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    return network_name(conf)


@pytest.fixture(scope="module")
def endpoint(node: KindNode) -> str:
    return f"unix://{node.socket}"


def pycni(node: KindNode, *args: str, check: bool = True,
          timeout: float = 120) -> subprocess.CompletedProcess:
    return node.run(PYCNI, *args, check=check, timeout=timeout)


def status_json(node: KindNode, endpoint: str, *extra: str) -> dict:
    out = pycni(node, "status", "--cri-endpoint", endpoint, "--json", *extra)
    return json.loads(out.stdout)


def our_net(report: dict, network: str) -> dict:
    (net,) = [n for n in report["networks"] if n["name"] == network]
    return net


def nat_chains(node: KindNode) -> set[str]:
    """The per-container nat chains on the node (ipMasq CNI-<hash>, portmap CNI-DN-<hash>)."""
    save = node.run("iptables-save", "-t", "nat").stdout
    return {line[1:].split()[0] for line in save.splitlines()
            if line.startswith(":CNI-") and not line.startswith((":CNI-HOSTPORT",))}


def ifb_names(node: KindNode) -> set[str]:
    return {link["ifname"] for link in links_of_kind(node.netns_path, "ifb")}


def snapshot(node: KindNode, network: str) -> tuple:
    """What gc may change: reservations, cache entries, nat chains, IFBs."""
    return reservations(node, network), cached_results(node), nat_chains(node), ifb_names(node)


class Leaks:
    """Attachments the runtime does not hold, made as a reboot leaves them."""

    def __init__(self, node: KindNode, network: str, cnidrive: Path) -> None:
        self.node, self.network, self.cnidrive = node, network, cnidrive
        self.netns: dict[str, str] = {}  # name -> container ID of its attachment

    def _libcni(self, command: str, cid: str, name: str, check: bool = True) -> None:
        self.node.run("env", "NETCONFPATH=/etc/cni/net.d", "CNI_PATH=/opt/cni/bin", f"CNI_CONTAINERID={cid}",
                      f"CAP_ARGS={json.dumps(LEAK_CAPS)}", str(self.cnidrive), command, self.network,
                      f"/var/run/netns/{name}", check=check)

    def chain_add(self, remove_netns: bool = True) -> str:
        """A chain ADD through libcni whose DEL never runs; its netns is then removed (as a reboot
        does). Left in place, it stands for a container of another runtime sharing the list."""
        name = unique_name("pycni-leak-", 8)
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        self.node.run("ip", "netns", "add", name)
        self.netns[name] = cid
        self._libcni("add", cid, name)
        if remove_netns:
            self.node.run("ip", "netns", "del", name)
            del self.netns[name]
        return cid

    def reference_reservation(self, ipam: dict) -> tuple[str, str]:
        """A reservation written by the reference host-local: (container ID, address)."""
        cid = "ref" + uuid.uuid4().hex
        conf = {"cniVersion": "1.0.0", "name": self.network, "type": "host-local", "ipam": ipam}
        out = self.node.run("env", "CNI_COMMAND=ADD", f"CNI_CONTAINERID={cid}", "CNI_NETNS=/var/run/netns/x",
                            "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin", str(reference_dir() / "host-local"),
                            input=json.dumps(conf))
        address = json.loads(out.stdout)["ips"][0]["address"].split("/")[0]
        return cid, address

    def cleanup(self) -> None:
        for name, cid in self.netns.items():
            self._libcni("del", cid, name, check=False)
            self.node.run("ip", "netns", "del", name, check=False)


@pytest.fixture
def leaks(node: KindNode, network: str, cnidrive: Path) -> Iterator[Leaks]:
    made = Leaks(node, network, cnidrive)
    try:
        yield made
    finally:
        made.cleanup()


def _bridge_ipam(node: KindNode) -> dict:
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    (bridge,) = [p for p in json.loads(conf.read_text())["plugins"] if p["type"] == "bridge"]
    return bridge["ipam"]


@contextlib.contextmanager
def silent_socket(path: Path) -> Iterator[None]:
    """A unix socket that accepts connections and never answers (a wedged runtime)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)
        for c in held:
            c.close()
        srv.close()
        path.unlink(missing_ok=True)


def test_gc_frees_exactly_the_leaks(node: KindNode, network: str, endpoint: str, pods, leaks: Leaks,
                                    tmp_path: Path) -> None:
    cri = pods.cri
    live = [cri.sandbox(pods(annotations=BANDWIDTH, host_ports={8080: 30081})),
            cri.sandbox(pods(annotations=BANDWIDTH))]
    # A container of another runtime on the same list (its namespace is still there): never collected.
    foreign = leaks.chain_add(remove_netns=False)
    foreign_ip = [r for r in reservations(node, network) if r not in {sb.ip for sb in live}]
    live_ips = sorted([sb.ip for sb in live] + foreign_ip)
    live_ifbs, live_chains, live_cache = ifb_names(node), nat_chains(node), cached_results(node)
    assert len(live_ifbs) == 3 and live_chains and live_cache
    leaked = leaks.chain_add()
    ref_cid, ref_ip = leaks.reference_reservation(_bridge_ipam(node))
    assert len(ifb_names(node)) == 4 and nat_chains(node) > live_chains

    # status --json: the runtime's list, its plugins, and what is on disk and in the kernel.
    report = status_json(node, endpoint, "--grace", "0")
    assert report["version"] == 1 and report["runtime"]["reachable"]
    assert {s["id"] for s in report["runtime"]["sandboxes"]} >= {sb.id for sb in live}
    net = our_net(report, network)
    assert net["usedByRuntime"] and net["error"] is None
    assert net["note"] is None, "a list at 1.1.0 needs no note on the version STATUS and GC use"
    assert {p["type"] for p in net["plugins"]} >= {"bridge", "bandwidth", "portmap"}
    assert all(p["executable"] for p in net["plugins"])
    # Every plugin of the list answers STATUS, asked at the list's own 1.1.0.
    assert all(p["status"]["ok"] for p in net["plugins"]), net["plugins"]
    (hl,) = net["hostLocal"]
    on_disk = reservations(node, network)
    assert sorted(r["address"] for r in hl["reservations"]) == on_disk
    assert sorted([*live_ips, ref_ip]) == sorted(set(on_disk) - {r["address"] for r in hl["reservations"]
                                                                  if r["containerID"] == leaked})
    assert len(foreign_ip) == 1
    (rs,) = hl["rangeSets"]
    assert rs["used"] == len(on_disk) and rs["free"] == rs["capacity"] - len(on_disk)
    by_cid = {a["containerID"]: a for a in net["attachments"]}
    for sb in live:
        assert by_cid[sb.id]["verdict"] == "live" and by_cid[sb.id]["addresses"] == [sb.ip]
    assert by_cid[leaked]["verdict"] == "leaked" and by_cid[ref_cid]["verdict"] == "leaked"
    assert by_cid[foreign]["verdict"] == "in-use"
    assert by_cid[ref_cid]["addresses"] == [ref_ip]
    assert by_cid[leaked]["ifbs"] and by_cid[leaked]["ipMasq"] and by_cid[leaked]["cached"]
    assert by_cid[leaked]["portmap"], "the leak's hostPort chain (kind's portmap) is accounted for"
    assert {i for a in net["attachments"] for i in a["ifbs"]} == ifb_names(node)
    chains = {c for a in net["attachments"] for c in a["ipMasq"] + a["portmap"]}
    assert chains == nat_chains(node)

    # With the runtime unreachable (no socket; a socket that never answers) nothing is removed.
    before = snapshot(node, network)
    out = pycni(node, "gc", "--cri-endpoint", f"unix://{tmp_path}/missing.sock", "--grace", "0", check=False)
    assert out.returncode != 0 and "cannot reach the runtime" in out.stderr, out
    assert "Traceback" not in out.stderr
    with silent_socket(tmp_path / "wedged.sock"):
        out = pycni(node, "gc", "--cri-endpoint", f"unix://{tmp_path}/wedged.sock", "--grace", "0",
                    "--timeout", "1", check=False, timeout=60)
    assert out.returncode != 0 and "did not answer" in out.stderr, out
    assert snapshot(node, network) == before

    # Within the grace period the leaks are young: kept.
    out = json.loads(pycni(node, "gc", "--cri-endpoint", endpoint, "--json").stdout)
    assert our_net(out, network)["freed"] == []
    assert snapshot(node, network) == before

    # --dry-run names the leaked containers and changes nothing.
    out = json.loads(pycni(node, "gc", "--cri-endpoint", endpoint, "--grace", "0", "--dry-run",
                           "--json").stdout)
    assert {a["containerID"] for a in our_net(out, network)["freed"]} == {leaked, ref_cid}
    text = pycni(node, "gc", "--cri-endpoint", endpoint, "--grace", "0", "--dry-run").stdout
    assert leaked in text and "would free" in text
    assert snapshot(node, network) == before

    # gc: exactly the leaks go; the live pods keep addresses, chains and IFBs and reach each other.
    run = pycni(node, "gc", "--cri-endpoint", endpoint, "--grace", "0", "--json")
    result = json.loads(run.stdout)
    freed = {a["containerID"]: a for a in our_net(result, network)["freed"]}
    assert set(freed) == {leaked, ref_cid}, result
    assert our_net(result, network)["errors"] == []
    assert reservations(node, network) == live_ips
    assert ifb_names(node) == live_ifbs
    assert nat_chains(node) == live_chains  # the leak's ipMasq and portmap chains are gone, no other
    assert cached_results(node) == live_cache
    assert "cache entry" in freed[leaked]["freed"] and f"address {ref_ip}" in freed[ref_cid]["freed"]
    assert_reaches(f"/proc/{live[0].pid}/ns/net", live[1].ip, "pod a -> pod b after gc")
    assert_reaches(f"/proc/{live[1].pid}/ns/net", live[0].ip, "pod b -> pod a after gc")

    # Afterwards status agrees: only live attachments.
    after = our_net(status_json(node, endpoint, "--grace", "0"), network)
    assert {a["containerID"]: a["verdict"] for a in after["attachments"]} == {
        live[0].id: "live", live[1].id: "live", foreign: "in-use"}
    # A second gc frees nothing.
    again = json.loads(pycni(node, "gc", "--cri-endpoint", endpoint, "--grace", "0", "--json").stdout)
    assert our_net(again, network)["freed"] == []


def test_status_table_and_usage(node: KindNode, network: str, endpoint: str) -> None:
    out = pycni(node, "status", "--cri-endpoint", endpoint)
    assert network in out.stdout and "the runtime's network" in out.stdout
    bad = pycni(node, "gc", "--no-such-option", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert os.path.basename(PYCNI) == "pycni"
