"""Many ADDs at once, dual-stack with ipMasq: all succeed with distinct addresses, every host end
holds its gateways and host routes; as many DELs at once leave nothing behind."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest
from bridge.conftest import iptables_lines
from helpers import add_netns, addresses, del_netns, ip_json, link_exists, unique_name, unique_subnet_v6
from helpers import unique_subnet_v4 as v4

from .test_differential import host_veth, kind_ipam

pytestmark = pytest.mark.root
N = 24


def test_parallel_adds_and_dels(ours, net):
    subnets = (v4(), unique_subnet_v6(64))
    n = net({"type": "ptp", "ipMasq": True, "ipam": kind_ipam(*subnets)})
    names = [unique_name("pcptpcc-", 8) for _ in range(N)]
    paths = [add_netns(name) for name in names]
    try:
        with ThreadPoolExecutor(N) as pool:
            adds = list(pool.map(lambda p: n("add", p, ours, timeout=300), paths))
        failed = [a.describe() for a in adds if not a.ok]
        assert not failed, "\n\n".join(failed)
        hosts = []
        for p, a in zip(paths, adds, strict=True):
            ips = [ipaddress.ip_interface(ip["address"]) for ip in a.json["ips"]]
            assert [ip.network for ip in ips] == list(subnets)
            assert sorted(addresses("eth0", p)) == sorted(map(str, ips))
            host = host_veth(a.json, p)
            hosts.append(host)
            gws = {f"{ip['gateway']}/{32 if ':' not in ip['gateway'] else 128}" for ip in a.json["ips"]}
            assert set(addresses(host)) == gws
            routes = {r["dst"] for fam in ("-4", "-6") for r in ip_json(fam, "route", "show", "dev", host)}
            assert {str(ip.ip) for ip in ips} <= routes
        assert len({a.json["ips"][0]["address"] for a in adds}) == N
        assert len({a.json["ips"][1]["address"] for a in adds}) == N
        assert sum(1 for line in iptables_lines(n.name) if line.startswith("-A POSTROUTING")) == N
        assert sum(1 for line in iptables_lines(n.name, 6) if line.startswith("-A POSTROUTING")) == N

        with ThreadPoolExecutor(N) as pool:
            dels = list(pool.map(lambda p: n("del", p, ours, timeout=300), paths))
        failed = [d.describe() for d in dels if not d.ok]
        assert not failed, "\n\n".join(failed)
        assert not [h for h in hosts if link_exists(h)]
        assert iptables_lines(n.name) == [] and iptables_lines(n.name, 6) == []
        left = sorted(p.name for p in (n.data_dir / n.name).iterdir())
        assert left == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    finally:
        for name in names:
            del_netns(name)
