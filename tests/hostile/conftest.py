"""The hostile suites: `world`: a
host and a container namespace and a private state directory for one case."""

from __future__ import annotations

import pytest
from helpers import ns_exec, unique_ifname, unique_name, unique_subnet_v4

from .corpus import World


@pytest.fixture
def world(netns, state_dir) -> World:
    host, container = netns("pyh-"), netns("pyc-")
    ns_exec(host.path, "ip", "link", "set", "lo", "up")
    return World(host_ns=host.path, container_ns=container.path, state=state_dir / "w",
                 network=unique_name("hostile-", 8), bridge=unique_ifname("phb"),
                 subnet=str(unique_subnet_v4(24)), container_id=unique_name("cid", 12))
