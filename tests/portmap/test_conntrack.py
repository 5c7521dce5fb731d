"""UDP conntrack around hostPorts, with real flows on the emulated node.

A UDP flow that reached the node before the hostPort existed keeps its conntrack entry (and with
it the old decision: no DNAT) for as long as packets keep coming; ADD deletes the entries of the
mapped UDP ports, so the same flow reaches the pod at once. DEL deletes them too (the reference's
DEL does not), so a flow never stays pinned to a pod that is gone.
"""

from __future__ import annotations

import sys

import pytest
from helpers import ns_exec

from .conftest import ECHO

pytestmark = pytest.mark.root

HOST_PORT, POD_PORT, SPORT = 18053, 5353, 40123


def _flow(node, host: str) -> str:
    r = ns_exec(node.client, sys.executable, str(ECHO), "flow", host, str(HOST_PORT), str(SPORT), check=False)
    return r.stdout.strip()


def _entries(node, family: int) -> list[str]:
    """The node's conntrack entries of UDP flows to the host port (from /proc, not from our code)."""
    text = node.sh("cat", "/proc/net/nf_conntrack").stdout
    fam = "ipv4" if family == 4 else "ipv6"
    return [line for line in text.splitlines()
            if line.startswith(fam) and " udp " in line and f"dport={HOST_PORT} " in line]


@pytest.mark.parametrize("family", (4, 6))
def test_add_and_del_flush_stale_udp_entries(family, node, pods, echo):
    node_ip = node.ip4 if family == 4 else node.ip6
    client_ip = node.client4 if family == 4 else node.client6
    # a node tracks connections (kube-proxy's rules make it): a fresh namespace does only once a
    # rule needs conntrack
    for tool in ("iptables", "ip6tables"):
        node.sh(tool, "-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT")
    # the flow starts while nothing listens: the node answers port unreachable, the entry stays
    assert _flow(node, node_ip).startswith("error"), "nothing should answer yet"
    assert _entries(node, family), "the early flow made a conntrack entry"
    net = pods.network()
    pod = pods([{"HostPort": HOST_PORT, "ContainerPort": POD_PORT, "Protocol": "udp", "HostIP": ""}], net=net)
    echo(pod, POD_PORT)
    # the same 5-tuple now reaches the pod: ADD deleted the stale entry
    assert _flow(node, node_ip) == client_ip
    assert any(f"sport={POD_PORT} " in line for line in _entries(node, family)), "a DNATed entry"
    pod.run("del").check()
    pod.deleted = True
    assert _entries(node, family) == [], "DEL deletes the entries of the removed mapping"


def test_del_without_runtime_config_flushes_from_the_rules(node, pods, echo):
    """DEL learns the UDP ports from the rules it removes, not from runtimeConfig."""
    pod = pods([{"hostPort": HOST_PORT, "containerPort": POD_PORT, "protocol": "udp"}])
    echo(pod, POD_PORT)
    assert _flow(node, node.ip4) == node.client4
    assert _entries(node, 4)
    pod.run("del", mappings=None).check()
    pod.deleted = True
    assert _entries(node, 4) == []


def test_the_references_del_leaves_the_entries(node, pods, echo):
    """What ours adds: the reference's DEL removes the rules but flushes nothing (its issue #1190),
    so the same check that holds for ours finds the stale entry after it."""
    pod = pods([{"hostPort": HOST_PORT, "containerPort": POD_PORT, "protocol": "udp"}])
    echo(pod, POD_PORT)
    assert _flow(node, node.ip4) == node.client4
    pod.run("del", pods.dirs["ref"]).check()
    pod.deleted = True
    assert _entries(node, 4), "the reference's DEL keeps the UDP entry"
