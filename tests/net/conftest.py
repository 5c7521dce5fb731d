"""Fixtures for the netlink layer: throw-away network namespaces and iproute2 read-back.

Every test works inside namespaces it creates (`pycni-t-<hex>`), which are deleted in
teardown whatever happens; deleting a namespace deletes every link in it, so nothing is
left on the host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import NetNS as NS
from helpers import add_netns, del_netns, is_root, ns_exec, unique_name

from cni.net import netns as netns_mod
from cni.net.netlink import Handle

REPO = Path(__file__).resolve().parents[2]



@pytest.fixture
def ns(netns) -> NS:
    """A fresh network namespace, deleted afterwards."""
    return netns("pycni-t-")


@pytest.fixture
def ns2(netns) -> NS:
    """A second namespace (e.g. the "host" side of a veth)."""
    return netns("pycni-t-")


@pytest.fixture
def h(ns: NS) -> Iterator[Handle]:
    """A netlink handle bound to `ns`."""
    with netns_mod.open_handle(ns.path) as handle:
        yield handle


@pytest.fixture
def h2(ns2: NS) -> Iterator[Handle]:
    with netns_mod.open_handle(ns2.path) as handle:
        yield handle


@pytest.fixture
def ns2_fd(ns2: NS) -> Iterator[int]:
    fd = netns_mod.netns_fd(ns2.path)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture(scope="session")
def vlan_filtering_supported() -> bool:
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    name = unique_name("pycni-t-", 8)
    add_netns(name)
    try:
        proc = ns_exec(name, "ip", "link", "add", "name", "b", "type", "bridge", "vlan_filtering", "1",
                       check=False)
        return proc.returncode == 0
    finally:
        del_netns(name)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))
