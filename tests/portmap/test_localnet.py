"""route_localnet (127.0.0.1:hostPort): on the interface the pod is reached through and nowhere
else, the node's uplink above all (CVE-2020-8558: 127.0.0.0/8 reachable from the LAN); off again
with the last DEL that needed it, unless it was on before portmap looked. Read back from
/proc/sys/net/ipv4/conf/<if>/route_localnet in the emulated node."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import conflist, ns_argv, unique_name, unique_subnet_v4

from cni.layout.portmap import LOCALNET_DIR

pytestmark = pytest.mark.root


def _m(host: int) -> list[dict]:
    return [{"HostPort": host, "ContainerPort": 8080, "Protocol": "tcp", "HostIP": ""}]


def _dev_to(node, ip: str) -> str:
    return json.loads(node.sh("ip", "-j", "route", "get", ip).stdout)[0]["dev"]


def _localnet(node, dev: str) -> str:
    return node.sh("cat", f"/proc/sys/net/ipv4/conf/{dev}/route_localnet").stdout.strip()


def _bridge_of(net) -> str:
    _, d, _ = net
    conf = json.loads(next(d.glob("*.conflist")).read_text())
    return conf["plugins"][0]["bridge"]


def test_on_the_bridge_only_and_off_with_the_last_del(node, pods):
    net = pods.network()
    first = pods(_m(18280), net=net)
    second = pods(_m(18281), net=net)
    bridge, uplink = _dev_to(node, first.ip4), _dev_to(node, node.client4)
    assert bridge == _bridge_of(net)
    assert _localnet(node, bridge) == "1"
    assert _localnet(node, uplink) == "0", "route_localnet on the node's uplink"
    first.run("del").check()
    first.deleted = True
    assert _localnet(node, bridge) == "1", "turned off while another pod needs it"
    second.run("del").check()
    second.deleted = True
    assert _localnet(node, bridge) == "0", "left on after the last DEL that needed it"


def test_on_ptps_host_veth(node, pods):
    """kind's list: ptp, then portmap. The pod is reached through its own host veth."""
    name = unique_name("pmptp", 8)
    ptp = {"type": "ptp", "ipam": {"type": "host-local", "dataDir": str(pods.state / "ipam"),
                                   "ranges": [[{"subnet": str(unique_subnet_v4(24))}]]}}
    d = Path(tempfile.mkdtemp(prefix="netconf-", dir=pods.bench_tmp))
    plugins = [ptp, {"type": "portmap", "capabilities": {"portMappings": True}}]
    (d / f"{name}.conflist").write_text(json.dumps(conflist(name, plugins, "0.3.1")))
    pod = pods(_m(18285), net=(name, d, {}))
    veth, uplink = _dev_to(node, pod.ip4), _dev_to(node, node.client4)
    assert veth != uplink
    assert (_localnet(node, veth), _localnet(node, uplink)) == ("1", "0")
    pod.run("del").check()
    pod.deleted = True
    # the veth went with the pod (ptp's DEL); its record goes with portmap's DEL
    assert not list(Path(LOCALNET_DIR).glob(f"{os.stat(node.ns.path).st_ino}-*"))


def test_a_value_the_administrator_set_stays(node, pods):
    net = pods.network()
    bridge = _bridge_of(net)
    node.sh("ip", "link", "add", bridge, "type", "bridge")
    node.sh("sysctl", "-qw", f"net.ipv4.conf.{bridge}.route_localnet=1")
    pod = pods(_m(18282), net=net)
    assert _localnet(node, bridge) == "1"
    pod.run("del").check()
    pod.deleted = True
    assert _localnet(node, bridge) == "1", "portmap turned off what it had not turned on"


def test_no_snat_leaves_it_alone(node, pods):
    net = pods.network({"snat": False})
    pod = pods(_m(18283), net=net)
    assert _localnet(node, _dev_to(node, pod.ip4)) == "0"


def _portmap(node, bin_dir, command: str, netns: str, prev: dict, cid: str) -> subprocess.CompletedProcess:
    conf = {"cniVersion": "1.0.0", "name": "pmlocal", "type": "portmap",
            "runtimeConfig": {"portMappings": [{"hostPort": 18284, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": prev}
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"CNI_COMMAND={command}",
           f"CNI_CONTAINERID={cid}", f"CNI_NETNS={netns}", "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent",
           f"XTABLES_LOCKFILE={node.lock}"]
    return subprocess.run(ns_argv(node.ns, *env, str(bin_dir / "portmap")), input=json.dumps(conf),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("case", ("on-link-no-host-interface", "default-route-no-interfaces",
                                  "result-names-the-uplink"))
def test_never_on_the_uplink(case, node, netns, bin_dir):
    """A pod address the node reaches through its uplink: on the uplink's own subnet (a macvlan-like
    result naming only the container's interface), or through the default route (a result that
    names no interfaces at all), or one whose result names the uplink as its own host interface."""
    pod_ns = netns("pmlo-")
    uplink = _dev_to(node, node.client4)
    node.sh("ip", "route", "replace", "default", "via", node.client4)
    if case == "on-link-no-host-interface":
        ip = node.client4.rsplit(".", 1)[0] + ".200"
        prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": pod_ns.path}],
                "ips": [{"address": f"{ip}/24", "interface": 0}]}
    elif case == "result-names-the-uplink":  # a broken or hostile previous plugin
        ip = node.client4.rsplit(".", 1)[0] + ".201"
        interfaces = [{"name": uplink}, {"name": "eth0", "sandbox": pod_ns.path}]
        prev = {"cniVersion": "1.0.0", "interfaces": interfaces,
                "ips": [{"address": f"{ip}/24", "interface": 1}]}
    else:
        ip = "203.0.113.77"
        prev = {"cniVersion": "1.0.0", "ips": [{"address": f"{ip}/24"}]}
    assert _dev_to(node, ip) == uplink
    cid = unique_name("pmlo", 10)
    try:
        r = _portmap(node, bin_dir, "ADD", pod_ns.path, prev, cid)
        assert r.returncode == 0, r.stdout + r.stderr
        assert _localnet(node, uplink) == "0", "route_localnet turned on on the node's uplink"
    finally:
        r = _portmap(node, bin_dir, "DEL", pod_ns.path, prev, cid)
        assert r.returncode == 0, r.stdout + r.stderr
