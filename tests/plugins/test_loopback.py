"""loopback on the built executable, through libcni's cnitool and by direct calls, read back from kernel."""

from __future__ import annotations

import subprocess

import pytest
from helpers import conflist, ip_json

pytestmark = pytest.mark.root

LIBCNI_VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]  # what Debian's libcni 1.1.2 can drive
ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def _lo_flags(ns) -> list[str]:
    return ip_json("link", "show", "dev", "lo", netns=ns)[0]["flags"]


def _config(version: str, **extra) -> dict:
    return {"cniVersion": version, "name": "lonet", "type": "loopback", **extra}


@pytest.mark.parametrize("version", LIBCNI_VERSIONS)
def test_cnitool_add_check_del(cnitool, bin_dir, netns, netconf, state_dir, version):
    ns = netns()
    netconf(conflist("lonet", [{"type": "loopback"}], cni_version=version))
    assert "UP" not in _lo_flags(ns)
    common = {"netconf_dir": netconf.dir, "cni_path": bin_dir, "cache_dir": state_dir / "cache"}
    added = cnitool("add", "lonet", ns, **common).check()
    assert "UP" in _lo_flags(ns)
    assert added.json["cniVersion"] == version
    assert added.json["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ns.path}]
    assert added.json["ips"][0]["address"] == "127.0.0.1/8"
    if version != "0.3.1":
        cnitool("check", "lonet", ns, **common).check()
    cnitool("del", "lonet", ns, **common).check()
    assert "UP" not in _lo_flags(ns)
    cnitool("del", "lonet", ns, **common).check()  # DEL again: still fine


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_add_prints_every_version(run_plugin, bin_dir, netns, version):
    ns = netns()
    out = run_plugin(bin_dir / "loopback", "ADD", _config(version), netns=ns.path).check()
    assert out.json["cniVersion"] == version
    if version in ("0.1.0", "0.2.0"):
        assert out.json["ip4"] == {"ip": "127.0.0.1/8"}
        assert out.json["ip6"] == {"ip": "::1/128"}
    else:
        ips = out.json["ips"]
        assert [ip["address"] for ip in ips] == ["127.0.0.1/8", "::1/128"]
        assert all(ip["interface"] == 0 for ip in ips)
        assert ("version" in ips[0]) == (version < "1.0.0")


def test_add_passes_prev_result_through(run_plugin, bin_dir, netns):
    ns = netns()
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": ns.path}],
            "ips": [{"interface": 0, "address": "10.9.0.5/24", "gateway": "10.9.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.9.0.53"]}}
    out = run_plugin(bin_dir / "loopback", "ADD", _config("1.0.0", prevResult=prev), netns=ns.path).check()
    assert out.json == prev
    assert "UP" in _lo_flags(ns)


def test_add_refuses_foreign_address_on_lo(run_plugin, bin_dir, netns):
    ns = netns()
    ns.exec("ip", "addr", "add", "192.0.2.7/32", "dev", "lo")
    out = run_plugin(bin_dir / "loopback", "ADD", _config("1.0.0"), netns=ns.path).expect_error(999)
    assert "192.0.2.7/32" in out.msg


def test_check_fails_when_lo_is_down(run_plugin, bin_dir, netns):
    ns = netns()
    run_plugin(bin_dir / "loopback", "ADD", _config("1.1.0"), netns=ns.path).check()
    ns.exec("ip", "link", "set", "lo", "down")
    out = run_plugin(bin_dir / "loopback", "CHECK", _config("1.1.0"), netns=ns.path).expect_error()
    assert "down" in out.msg
    assert out.stdout.count("\n") == 1


def test_del_succeeds_without_namespace(run_plugin, bin_dir, netns):
    ns = netns()
    run_plugin(bin_dir / "loopback", "ADD", _config("1.1.0"), netns=ns.path).check()
    subprocess.run(["ip", "netns", "del", ns.name], check=True)
    for path in ("", ns.path):  # no CNI_NETNS at all, and a namespace that is gone
        run_plugin(bin_dir / "loopback", "DEL", _config("1.1.0"), netns=path).check()


@pytest.mark.parametrize("verb", ["STATUS", "GC"])
def test_status_and_gc_succeed_silently(run_plugin, bin_dir, verb):
    out = run_plugin(bin_dir / "loopback", verb, _config("1.1.0"), container_id=None, ifname=None).check()
    assert out.stdout == ""
