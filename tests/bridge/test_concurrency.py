"""Many first ADDs at once on a node without the bridge: all succeed, with distinct addresses; as many
DELs at once leave nothing behind."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import add_netns, addresses, bridge_json, del_netns, link, unique_name, unique_subnet_v4

from .conftest import iptables_lines

pytestmark = pytest.mark.root
N = 32


def test_parallel_first_adds_and_dels(ours, net, bridge_name):
    subnet = unique_subnet_v4()
    n = net({"type": "bridge", "bridge": bridge_name, "isDefaultGateway": True, "ipMasq": True,
             "hairpinMode": True, "ipam": {"type": "host-local", "subnet": str(subnet)}})
    names = [unique_name("pcbcc-", 8) for _ in range(N)]
    paths = [add_netns(name) for name in names]
    try:
        assert link(bridge_name) is None  # a fresh node: the first ADDs race to create it
        with ThreadPoolExecutor(N) as pool:
            adds = list(pool.map(lambda p: n("add", p, ours, timeout=300), paths))
        failed = [a.describe() for a in adds if not a.ok]
        assert not failed, "\n\n".join(failed)
        ips = [ipaddress.ip_interface(a.json["ips"][0]["address"]) for a in adds]
        assert len(set(ips)) == N and all(ip.network == subnet for ip in ips)
        for p, ip in zip(paths, ips, strict=True):
            assert addresses("eth0", p) == [str(ip)]
        assert addresses(bridge_name) == [f"{subnet[1]}/{subnet.prefixlen}"]
        ports = [p for p in bridge_json("link", "show") if p.get("master") == bridge_name]
        assert len(ports) == N
        assert sum(1 for line in iptables_lines(n.name) if line.startswith("-A POSTROUTING")) == N

        with ThreadPoolExecutor(N) as pool:
            dels = list(pool.map(lambda p: n("del", p, ours, timeout=300), paths))
        failed = [d.describe() for d in dels if not d.ok]
        assert not failed, "\n\n".join(failed)
        assert not [p for p in bridge_json("link", "show") if p.get("master") == bridge_name]
        assert iptables_lines(n.name) == []
        left = sorted(p.name for p in (n.data_dir / n.name).iterdir())
        assert left == ["last_reserved_ip.0", "lock"]
    finally:
        for name in names:
            del_netns(name)
