"""The hostile suites: the repository root on sys.path (bandwidth's IFB names), and `world`: a
host and a container namespace and a private state directory for one case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import ns_exec, unique_ifname, unique_name, unique_subnet_v4

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from .corpus import World  # noqa: E402


@pytest.fixture
def world(netns, state_dir) -> World:
    host, container = netns("pyh-"), netns("pyc-")
    ns_exec(host.path, "ip", "link", "set", "lo", "up")
    return World(host_ns=host.path, container_ns=container.path, state=state_dir / "w",
                 network=unique_name("hostile-", 8), bridge=unique_ifname("phb"),
                 subnet=str(unique_subnet_v4(24)), container_id=unique_name("cid", 12))
