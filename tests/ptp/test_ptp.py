"""ptp run directly (no libcni): spec 1.1.0 next to v1.9.1, STATUS and GC, DEL without the
namespace, undo of a failed ADD, hostile configs, CHECK that finds the system changed, traffic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bridge.conftest import clean_firewall, iptables_lines
from helpers import addresses, link_exists, ns_argv, unique_name, unique_subnet_v6
from helpers import unique_subnet_v4 as v4

from .test_differential import _ipam_files, _shape, host_veth, kind_ipam, state

pytestmark = pytest.mark.root


@pytest.fixture
def conf(state_dir: Path):
    """A ptp config maker with a unique network name; its masquerade rules are removed afterwards."""
    made: list[str] = []

    def make(version: str = "1.1.0", data_dir: str = "ipam", **keys) -> dict:
        name = unique_name("pcptp", 8)
        made.append(name)
        ipam = keys.pop("ipam", None) or kind_ipam(v4())
        if ipam.get("type") == "host-local":
            ipam["dataDir"] = str(state_dir / data_dir)
        return {"cniVersion": version, "name": name, "type": "ptp", **keys, "ipam": ipam}

    yield make
    for name in made:
        clean_firewall(name, ["pcptp-direct"])


def _run(run_plugin, bin_dir: Path, command: str, config: dict, ns, **kw):
    return run_plugin(bin_dir / "ptp", command, config, netns=ns, container_id="pcptp-direct", **kw)


def test_spec_1_1_0_same_as_reference(ours, ref, conf, netns, run_plugin, state_dir):
    """At 1.1.0 (libcni 1.3 / containerd 2.x): same result and state, STATUS answers, DEL cleans up."""
    subnets = (v4(), unique_subnet_v6(64))
    runs = {}
    for impl, d in (("ours", ours), ("ref", ref)):
        c = conf(ipMasq=True, mtu=1450, data_dir=f"ipam-{impl}", ipam=kind_ipam(*subnets))
        c["name"] = "pcptp-spec110"
        ns = netns()
        assert _run(run_plugin, d, "STATUS", c, "").rc == 0
        add = _run(run_plugin, d, "ADD", c, ns).check()
        runs[impl] = (_shape(add.json), state(add.json, ns, c["name"], state_dir / f"ipam-{impl}"))
        assert _run(run_plugin, ours, "CHECK", {**c, "prevResult": add.json}, ns).rc == 0
        host = host_veth(add.json, ns)
        _run(run_plugin, d, "DEL", c, ns).check()
        assert not link_exists(host) and iptables_lines(c["name"]) == []
    assert runs["ours"] == runs["ref"]
    assert runs["ours"][1]["container"]["mtu"] == 1450 and runs["ours"][1]["host_end"]["mtu"] == 1450


def test_gc_removes_what_is_not_valid(ours, conf, netns, run_plugin, state_dir):
    c = conf(ipMasq=True)
    ns = netns()
    add = _run(run_plugin, ours, "ADD", c, ns).check()
    address = add.json["ips"][0]["address"].split("/")[0]
    assert iptables_lines(c["name"]) and address in _ipam_files(state_dir / "ipam", c["name"])
    keep = {**c, "cni.dev/valid-attachments": [{"containerID": "pcptp-direct", "ifname": "eth0"}]}
    _run(run_plugin, ours, "GC", keep, "").check()
    assert iptables_lines(c["name"]) and address in _ipam_files(state_dir / "ipam", c["name"])
    _run(run_plugin, ours, "GC", {**c, "cni.dev/valid-attachments": []}, "").check()
    assert iptables_lines(c["name"]) == []
    assert address not in _ipam_files(state_dir / "ipam", c["name"])


def test_del_without_the_namespace(ours, conf, netns, run_plugin, state_dir):
    """The namespace gone (and the veth pair with it): DEL without CNI_NETNS, or naming the gone
    path, releases the address and removes the masquerade rules (the reference leaves those)."""
    for gone_path in (False, True):
        c = conf(ipMasq=True)
        ns = netns()
        add = _run(run_plugin, ours, "ADD", c, ns).check()
        host = host_veth(add.json, ns)
        path = ns.path
        subprocess.run(["ip", "netns", "del", ns.name], check=True)
        for _ in range(100):  # the kernel dismantles a namespace asynchronously
            if not link_exists(host):
                break
            time.sleep(0.05)
        assert not link_exists(host)
        out = _run(run_plugin, ours, "DEL", c, path if gone_path else "")
        assert out.rc == 0, out.stdout
        assert _ipam_files(state_dir / "ipam", c["name"]).keys() <= {"last_reserved_ip.0"}
        assert iptables_lines(c["name"]) == []
        assert _run(run_plugin, ours, "DEL", c, "").rc == 0  # and again


def test_failed_add_leaves_nothing(ours, ref, conf, netns, run_plugin, state_dir):
    """A route IPAM returns through an unreachable gateway fails the ADD after the veth pair, the
    addresses and the reservation were made: all of it is undone (the reference keeps the veth)."""
    subnet = v4()
    ipam = {"type": "host-local", "ranges": [[{"subnet": str(subnet)}]],
            "routes": [{"dst": "203.0.113.0/24", "gw": "192.0.2.77"}]}
    c = conf(ipMasq=True, ipam=ipam)
    ns = netns()
    before = {entry["ifname"] for entry in json.loads(subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}
    out = _run(run_plugin, ours, "ADD", c, ns)
    assert out.rc != 0 and out.json["code"] == 999, out.stdout
    assert "203.0.113.0/24" in out.json["msg"] and "Traceback" not in out.stderr
    assert not link_exists("eth0", ns)
    after = {entry["ifname"] for entry in json.loads(subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}
    assert not {n for n in after - before if n.startswith("veth")}
    assert _ipam_files(state_dir / "ipam", c["name"]).keys() <= {"last_reserved_ip.0"}
    assert iptables_lines(c["name"]) == []
    ref_conf = {**c, "ipam": {**ipam, "dataDir": str(state_dir / "ipam-ref")}}
    ref_out = _run(run_plugin, ref, "ADD", ref_conf, ns)
    assert ref_out.rc != 0 and ref_out.json["code"] == 999


@pytest.mark.parametrize(("keys", "code", "words"), [
    ({"mtu": 10}, 7, "invalid MTU"),
    ({"mtu": 70000}, 7, "mtu"),
    ({"ipam": {}}, 7, "ipam"),
    ({"ipMasqBackend": "pf"}, 2, "ipMasqBackend"),  # the schema's enum: an unsupported value
    ({"ipMasq": "yes"}, 7, "ipMasq"),
    ({"dns": {"nameservers": "192.0.2.1"}}, 7, "nameservers"),
])
def test_hostile_config_is_a_clean_error(ours, conf, netns, run_plugin, keys, code, words):
    """ADD, CHECK and STATUS refuse it alike; nothing is made."""
    c = conf()
    c.update(keys)
    ns = netns()
    for command, where in (("ADD", ns), ("CHECK", ns), ("STATUS", "")):
        out = _run(run_plugin, ours, command, c, where)
        assert out.rc != 0 and out.json["code"] == code, (command, out.stdout)
        assert words.lower() in out.stdout.lower() and "Traceback" not in out.stderr
    assert not link_exists("eth0", ns)


def test_del_without_ipam_still_cleans_up(ours, conf, netns, run_plugin):
    """A config that lost its ipam: DEL removes the interface and the rules (the reference fails
    with "no plugin name provided" and removes nothing)."""
    c = conf(ipMasq=True)
    ns = netns()
    add = _run(run_plugin, ours, "ADD", c, ns).check()
    host = host_veth(add.json, ns)
    out = _run(run_plugin, ours, "DEL", {k: v for k, v in c.items() if k != "ipam"}, ns)
    assert out.rc == 0, out.stdout
    assert not link_exists(host) and iptables_lines(c["name"]) == []
    _run(run_plugin, ours, "DEL", c, ns).check()  # the address goes with the full config


def test_taken_ifname_is_refused_and_left_alone(ours, conf, netns, run_plugin, state_dir):
    c = conf()
    ns = netns()
    ns.exec("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    out = _run(run_plugin, ours, "ADD", c, ns)
    assert out.rc != 0 and "already exists" in out.json["msg"]
    assert link_exists("eth0", ns)
    assert _ipam_files(state_dir / "ipam", c["name"]).keys() <= {"last_reserved_ip.0"}


def test_check_finds_a_missing_route(ours, ref, conf, netns, run_plugin):
    """CHECK fails, as the reference's does, once the route to the subnet through the gateway is gone."""
    c = conf()
    ns = netns()
    add = _run(run_plugin, ours, "ADD", c, ns).check()
    checked = {**c, "prevResult": add.json}
    assert _run(run_plugin, ours, "CHECK", checked, ns).rc == 0
    subnet = add.json["ips"][0]["address"]
    prefix = str(__import__("ipaddress").ip_interface(subnet).network)
    ns.exec("ip", "route", "del", prefix)
    for d in (ours, ref):
        out = _run(run_plugin, d, "CHECK", checked, ns)
        assert out.rc != 0 and out.json["code"] == 999, out.stdout
    assert _run(run_plugin, ours, "CHECK", {k: v for k, v in c.items()}, ns).json["code"] == 999
    _run(run_plugin, ours, "DEL", c, ns).check()


SERVER = """import socket, sys
s = socket.socket(socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7777)); s.listen(1); s.settimeout(10); print("ready", flush=True)
c, _ = s.accept(); c.sendall(b"pong " + sys.argv[1].encode()); c.close()
"""
CLIENT = """import socket, sys
c = socket.create_connection((sys.argv[1], 7777), timeout=5); print(c.recv(100).decode())
"""


def _exchange(server_ns, client_ns, address: str) -> str:
    """A TCP exchange to `address` from `client_ns` (None: the host) with a server in `server_ns`."""
    def argv(ns, code):
        return ns_argv(ns, sys.executable, "-c", code, address)

    server = subprocess.Popen(argv(server_ns, SERVER), stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        out = subprocess.run(argv(client_ns, CLIENT), capture_output=True, text=True, timeout=20)
        return out.stdout.strip()
    finally:
        server.kill()
        server.wait()


def test_traffic_through_the_host_end(ours, conf, netns, run_plugin):
    """Two pods on one subnet: each reaches its gateway on the host and the other pod, routed by the host."""
    subnet = v4()
    c = conf(ipam=kind_ipam(subnet))
    pods = [netns(), netns()]
    ips = []
    for i, ns in enumerate(pods):
        out = run_plugin(ours / "ptp", "ADD", c, netns=ns, container_id=f"pcptp-direct{i}").check()
        ips.append(out.json["ips"][0])
    try:
        gw = ips[0]["gateway"]
        assert gw + "/32" in addresses(host_veth({}, pods[0]))
        assert _exchange(None, pods[0], gw) == f"pong {gw}"
        other = ips[1]["address"].split("/")[0]
        assert _exchange(pods[1], pods[0], other) == f"pong {other}"
    finally:
        for i, ns in enumerate(pods):
            run_plugin(ours / "ptp", "DEL", c, netns=ns, container_id=f"pcptp-direct{i}")
