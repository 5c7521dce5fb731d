"""Fixtures for the netlink layer: throw-away network namespaces and iproute2 read-back.

Every test works inside namespaces it creates (`pycni-t-<hex>`), which are deleted in
teardown whatever happens; deleting a namespace deletes every link in it, so nothing is
left on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.net import netns as netns_mod
from cni.net.netlink import Handle

REPO = Path(__file__).resolve().parents[2]

NETNS_DIR = "/var/run/netns"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


class NS:
    """One test namespace: `name`, `path`, and read-back helpers running inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"{NETNS_DIR}/{name}"

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.name, *cmd, check=check)

    def json(self, *cmd: str) -> list[dict]:
        """A JSON-printing tool (`ip -j`, `bridge -j`, `tc -j`) run in the namespace."""
        out = self.run(*cmd).stdout.strip()
        return json.loads(out) if out else []

    def link(self, name: str) -> dict:
        (info,) = self.json("ip", "-j", "-d", "link", "show", "dev", name)
        return info

    def sysctl(self, key: str) -> str:
        return self.run("sysctl", "-n", key).stdout.strip()


def _new_ns() -> NS:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    ns = NS(f"pycni-t-{uuid.uuid4().hex[:8]}")
    run("ip", "netns", "add", ns.name)
    return ns


def _del_ns(ns: NS) -> None:
    run("ip", "netns", "del", ns.name, check=False)


def _fresh_ns() -> Iterator[NS]:
    ns = _new_ns()
    try:
        yield ns
    finally:
        _del_ns(ns)


@pytest.fixture
def ns() -> Iterator[NS]:
    """A fresh network namespace, deleted afterwards."""
    yield from _fresh_ns()


@pytest.fixture
def ns2() -> Iterator[NS]:
    """A second namespace (e.g. the "host" side of a veth)."""
    yield from _fresh_ns()


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


def _probe_vlan_filtering() -> bool:
    ns = _new_ns()
    try:
        proc = ns.run("ip", "link", "add", "name", "b", "type", "bridge", "vlan_filtering", "1", check=False)
        return proc.returncode == 0
    finally:
        _del_ns(ns)


@pytest.fixture(scope="session")
def vlan_filtering_supported() -> bool:
    return _probe_vlan_filtering()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))
