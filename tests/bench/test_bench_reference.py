"""Self-tests of the bench: the reference Go plugins v1.9.1 driven through our cnitool (libcni 1.1.2)
and, for STATUS and GC, through cnidrive (libcni 1.3.0, ../shared/realnode).

They prove the drivers, the fixtures and the kernel read-back helpers work before our own plugins
exist, and they are the templates for differential tests (swap ``ref_bin_dir`` for ``bin_dir``).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest
from helpers import (
    Cnitool,
    addresses,
    assert_host_unchanged,
    bridge_json,
    conflist,
    delete_link,
    host_snapshot,
    ip_json,
    link,
    link_exists,
    netns_exists,
    realnode,
    tc_json,
    unique_subnet_v4,
)

pytestmark = pytest.mark.root

VERSIONS = ["0.4.0", "1.0.0"]


def _flags(ifname: str, netns) -> list[str]:
    return ip_json("link", "show", "dev", ifname, netns=netns)[0]["flags"]


def test_cnitool_version_reference_loopback(cnitool, ref_bin_dir):
    out = cnitool.version("loopback", cni_path=ref_bin_dir).check()
    assert "1.0.0" in out.json["supportedVersions"]
    assert "0.4.0" in out.json["supportedVersions"]


def test_cnitool_version_missing_plugin(cnitool, ref_bin_dir):
    out = cnitool.version("no-such-plugin", cni_path=ref_bin_dir).expect_error(999)
    assert "no-such-plugin" in out.msg


@pytest.mark.parametrize("version", VERSIONS)
def test_reference_loopback_add_check_del(version, cnitool, ref_bin_dir, netns, netconf, state_dir):
    ns = netns()
    netconf(conflist("pcblo", [{"type": "loopback"}], version))
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache")
    assert "UP" not in _flags("lo", ns)

    add = cnitool("add", "pcblo", ns.path, **call).check()
    assert add.json["cniVersion"] == version
    assert "UP" in _flags("lo", ns)
    assert "127.0.0.1/8" in addresses("lo", ns, scope="host")
    assert cnitool.cache_file("pcblo", ns.path, cache_dir=state_dir / "cache").exists()

    check = cnitool("check", "pcblo", ns.path, **call).check()
    assert check.stdout == ""

    cnitool("del", "pcblo", ns.path, **call).check()
    assert "UP" not in _flags("lo", ns)
    assert not cnitool.cache_file("pcblo", ns.path, cache_dir=state_dir / "cache").exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_reference_bridge_host_local(version, cnitool, ref_bin_dir, netns, netconf, state_dir,
                                     bridge_name):
    before = host_snapshot()
    ns = netns()
    subnet = unique_subnet_v4()
    gateway = str(subnet[1])
    data_dir = state_dir / "ipam"
    net = conflist("pcbnet", [{
        "type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": False,
        "ipam": {"type": "host-local", "subnet": str(subnet), "gateway": gateway,
                 "dataDir": str(data_dir), "routes": [{"dst": "0.0.0.0/0"}]},
    }], version)
    netconf(net)
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache")

    add = cnitool("add", "pcbnet", ns.path, **call).check()
    result = add.json
    assert result["cniVersion"] == version
    (ip,) = result["ips"]
    assert ("version" in ip) == (version == "0.4.0")
    addr = ipaddress.ip_interface(ip["address"])
    assert addr.network == subnet and ip["gateway"] == gateway
    names = [i["name"] for i in result["interfaces"]]
    assert bridge_name in names and "eth0" in names

    # container side
    assert addresses("eth0", ns) == [str(addr)]
    routes = ip_json("route", "show", "default", netns=ns)
    assert routes and routes[0]["gateway"] == gateway
    # host side
    br = link(bridge_name)
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert f"{gateway}/{subnet.prefixlen}" in addresses(bridge_name)
    ports = [p for p in bridge_json("link", "show") if p.get("master") == bridge_name]
    assert len(ports) == 1
    assert tc_json("qdisc", "show", "dev", "eth0", netns=ns) is not None
    # host-local's store
    reserved = (data_dir / "pcbnet" / str(addr.ip)).read_text()
    cid = cnitool.container_id(ns.path)
    assert reserved.split() == [cid, "eth0"]

    cnitool("check", "pcbnet", ns.path, **call).check()

    cnitool("del", "pcbnet", ns.path, **call).check()
    assert not link_exists("eth0", ns)
    assert not (data_dir / "pcbnet" / str(addr.ip)).exists()
    assert not link_exists(ports[0]["ifname"])
    cnitool("del", "pcbnet", ns.path, **call).check()  # DEL is idempotent

    # the bridge is the only trace left on the host; without it the host is as before
    delete_link(bridge_name)
    assert_host_unchanged(before, host_snapshot(),
                          mentioning=[bridge_name, subnet.network_address, "pcbnet"])


def test_reference_check_reports_missing_address(cnitool, ref_bin_dir, netns, netconf, state_dir,
                                                 bridge_name):
    ns = netns()
    subnet = unique_subnet_v4()
    netconf(conflist("pcbchk", [{
        "type": "bridge", "bridge": bridge_name, "isGateway": True,
        "ipam": {"type": "host-local", "subnet": str(subnet), "dataDir": str(state_dir / "ipam")},
    }], "1.0.0"))
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache")
    add = cnitool("add", "pcbchk", ns.path, **call).check()
    address = add.json["ips"][0]["address"]
    ns.exec("ip", "addr", "flush", "dev", "eth0")
    check = cnitool("check", "pcbchk", ns.path, **call).expect_error()
    assert address in check.msg
    cnitool("del", "pcbchk", ns.path, **call).check()


def test_reference_del_without_netns_releases_address(cnitool, ref_bin_dir, netns, netconf, state_dir,
                                                      bridge_name):
    """DEL with an empty CNI_NETNS (the namespace is gone) still releases the IPAM reservation."""
    ns = netns()
    subnet = unique_subnet_v4()
    netconf(conflist("pcbgone", [{
        "type": "bridge", "bridge": bridge_name,
        "ipam": {"type": "host-local", "subnet": str(subnet), "dataDir": str(state_dir / "ipam")},
    }], "1.0.0"))
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache",
                container_id=cnitool.container_id(ns.path))
    add = cnitool("add", "pcbgone", ns.path, **call).check()
    ip = add.json["ips"][0]["address"].split("/")[0]
    assert (state_dir / "ipam" / "pcbgone" / ip).exists()
    subprocess.run(["ip", "netns", "del", ns.name], check=True)
    for _ in range(2):
        cnitool("del", "pcbgone", "", **call).check()
        assert not (state_dir / "ipam" / "pcbgone" / ip).exists()
    left = sorted(p.name for p in (state_dir / "ipam" / "pcbgone").iterdir())
    assert left == ["last_reserved_ip.0", "lock"]


def test_reference_check_needs_040(cnitool, ref_bin_dir, netns, netconf, state_dir):
    """libcni refuses CHECK below 0.4.0 itself (code 999 from the driver); ADD/DEL work."""
    ns = netns()
    netconf(conflist("pcblo", [{"type": "loopback"}], "0.3.1"))
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache")
    add = cnitool("add", "pcblo", ns.path, **call).check()
    assert add.json["cniVersion"] == "0.3.1"
    out = cnitool("check", "pcblo", ns.path, **call).expect_error(999)
    assert "does not support the CHECK command" in out.msg
    cnitool("del", "pcblo", ns.path, **call).check()


def test_cnitool_reports_plugin_error_code(cnitool, ref_bin_dir, netns, netconf, state_dir):
    ns = netns()
    netconf(conflist("pcblo", [{"type": "loopback"}], "1.0.0"))
    out = cnitool("add", "pcblo", ns.path, netconf_dir=netconf.dir, cni_path=ref_bin_dir,
                  cache_dir=state_dir / "cache", ifname="bad/name").expect_error(4)
    assert "plugin type=\"loopback\" failed (add)" in out.json["error"]


def test_cnitool_passes_args_and_container_id(cnitool, ref_bin_dir, netns, netconf, state_dir,
                                              bridge_name):
    ns = netns()
    subnet = unique_subnet_v4()
    wanted = str(subnet[7])
    netconf(conflist("pcbarg", [{
        "type": "bridge", "bridge": bridge_name,
        "ipam": {"type": "host-local", "subnet": str(subnet), "dataDir": str(state_dir / "ipam")},
    }], "1.0.0"))
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache",
                container_id="pycni-bench-cid", ifname="net1")
    add = cnitool("add", "pcbarg", ns.path, cni_args={"IgnoreUnknown": "1", "IP": wanted}, **call).check()
    assert add.json["ips"][0]["address"] == f"{wanted}/24"
    assert addresses("net1", ns) == [f"{wanted}/24"]
    reserved = (state_dir / "ipam" / "pcbarg" / wanted).read_text().split()
    assert reserved == ["pycni-bench-cid", "net1"]
    cached = json.loads(cnitool.cache_file("pcbarg", ns.path, ifname="net1", container_id="pycni-bench-cid",
                                           cache_dir=state_dir / "cache").read_text())
    assert cached["containerId"] == "pycni-bench-cid" and cached["ifName"] == "net1"
    cnitool("del", "pcbarg", ns.path, **call).check()
    assert not (state_dir / "ipam" / "pcbarg" / wanted).exists()


def test_run_plugin_version_and_bad_env(run_plugin, ref_bin_dir, netns):
    ver = run_plugin("loopback", "VERSION", cni_path=ref_bin_dir, netns=None, ifname=None,
                     container_id=None).check()
    assert "1.0.0" in ver.json["supportedVersions"]

    conf = {"cniVersion": "1.0.0", "name": "pcblo", "type": "loopback"}
    missing = run_plugin("loopback", "ADD", conf, cni_path=ref_bin_dir, netns="").expect_error(4)
    assert "CNI_NETNS" in missing.msg

    bad_version = {**conf, "cniVersion": "9.9.9"}
    run_plugin("loopback", "ADD", bad_version, cni_path=ref_bin_dir, netns=netns().path).expect_error(1)

    ns = netns()
    add = run_plugin(ref_bin_dir / "loopback", "ADD", conf, netns=ns).check()
    assert add.json["interfaces"][0]["name"] == "lo"
    run_plugin(ref_bin_dir / "loopback", "DEL", conf, netns=ns).check()


def test_netns_fixture_cleans_up(netns):
    first, second = netns(), netns()
    assert first.name != second.name
    assert netns_exists(first.name) and netns_exists(second.name)
    assert first.exec("ip", "-j", "link").returncode == 0
    # a namespace removed by the test itself is fine for the teardown
    subprocess.run(["ip", "netns", "del", first.name], check=True)
    assert not netns_exists(first.name)


def test_cnidrive_status_and_gc_reference(ref_bin_dir, netns, netconf, state_dir, bridge_name):
    """libcni 1.3.0 at cniVersion 1.1.0: STATUS passes; GC keeps a valid attachment, and DELs a
    cached one that is not listed (its reservation, veth and cached result go)."""
    drive = Cnitool(realnode.require(realnode.CNIDRIVE), state_dir / "cache")
    ns = netns()
    subnet = unique_subnet_v4()
    netconf(conflist("pcbgc", [{"type": "loopback"}, {
        "type": "bridge", "bridge": bridge_name,
        "ipam": {"type": "host-local", "subnet": str(subnet), "dataDir": str(state_dir / "ipam")},
    }], "1.1.0"))
    cid = "pycni-bench-gc"
    call = dict(netconf_dir=netconf.dir, cni_path=ref_bin_dir, cache_dir=state_dir / "cache")
    add = drive("add", "pcbgc", ns.path, container_id=cid, **call).check()
    assert add.json["cniVersion"] == "1.1.0"
    ip = add.json["ips"][0]["address"].split("/")[0]
    cached = drive.cache_file("pcbgc", ns.path, container_id=cid, cache_dir=state_dir / "cache")
    drive("status", "pcbgc", "", **call).check()
    drive("gc", "pcbgc", f"{cid}/eth0", **call).check()
    assert (state_dir / "ipam" / "pcbgc" / ip).exists() and link_exists("eth0", ns) and cached.exists()
    drive("gc", "pcbgc", "", **call).check()
    assert not (state_dir / "ipam" / "pcbgc" / ip).exists()
    assert not link_exists("eth0", ns) and not cached.exists()
