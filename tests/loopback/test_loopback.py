"""loopback on the built executable, through libcni's cnitool and by direct calls, read back from kernel;
and side by side with the reference v1.9.1 (`ref_bin_dir`), each in a namespace of its own."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import conflist, ip_json, ns_argv

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
    assert out.msg == 'loopback interface found with non-loopback address "192.0.2.7"'
    assert "192.0.2.7/32" in out.json["details"]


def test_check_fails_when_lo_is_down(run_plugin, bin_dir, netns):
    ns = netns()
    run_plugin(bin_dir / "loopback", "ADD", _config("1.1.0"), netns=ns.path).check()
    ns.exec("ip", "link", "set", "lo", "down")
    out = run_plugin(bin_dir / "loopback", "CHECK", _config("1.1.0"), netns=ns.path).expect_error(999)
    assert out.msg == "loopback interface is down"
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


# ---- side by side with the reference v1.9.1 ---------------------------------------------------------
def _lo_state(ns) -> tuple:
    """What loopback changes, read back from the kernel: lo's flags and operational state."""
    link = ip_json("link", "show", "dev", "lo", netns=ns)[0]
    return sorted(link["flags"]), link.get("operstate")


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_same_results_and_kernel_state_as_the_reference(run_plugin, bin_dir, ref_bin_dir, netns, version):
    seen = {}
    for label, plugins in (("ours", bin_dir), ("ref", ref_bin_dir)):
        ns = netns()
        steps = []
        add = run_plugin(plugins / "loopback", "ADD", _config(version), netns=ns.path).check()
        steps.append(("ADD", {**add.json, "interfaces": [
            {**i, "sandbox": i["sandbox"].replace(ns.path, "NS")} for i in add.json["interfaces"]]},
            _lo_state(ns)))
        steps.append(("CHECK", run_plugin(plugins / "loopback", "CHECK", _config(version), netns=ns.path)
                      .check().stdout, _lo_state(ns)))
        for _ in range(2):   # DEL is idempotent in both
            steps.append(("DEL", run_plugin(plugins / "loopback", "DEL", _config(version), netns=ns.path)
                          .check().stdout, _lo_state(ns)))
        seen[label] = steps
    assert seen["ours"] == seen["ref"]
    assert "UP" in seen["ours"][0][2][0] and "UP" not in seen["ours"][-1][2][0]


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0"])
def test_older_versions_the_same_addresses_in_the_versions_own_format(run_plugin, bin_dir, ref_bin_dir,
                                                                       netns, version):
    """docs/plugins/loopback.md lists it: before 1.0.0 ours is in that version's format (ip4/ip6 up to 0.2.0,
    ips[].version for 0.3.x/0.4.0); v1.9.1 prints the 1.0.0 shape under the older label."""
    ns_ours, ns_ref = netns(), netns()
    mine = run_plugin(bin_dir / "loopback", "ADD", _config(version), netns=ns_ours.path).check().json
    theirs = run_plugin(ref_bin_dir / "loopback", "ADD", _config(version), netns=ns_ref.path).check().json
    assert mine["cniVersion"] == theirs["cniVersion"] == version
    assert [ip["address"] for ip in theirs["ips"]] == ["127.0.0.1/8", "::1/128"]
    assert "interfaces" in theirs and not any("version" in ip for ip in theirs["ips"])
    if version in ("0.1.0", "0.2.0"):
        assert [mine["ip4"]["ip"], mine["ip6"]["ip"]] == ["127.0.0.1/8", "::1/128"]
    else:
        assert [ip["address"] for ip in mine["ips"]] == ["127.0.0.1/8", "::1/128"]
        assert [ip["version"] for ip in mine["ips"]] == ["4", "6"]
    assert _lo_state(ns_ours) == _lo_state(ns_ref)


def _both(run_plugin, bin_dir, ref_bin_dir, netns, prepare, command, config, **kw) -> list[tuple]:
    """(rc, code, msg, lo state) of ours and of the reference, each in a fresh namespace made by prepare."""
    out = []
    for plugins in (bin_dir, ref_bin_dir):
        ns = netns()
        prepare(ns)
        o = run_plugin(plugins / "loopback", command, config, netns=ns.path, **kw)
        out.append((o.rc, o.code, o.msg, _lo_state(ns)))
    return out


def test_same_errors_as_the_reference(run_plugin, bin_dir, ref_bin_dir, netns):
    def foreign(ns):
        ns.exec("ip", "addr", "add", "192.0.2.7/32", "dev", "lo")
        ns.exec("ip", "addr", "add", "2001:db8::7/128", "dev", "lo")

    def down_after_add(ns):
        run_plugin(ref_bin_dir / "loopback", "ADD", _config("1.1.0"), netns=ns.path).check()
        ns.exec("ip", "link", "set", "lo", "down")

    def v6_loopback_wider_prefix(ns):   # Go asks IsLoopback of the address alone: accepted by both
        ns.exec("ip", "link", "set", "lo", "up")
        ns.exec("ip", "addr", "del", "::1/128", "dev", "lo")
        ns.exec("ip", "addr", "add", "::1/64", "dev", "lo")

    mine, theirs = _both(run_plugin, bin_dir, ref_bin_dir, netns, v6_loopback_wider_prefix, "ADD",
                         _config("1.1.0"))
    assert mine[0] == theirs[0] == 0 and mine[3] == theirs[3]

    cases = [(foreign, "ADD", _config("1.1.0")), (down_after_add, "CHECK", _config("1.1.0")),
             (lambda ns: None, "ADD", _config("1.2.0")), (lambda ns: None, "CHECK", _config("0.3.1")),
             (lambda ns: None, "ADD", {"cniVersion": "1.1.0", "type": "loopback"})]
    for prepare, command, config in cases:
        mine, theirs = _both(run_plugin, bin_dir, ref_bin_dir, netns, prepare, command, config)
        assert mine[0] != 0 and mine[:2] == theirs[:2], (command, config, mine, theirs)
        assert mine[3] == theirs[3], (command, config)       # lo left in the same state
    # The messages are the reference's where the plugin itself refuses.
    for prepare, command in ((foreign, "ADD"), (down_after_add, "CHECK")):
        mine, theirs = _both(run_plugin, bin_dir, ref_bin_dir, netns, prepare, command, _config("1.1.0"))
        assert mine[2] == theirs[2]


def test_prev_result_and_gone_namespace_like_the_reference(run_plugin, bin_dir, ref_bin_dir, netns):
    prev = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}],
            "ips": [{"interface": 0, "address": "10.9.0.5/24", "gateway": "10.9.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}]}
    config = _config("1.1.0", prevResult=prev)
    outs = [run_plugin(p / "loopback", "ADD", config, netns=netns().path).check().json
            for p in (bin_dir, ref_bin_dir)]
    assert outs[0] == outs[1] == prev
    for plugins in (bin_dir, ref_bin_dir):
        ns = netns()
        subprocess.run(["ip", "netns", "del", ns.name], check=True)
        for path in ("", ns.path):
            run_plugin(plugins / "loopback", "DEL", _config("1.1.0"), netns=path).check()


@pytest.mark.parametrize(("verb", "version", "code"), [("STATUS", "1.1.0", None), ("GC", "1.1.0", None),
                                                       ("STATUS", "1.0.0", 1), ("GC", "1.0.0", 1)])
def test_status_and_gc_like_the_reference(run_plugin, bin_dir, ref_bin_dir, verb, version, code):
    for plugins in (bin_dir, ref_bin_dir):
        out = run_plugin(plugins / "loopback", verb, _config(version), container_id=None, ifname=None)
        if code is None:
            assert out.check().stdout == ""
        else:
            assert out.expect_error(code).code == code


@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_own_namespace_is_code_8_before_anything_is_done(bin_dir, ref_bin_dir, netns, command):
    """Both run inside a namespace of the test's own that CNI_NETNS names too. Both say 8; v1.9.1's
    skel says it after the call ran (lo set up by ADD, down by DEL: the host's lo, on a real node),
    ours before anything is done."""
    state = {}
    for label, plugins in (("ours", bin_dir), ("ref", ref_bin_dir)):
        ns = netns()
        if command == "DEL":
            ns.exec("ip", "link", "set", "lo", "up")
        before = _lo_state(ns)
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "own", "CNI_NETNS": "/proc/self/ns/net",
               "CNI_IFNAME": "lo", "CNI_PATH": str(plugins), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        out = subprocess.run(ns_argv(ns, str(plugins / "loopback")),
                             input=json.dumps(_config("1.1.0")).encode(), env=env, capture_output=True,
                             timeout=30)
        last = out.stdout.decode().strip().rsplit("{", 1)[-1]
        assert out.returncode == 1 and '"code": 8' in "{" + last, out.stdout
        state[label] = (before, _lo_state(ns))
    assert state["ours"][1] == state["ours"][0]
    assert state["ref"][1] != state["ref"][0]
