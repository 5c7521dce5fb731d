"""The hostile suites: `world`: a host and a container namespace and a private state directory
for one case. Every case runs on both launch paths (`launch_path`): cold, and warm, through a
`pycni serve` started in the case's host namespace (it serves only callers of its own namespaces)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import ns_exec, unique_ifname, unique_name, unique_subnet_v4
from helpers.warm import WARM_ENV, WarmServer

from .corpus import World


@pytest.fixture
def world(netns, state_dir, bin_dir, launch_path) -> Iterator[World]:
    host, container = netns("pyh-"), netns("pyc-")
    ns_exec(host.path, "ip", "link", "set", "lo", "up")
    server = WarmServer(bin_dir, state_dir / "warm", netns=host.path) if launch_path == "warm" else None
    try:
        yield World(host_ns=host.path, container_ns=container.path, state=state_dir / "w",
                    network=unique_name("hostile-", 8), bridge=unique_ifname("phb"),
                    subnet=str(unique_subnet_v4(24)), container_id=unique_name("cid", 12),
                    env=server.env if server else {WARM_ENV: "off"})
    finally:
        if server:
            server.stop()
    if server:
        assert server.refused() == 0, server.log()
