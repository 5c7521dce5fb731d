"""`ctr run --cni`: containerd's own client runs our chain from /etc/cni/net.d and /opt/cni/bin.

ctr executes the first config list it finds there through go-cni (ADD when the task is created,
DEL when a foreground `ctr run` sees its task exit), with the container's /proc/PID/ns/net. Both
runtimes' ctr: kind's 2.3.4 and Debian's 1.6.20.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import ip_json, unique_name
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
from nodesetup import RUNTIMES, runtime_for
from ociimage import IMAGE_NAME

POD_CIDR = ipaddress.IPv4Network("10.244.1.0/24")
GATEWAY = str(POD_CIDR.network_address + 1)


@pytest.fixture(scope="module", params=RUNTIMES, ids=lambda v: f"containerd-{v}")
def node(request: pytest.FixtureRequest, node_factory) -> Iterator[KindNode]:
    """A node on kind's containerd 2.3.4 (list at 1.1.0), then one on Debian's 1.6.20 (at 1.0.0)."""
    node = node_factory(str(POD_CIDR), namespaces=("default",), runtime=runtime_for(request.param))
    yield node
    node.stop()


@pytest.fixture(scope="module")
def network(node: KindNode) -> str:
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    return network_name(conf)


@dataclass
class Container:
    id: str
    proc: subprocess.Popen
    pid: int

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"


def _stop(node: KindNode, c: Container) -> None:
    """Kill the task; the foreground `ctr run --rm` then runs CNI DEL and removes the container."""
    node.ctr("tasks", "kill", "-s", "SIGKILL", c.id, check=False)
    try:
        c.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait(timeout=10)


@pytest.fixture
def containers(node: KindNode) -> Iterator:
    """Factory starting `ctr run --rm --cni IMAGE ID sleep` in the foreground; all stopped afterwards."""
    started: list[Container] = []

    def run() -> Container:
        cid = unique_name("pycni-ctr-", 8)
        proc = node.ctr_popen("run", "--rm", "--cni", IMAGE_NAME, cid, "sleep", "600")
        try:
            pid = wait_for(lambda: proc.poll() is None and node.task_pid(cid), 30, f"task {cid}")
            c = Container(cid, proc, pid)
            started.append(c)
            # libcni caches the result once the whole chain's ADD has returned.
            wait_for(lambda: any(cid in n for n in cached_results(node)), 30, f"CNI ADD of {cid}")
        except BaseException:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"ctr run {cid} exited {proc.returncode}\n{out}\n{err}\n"
                                     f"{node.log_tail()}") from None
            raise
        return c

    try:
        yield run
    finally:
        for c in started:
            if c.proc.poll() is None:
                _stop(node, c)


def test_containers_get_addresses_and_reach_each_other(node: KindNode, network: str, containers) -> None:
    a, b = containers(), containers()
    addrs = {}
    for c in (a, b):
        (addr,) = ipv4_of(c.netns)
        assert addr.network == POD_CIDR, f"{c.id} got {addr}, outside the node's pod CIDR {POD_CIDR}"
        assert str(addr.ip) != GATEWAY
        routes = ip_json("-4", "route", "show", "default", netns=c.netns)
        assert [r.get("gateway") for r in routes] == [GATEWAY], f"{c.id} default route: {routes}"
        addrs[c.id] = str(addr.ip)
    assert addrs[a.id] != addrs[b.id]
    assert sorted(addrs.values()) == reservations(node, network)
    # From each container's network namespace (busybox entered into it: `ctr tasks exec` cannot
    # start a process when the node itself runs in a chroot), then from the node.
    for src, dst in ((a, b), (b, a)):
        for target in (addrs[dst.id], GATEWAY):
            assert_reaches(src.netns, target, f"{src.id} -> {target}")
    for c in (a, b):
        assert_reaches(node.netns_path, addrs[c.id], f"node {node.name} -> {c.id}")


def test_removal_leaves_nothing(node: KindNode, network: str, containers) -> None:
    c = containers()
    (addr,) = ipv4_of(c.netns)
    veth = peer_veth(node, c.netns)["ifname"]
    assert str(addr.ip) in reservations(node, network)

    _stop(node, c)
    assert c.proc.returncode is not None
    time.sleep(0.2)
    assert str(addr.ip) not in reservations(node, network), "the address is still reserved"
    assert veth not in [link["ifname"] for link in links_of_kind(node.netns_path, "veth")]
    assert not [n for n in cached_results(node) if c.id in n], "libcni's cached result was not removed"
    assert shaping_qdiscs(node.netns_path) == []
    listed = node.ctr("containers", "ls", "-q").stdout.split()
    assert c.id not in listed
