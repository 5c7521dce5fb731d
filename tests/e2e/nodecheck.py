"""Read-back of what the chain left on a node: reservations, veths, qdiscs, reachability."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from helpers import ip_json, ns_argv, tc_json
from kindnode import KindNode

BUSYBOX = "/bin/busybox"
# Qdiscs a link has without anyone shaping it.
DEFAULT_QDISCS = frozenset({"noqueue", "pfifo_fast", "fq_codel", "mq", "noop"})


def network_name(conf_file: Path) -> str:
    return json.loads(conf_file.read_text())["name"]


def reservations(node: KindNode, network: str) -> list[str]:
    """IP addresses host-local holds for ``network`` on the node, in its default dataDir
    (/var/lib/cni/networks) or kind's (/run/cni-ipam-state)."""
    out = []
    dirs = [d for d in (node.cni_state / "networks" / network, node.ipam_state / network) if d.is_dir()]
    for f in (f for d in dirs for f in d.iterdir()):
        try:
            ipaddress.ip_address(f.name)
        except ValueError:
            continue  # lock, last_reserved_ip.N
        out.append(f.name)
    return sorted(out)


def cached_results(node: KindNode) -> list[str]:
    d = node.cni_state / "results"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def links_of_kind(netns: Any, kind: str) -> list[dict]:
    return [link for link in ip_json("-d", "link", "show", netns=netns)
            if link.get("linkinfo", {}).get("info_kind") == kind]


def pod_veths(netns: Any) -> list[dict]:
    """The veths of a node's pods: every veth but the node's own eth0 (its end of the underlay)."""
    return [link for link in links_of_kind(netns, "veth") if link["ifname"] != "eth0"]


def shaping_qdiscs(netns: Any) -> list[dict]:
    """Every qdisc in ``netns`` that someone added (tbf, ingress, clsact, htb...)."""
    return [q for q in tc_json("qdisc", "show", netns=netns) if q.get("kind") not in DEFAULT_QDISCS]


def peer_veth(node: KindNode, pod_netns: str, ifname: str = "eth0") -> dict:
    """The node-side veth whose peer is the pod's ``ifname``."""
    pod_if = ip_json("link", "show", "dev", ifname, netns=pod_netns)[0]
    peer_index = pod_if.get("link_index")
    for link in links_of_kind(node.netns_path, "veth"):
        if link.get("ifindex") == peer_index:
            return link
    raise AssertionError(f"no veth on node {node.name} pairs with {ifname} (peer ifindex {peer_index})")


def ipv4_of(netns: Any, ifname: str = "eth0") -> list[ipaddress.IPv4Interface]:
    found = ip_json("-4", "addr", "show", "dev", ifname, netns=netns)
    return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for entry in found for a in entry.get("addr_info", [])]


def ping(netns: Any, dest: str, *, count: int = 1, wait: int = 2,
         tries: int = 3) -> subprocess.CompletedProcess:
    """busybox ping from inside ``netns`` (a path); a few tries absorb the first ARP exchange."""
    argv = ns_argv(netns, BUSYBOX, "ping", "-c", str(count), "-W", str(wait), dest)
    proc = None
    for _ in range(tries):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=wait * count + 10)
        if proc.returncode == 0:
            break
        time.sleep(0.2)
    assert proc is not None
    return proc


def assert_reaches(netns: Any, dest: str, what: str) -> None:
    proc = ping(netns, dest)
    assert proc.returncode == 0, f"{what}: ping {dest} failed\n{proc.stdout}{proc.stderr}"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
