"""Our bridge through libcni (cnitool), every option, with the kernel's state read back."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import addresses, bridge_json, delete_link, ip_json, link, link_exists, unique_subnet_v4
from helpers import unique_subnet_v6 as _v6

from cni.layout import bridge as bridge_layout

from .conftest import iptables_lines, masq_rules_nft, spoof_rules

pytestmark = pytest.mark.root
VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]  # libcni 1.1.2 (cnitool) stops at 1.0.0; 1.1.0 below


def v6() -> ipaddress.IPv6Network:
    return _v6(64)


def hl(*subnets, **extra) -> dict:
    """host-local with one range set per subnet."""
    return {"type": "host-local", "ranges": [[{"subnet": str(s)}] for s in subnets], **extra}


def sysctl(ns, key: str) -> str:
    return ns.exec("cat", f"/proc/sys/{key}").stdout.strip()


def port(name: str) -> dict:
    (p,) = [p for p in bridge_json("-d", "link", "show", "dev", name)]
    return p


def vlans(ifname: str) -> list[dict]:
    out = bridge_json("vlan", "show", "dev", ifname)
    return out[0]["vlans"] if out else []


def routes(ns, family: str = "-4") -> list[dict]:
    return ip_json(family, "route", "show", netns=ns)


def assert_gone(ns, result: dict, data_dir: Path, network: str) -> None:
    assert not link_exists("eth0", ns)
    assert not link_exists(result["interfaces"][1]["name"])
    for ip in result.get("ips", []):
        assert not (data_dir / network / ip["address"].split("/")[0]).exists()


# ---- the basic attachment, every version, v4 / v6 / dual ------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("families", ["4", "6", "46"])
def test_add_check_del(version, families, ours, net, netns, bridge_name):
    subnets = ([unique_subnet_v4()] if "4" in families else []) + ([v6()] if "6" in families else [])
    n = net({"type": "bridge", "bridge": bridge_name, "isDefaultGateway": True, "ipam": hl(*subnets)},
            version)
    ns = netns()
    res = n("add", ns, ours).check().json
    assert res["cniVersion"] == version
    br, host, cont = res["interfaces"]
    assert br["name"] == bridge_name and host["name"].startswith("veth") and cont["name"] == "eth0"
    assert cont["sandbox"] == ns.path
    assert all(len(i["mac"]) == 17 for i in res["interfaces"])
    assert [ipaddress.ip_interface(i["address"]).network for i in res["ips"]] == subnets
    assert all(i["interface"] == 2 for i in res["ips"])
    assert ("version" in res["ips"][0]) == (version < "1.0.0")
    # kernel: bridge, port, container addresses, routes, gateways, sysctls
    assert link(bridge_name)["linkinfo"]["info_kind"] == "bridge"
    assert link(bridge_name)["address"] == br["mac"]
    h = link(host["name"])
    assert h["master"] == bridge_name and h["operstate"] == "UP" and h["address"] == host["mac"]
    c = link("eth0", ns)
    assert c["linkinfo"]["info_kind"] == "veth" and c["address"] == cont["mac"] and c["operstate"] == "UP"
    got = set(addresses("eth0", ns))
    assert got == {i["address"] for i in res["ips"]}
    for s in subnets:
        gw = f"{s[1]}/{s.prefixlen}"
        assert gw in addresses(bridge_name)
        fam = "-4" if s.version == 4 else "-6"
        default = [r for r in routes(ns, fam) if r["dst"] == "default"]
        assert default and default[0]["gateway"] == str(s[1])
    assert sysctl(ns, "net/ipv4/conf/eth0/arp_notify") == "1"
    assert sysctl(ns, "net/ipv6/conf/eth0/accept_dad") == "0"
    if "6" in families:
        assert Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text().strip() == "1"
    if version >= "0.4.0":
        assert n("check", ns, ours).check().stdout == ""
    n("del", ns, ours).check()
    assert_gone(ns, res, n.data_dir, n.name)
    assert link_exists(bridge_name)  # the bridge stays
    n("del", ns, ours).check()  # idempotent


@pytest.mark.parametrize("families", ["4", "6", "46"])
def test_spec_110_direct(families, ours, net, netns, bridge_name, run_plugin):
    """1.1.0, which libcni 1.1.2 cannot relay: ADD, CHECK, STATUS, GC, DEL straight to the plugin."""
    subnets = ([unique_subnet_v4()] if "4" in families else []) + ([v6()] if "6" in families else [])
    n = net({"type": "bridge", "bridge": bridge_name, "mtu": 1450, "isDefaultGateway": True,
             "ipam": hl(*subnets)}, "1.1.0")
    ns = netns()
    call = dict(cni_path=ours, netns=ns, container_id="pcb-direct")
    res = run_plugin("bridge", "ADD", n.plugin_stdin(), **call).check().json
    assert res["cniVersion"] == "1.1.0"
    # the reference's interfaces have no MTUs in a 1.1.0 result; the links have the configured one
    assert [sorted(i) for i in res["interfaces"]] == [["mac", "name"], ["mac", "name"],
                                                       ["mac", "name", "sandbox"]]
    links = [link(bridge_name), link(res["interfaces"][1]["name"]), link("eth0", ns)]
    assert [i["mtu"] for i in links] == [1450] * 3
    assert {i["address"] for i in res["ips"]} == set(addresses("eth0", ns))
    assert len([r for r in res["routes"] if r["dst"] in ("0.0.0.0/0", "::/0")]) == len(subnets)
    run_plugin("bridge", "CHECK", n.plugin_stdin(prevResult=res), **call).check()
    run_plugin("bridge", "STATUS", n.plugin_stdin(), cni_path=ours, container_id="", ifname="").check()
    run_plugin("bridge", "DEL", n.plugin_stdin(prevResult=res), **call).check()
    run_plugin("bridge", "DEL", n.plugin_stdin(), **call).check()
    assert not link_exists("eth0", ns)
    run_plugin("bridge", "GC", n.plugin_stdin(), cni_path=ours, container_id="", ifname="").check()


def test_check_reports_drift(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "isDefaultGateway": True,
             "ipam": hl(unique_subnet_v4())})
    ns = netns()
    res = n("add", ns, ours).check().json
    ns.exec("ip", "route", "del", "default")
    assert "0.0.0.0/0" in n("check", ns, ours).expect_error().msg
    ns.exec("ip", "addr", "flush", "dev", "eth0")
    assert res["ips"][0]["address"] in n("check", ns, ours).expect_error().msg
    subprocess.run(["ip", "link", "set", res["interfaces"][1]["name"], "nomaster"], check=True)
    assert "veth" in n("check", ns, ours).expect_error().msg
    n("del", ns, ours).check()


def test_two_ranges_of_one_family(ours, net, netns, bridge_name):
    a, b = unique_subnet_v4(), unique_subnet_v4()
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(a, b)})
    ns = netns()
    res = n("add", ns, ours).check().json
    assert len(res["ips"]) == 2 and set(addresses("eth0", ns)) == {i["address"] for i in res["ips"]}
    n("del", ns, ours).check()
    # as the reference: one bridge holds one IPv4 gateway, a second one is a conflict
    g = net({**n.conf, "isGateway": True})
    assert "already has an IP address" in g("add", ns, ours).expect_error().msg
    assert not link_exists("eth0", ns) and not list((n.data_dir / g.name).glob("198.*"))


def test_result_020_refuses_two_addresses_per_family(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4(), unique_subnet_v4())},
            "0.2.0")
    ns = netns()
    out = n("add", ns, ours)
    assert out.rc != 0
    n("del", ns, ours).check()
    assert not link_exists("eth0", ns)


# ---- link options ------------------------------------------------------------------------------
def test_mtu_hairpin_isolation(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "mtu": 1400, "hairpinMode": True, "portIsolation": True,
             "ipam": hl(unique_subnet_v4())})
    ns = netns()
    res = n("add", ns, ours).check().json
    host = res["interfaces"][1]["name"]
    assert link(bridge_name)["mtu"] == 1400 and link(host)["mtu"] == 1400 and link("eth0", ns)["mtu"] == 1400
    p = port(host)
    assert p["hairpin"] is True and p["isolated"] is True
    n("del", ns, ours).check()


def test_defaults_leave_port_plain(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    res = n("add", ns, ours).check().json
    p = port(res["interfaces"][1]["name"])
    assert p["hairpin"] is False and p["isolated"] is False
    assert "PROMISC" not in link(bridge_name)["flags"]
    assert link(bridge_name)["linkinfo"]["info_data"]["vlan_filtering"] == 0
    assert addresses(bridge_name) == []  # not a gateway
    n("del", ns, ours).check()


def test_promisc(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "promiscMode": True, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    n("add", ns, ours).check()
    assert "PROMISC" in link(bridge_name)["flags"]
    n("check", ns, ours).check()
    n("del", ns, ours).check()


def test_hairpin_and_promisc_exclusive(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "promiscMode": True, "hairpinMode": True,
             "ipam": hl(unique_subnet_v4())})
    ns = netns()
    out = n("add", ns, ours).expect_error(7)
    assert "hairpin" in out.msg
    assert not link_exists(bridge_name) and not link_exists("eth0", ns)


def test_existing_bridge_is_reused_and_not_a_bridge_fails(ours, net, netns, bridge_name):
    subprocess.run(["ip", "link", "add", bridge_name, "type", "bridge"], check=True)
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    n("add", ns, ours).check()
    n("del", ns, ours).check()
    delete_link(bridge_name)
    subprocess.run(["ip", "link", "add", bridge_name, "type", "veth", "peer", "name", bridge_name + "p"],
                   check=True)
    out = n("add", ns, ours).expect_error()
    assert "not a bridge" in out.msg
    assert not link_exists("eth0", ns)
    assert not list((n.data_dir / n.name).glob("198.*"))  # nothing reserved


def test_ifname_taken(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    ns.exec("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    out = n("add", ns, ours).expect_error()
    assert "eth0" in out.msg and "already exists" in out.msg
    assert link(bridge_name)
    assert not [p for p in bridge_json("link", "show") if p.get("master") == bridge_name]


def test_mtu_too_small_is_config_error(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "mtu": 20, "ipam": hl(unique_subnet_v4())})
    assert n("add", netns(), ours).expect_error(7)


# ---- VLANs ------------------------------------------------------------------------------------
def _kernel_has_vlan_filtering() -> bool:
    name = "pcbvlanprobe"
    ok = subprocess.run(["ip", "link", "add", name, "type", "bridge", "vlan_filtering", "1"],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    return ok


needs_vlan_filtering = pytest.mark.skipif(
    not _kernel_has_vlan_filtering() if __import__("os").geteuid() == 0 else True,
    reason="this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")


@needs_vlan_filtering
def test_vlan_gateway_left_half_made_is_replaced(ours, net, netns, bridge_name):
    """A `<bridge>.<vlan>` of ours (tagged) that an interrupted ADD left behind (a veth whose peer
    is on no bridge) is made again, under the bridge lock, instead of being used as it is."""
    subnet = unique_subnet_v4()
    gw_if = f"{bridge_name}.100"
    subprocess.run(["ip", "link", "add", bridge_name, "type", "bridge", "vlan_filtering", "1"], check=True)
    subprocess.run(["ip", "link", "add", gw_if, "type", "veth", "peer", "name", f"{bridge_name}x"],
                   check=True)
    subprocess.run(["ip", "link", "set", gw_if, "alias", bridge_layout.vlan_gateway_alias(bridge_name, 100)],
                   check=True)
    try:
        n = net({"type": "bridge", "bridge": bridge_name, "vlan": 100, "isGateway": True, "ipam": hl(subnet)})
        ns = netns()
        n("add", ns, ours).check()
        gateway = link(gw_if)
        assert gateway is not None and "UP" in gateway["flags"]
        assert gateway.get("ifalias") == bridge_layout.vlan_gateway_alias(bridge_name, 100)
        peer = link(gateway["link"])  # ip names a veth's peer in the same namespace
        assert peer is not None and peer.get("master") == bridge_name, "the peer is no port of the bridge"
        assert f"{subnet[1]}/24" in addresses(gw_if)
        n("del", ns, ours).check()
    finally:
        delete_link(gw_if)
        delete_link(f"{bridge_name}x")


@needs_vlan_filtering
@pytest.mark.parametrize("kind", ["vlan", "veth"])
def test_vlan_gateway_name_taken_by_an_administrators_device_is_used_not_deleted(
        ours, net, netns, bridge_name, kind):
    """`<bridge>.<vlan>` is also the usual name of an administrator's 802.1Q sub-interface: without
    our tag it is not ours, so it is used as it is (as the reference uses it), never replaced."""
    subnet = unique_subnet_v4()
    gw_if = f"{bridge_name}.100"
    subprocess.run(["ip", "link", "add", bridge_name, "type", "bridge", "vlan_filtering", "1"], check=True)
    if kind == "vlan":
        made = ["ip", "link", "add", "link", bridge_name, "name", gw_if, "type", "vlan", "id", "100"]
    else:  # a veth whose peer is on no bridge: what a half-made gateway of ours would look like, untagged
        made = ["ip", "link", "add", gw_if, "type", "veth", "peer", "name", f"{bridge_name}x"]
    subprocess.run(made, check=True)
    before = link(gw_if)["ifindex"]
    try:
        n = net({"type": "bridge", "bridge": bridge_name, "vlan": 100, "isGateway": True, "ipam": hl(subnet)})
        ns = netns()
        n("add", ns, ours).check()
        after = link(gw_if)
        assert after is not None and after["ifindex"] == before, "the administrator's device was replaced"
        assert not after.get("ifalias"), "ours tagged a device it did not make"
        assert f"{subnet[1]}/24" in addresses(gw_if)
        n("del", ns, ours).check()
        assert link(gw_if)["ifindex"] == before
    finally:
        delete_link(gw_if)
        delete_link(f"{bridge_name}x")


@needs_vlan_filtering
def test_vlan_gateway_we_make_carries_our_tag(ours, net, netns, bridge_name):
    subnet = unique_subnet_v4()
    gw_if = f"{bridge_name}.100"
    try:
        n = net({"type": "bridge", "bridge": bridge_name, "vlan": 100, "isGateway": True, "ipam": hl(subnet)})
        ns = netns()
        n("add", ns, ours).check()
        assert link(gw_if).get("ifalias") == bridge_layout.vlan_gateway_alias(bridge_name, 100)
        n("del", ns, ours).check()
    finally:
        delete_link(gw_if)


@needs_vlan_filtering
def test_vlan_access_port_with_gateway(ours, net, netns, bridge_name):
    subnet = unique_subnet_v4()
    n = net({"type": "bridge", "bridge": bridge_name, "vlan": 100, "isGateway": True, "ipam": hl(subnet),
             "preserveDefaultVlan": False})
    ns = netns()
    res = n("add", ns, ours).check().json
    assert len(res["interfaces"]) == 4 and res["interfaces"][3]["name"] == f"{bridge_name}.100"
    assert link(bridge_name)["linkinfo"]["info_data"]["vlan_filtering"] == 1
    assert vlans(res["interfaces"][1]["name"]) == [{"vlan": 100, "flags": ["PVID", "Egress Untagged"]}]
    gw_if = f"{bridge_name}.100"
    assert f"{subnet[1]}/24" in addresses(gw_if) and addresses(bridge_name) == []
    peer = [p for p in bridge_json("link", "show") if p.get("master") == bridge_name
            and p["ifname"] != res["interfaces"][1]["name"]]
    assert len(peer) == 1
    assert vlans(peer[0]["ifname"]) == [{"vlan": 100, "flags": ["PVID", "Egress Untagged"]}]
    n("del", ns, ours).check()
    delete_link(gw_if)


PVID = ["PVID", "Egress Untagged"]


@needs_vlan_filtering
@pytest.mark.parametrize("preserve, want", [
    ({"preserveDefaultVlan": True}, {1: ["Egress Untagged"], 7: PVID}),
    ({}, {7: PVID}),  # the default since the reference's v1.8.0: only the configured VLAN
], ids=["true", "default"])
def test_vlan_preserve_default(preserve, want, ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "vlan": 7, "ipam": {}, **preserve})
    ns = netns()
    res = n("add", ns, ours).check().json
    got = {v["vlan"]: v.get("flags", []) for v in vlans(res["interfaces"][1]["name"])}
    assert got == want
    n("del", ns, ours).check()


VLAN_CASES = {
    "access": {"vlan": 100},
    "access-preserve": {"vlan": 100, "preserveDefaultVlan": True},
    "trunk": {"vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 202}]},
    "trunk-preserve": {"vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 202}], "preserveDefaultVlan": True},
    "trunk-native": {"vlan": 100, "vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 201}]},
    # the native VLAN in the trunk too: added tagged after it, it is no longer the PVID (the kernel)
    "trunk-with-native": {"vlan": 100, "vlanTrunk": [{"id": 100}, {"id": 300}]},
    "empty-trunk": {"vlanTrunk": []},
}


@needs_vlan_filtering
@pytest.mark.parametrize("case", sorted(VLAN_CASES))
def test_vlan_ports_match_reference(case, ours, ref, net, netns, bridge_name):
    """Each VLAN option as the reference v1.9.1 sets it: the pod's port, the `<bridge>.<vlan>` gateway
    and its port, the bridge's filtering and the result's interfaces."""
    subnet = unique_subnet_v4()
    got = {}
    for name, plugins in (("ref", ref), ("ours", ours)):
        n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipam": hl(subnet),
                 **VLAN_CASES[case]})
        ns = netns()
        res = n("add", ns, plugins).check().json
        names = [i["name"] for i in res["interfaces"]]
        gateway_port = [p["ifname"] for p in bridge_json("link", "show") if p.get("master") == bridge_name
                        and p["ifname"] not in names]
        got[name] = {"pod": vlans(names[1]), "gateway": [vlans(p) for p in gateway_port],
                     "interfaces": [n if n.startswith(bridge_name) else n[:4] for n in names],
                     "filtering": link(bridge_name)["linkinfo"]["info_data"]["vlan_filtering"],
                     "bridge_addresses": addresses(bridge_name),
                     "gateway_addresses": addresses(names[3]) if len(names) > 3 else None}
        n("del", ns, plugins).check()
        delete_link(f"{bridge_name}.100")  # each makes its own gateway veth
        delete_link(bridge_name)
    assert got["ours"] == got["ref"]
    if case == "access":
        assert got["ours"]["pod"] == [{"vlan": 100, "flags": PVID}]
    if case == "trunk-native":
        assert {v["vlan"]: v.get("flags", []) for v in got["ours"]["pod"]} == {
            100: PVID, 101: [], 200: [], 201: []}, "vlan is the trunk's native VLAN"


@needs_vlan_filtering
@pytest.mark.parametrize("preserve", [False, True])
def test_vlan_trunk(preserve, ours, net, netns, bridge_name):
    """A trunk without `vlan` has VLAN 1 as its native (untagged PVID) VLAN, preserved or not."""
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "preserveDefaultVlan": preserve,
             "vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 202}]})
    ns = netns()
    res = n("add", ns, ours).check().json
    got = {v["vlan"]: v.get("flags", []) for v in vlans(res["interfaces"][1]["name"])}
    assert got == {1: PVID, 101: [], 200: [], 201: [], 202: []}
    assert link(bridge_name)["linkinfo"]["info_data"]["vlan_filtering"] == 1
    n("del", ns, ours).check()


@needs_vlan_filtering
def test_vlan_with_trunk_is_native(ours, net, netns, bridge_name):
    """`vlan` with `vlanTrunk`: `vlan` is the trunk's untagged PVID (the reference accepts it since
    v1.8.0)."""
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "vlan": 30, "vlanTrunk": [{"id": 40}]})
    ns = netns()
    res = n("add", ns, ours).check().json
    got = {v["vlan"]: v.get("flags", []) for v in vlans(res["interfaces"][1]["name"])}
    assert got == {30: PVID, 40: []}
    n("del", ns, ours).check()


@pytest.mark.parametrize("trunk", [[{"id": 0}], [{"minID": 5}], [{"minID": 9, "maxID": 3}], [{"id": 4095}]])
def test_vlan_trunk_validation(trunk, ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "vlanTrunk": trunk})
    n("add", netns(), ours).expect_error(7)
    assert not link_exists(bridge_name)


@pytest.mark.parametrize("vlan", [-1, 4095])
def test_vlan_validation(vlan, ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "vlan": vlan})
    n("add", netns(), ours).expect_error(7)


# ---- L2, MACs, container interface ----------------------------------------------------------------
def test_layer2_only(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {},
             "dns": {"nameservers": ["192.0.2.53"], "search": ["example.org"]}})
    ns = netns()
    res = n("add", ns, ours).check().json
    assert "ips" not in res and len(res["interfaces"]) == 3
    assert res["dns"] == {"nameservers": ["192.0.2.53"], "search": ["example.org"]}
    assert link("eth0", ns)["operstate"] == "UP" and addresses("eth0", ns) == []
    n("check", ns, ours).check()
    n("del", ns, ours).check()
    assert not link_exists("eth0", ns)


def test_dns_overrides_ipam(ours, net, netns, bridge_name, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.1\n")
    n = net({"type": "bridge", "bridge": bridge_name,
             "ipam": hl(unique_subnet_v4(), resolvConf=str(resolv))})
    ns = netns()
    assert n("add", ns, ours).check().json["dns"] == {"nameservers": ["192.0.2.1"]}
    n("del", ns, ours).check()
    m = net({**n.conf, "dns": {"nameservers": ["198.51.100.1"]}})
    assert m("add", ns, ours).check().json["dns"] == {"nameservers": ["198.51.100.1"]}
    m("del", ns, ours).check()


@pytest.mark.parametrize("source", ["runtimeConfig", "args", "CNI_ARGS"])
def test_container_mac(source, ours, net, netns, bridge_name):
    mac = "02:12:34:56:78:9a"
    plugin = {"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4())}
    kw = {}
    if source == "runtimeConfig":
        plugin["capabilities"] = {"mac": True}
        kw["cap_args"] = {"mac": mac}
    elif source == "args":
        plugin["args"] = {"cni": {"mac": mac}}
    else:
        kw["cni_args"] = {"IgnoreUnknown": "1", "MAC": mac}
    n = net(plugin)
    ns = netns()
    res = n("add", ns, ours, **kw).check().json
    assert res["interfaces"][2]["mac"] == mac and link("eth0", ns)["address"] == mac
    n("check", ns, ours, **kw).check()
    n("del", ns, ours, **kw).check()


def test_runtime_mac_beats_args(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "capabilities": {"mac": True},
             "args": {"cni": {"mac": "02:00:00:00:00:02"}}})
    ns = netns()
    res = n("add", ns, ours, cap_args={"mac": "02:00:00:00:00:01"},
            cni_args="IgnoreUnknown=1;MAC=02:00:00:00:00:03").check().json
    assert res["interfaces"][2]["mac"] == "02:00:00:00:00:01"
    n("del", ns, ours).check()


def test_disable_container_interface(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": {}, "disableContainerInterface": True})
    ns = netns()
    res = n("add", ns, ours).check().json
    assert "UP" not in link("eth0", ns)["flags"]
    assert link(res["interfaces"][1]["name"])["master"] == bridge_name
    n("del", ns, ours).check()


def test_disable_container_interface_with_ipam_is_error(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "disableContainerInterface": True,
             "ipam": hl(unique_subnet_v4())})
    n("add", netns(), ours).expect_error(7)
    assert not link_exists(bridge_name)


def test_enabledad(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "enabledad": True, "isGateway": True, "ipam": hl(v6())})
    ns = netns()
    res = n("add", ns, ours).check().json
    assert sysctl(ns, "net/ipv6/conf/eth0/accept_dad") == "1"
    assert sysctl(ns, "net/ipv6/conf/eth0/enhanced_dad") == "1"
    flags = next(a for a in ip_json("addr", "show", "dev", "eth0", netns=ns)[0]["addr_info"]
             if a["local"] == res["ips"][0]["address"].split("/")[0])
    assert not flags.get("tentative")  # ADD waited for DAD to settle
    n("del", ns, ours).check()


def test_ipv6_disabled_in_container_is_enabled(ours, net, netns, bridge_name):
    ns = netns()
    ns.exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
            "net.ipv6.conf.lo.disable_ipv6=1")
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(v6())})
    res = n("add", ns, ours).check().json
    assert res["ips"][0]["address"] in addresses("eth0", ns)
    assert sysctl(ns, "net/ipv6/conf/lo/disable_ipv6") == "0"
    n("del", ns, ours).check()


# ---- gateway addresses ---------------------------------------------------------------------
def test_force_address(ours, net, netns, bridge_name):
    old, new = unique_subnet_v4(), unique_subnet_v4()
    subprocess.run(["ip", "link", "add", bridge_name, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"{old[1]}/24", "dev", bridge_name], check=True)
    ns = netns()
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipam": hl(new)})
    out = n("add", ns, ours).expect_error()
    assert "already has an IP address different from" in out.msg
    assert not link_exists("eth0", ns) and not list((n.data_dir / n.name).glob("198.*"))
    m = net({**n.conf, "forceAddress": True})
    m("add", ns, ours).check()
    assert addresses(bridge_name) == [f"{new[1]}/24"]
    m("del", ns, ours).check()


def test_ipv6_gateways_may_coexist(ours, net, netns, bridge_name):
    a, b = v6(), v6()
    n1 = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipam": hl(a)})
    n2 = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipam": hl(b)})
    ns1, ns2 = netns(), netns()
    n1("add", ns1, ours).check()
    n2("add", ns2, ours).check()
    assert {f"{a[1]}/64", f"{b[1]}/64"} <= set(addresses(bridge_name))
    n1("del", ns1, ours).check()
    n2("del", ns2, ours).check()


def test_stable_bridge_mac(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipam": hl(unique_subnet_v4())})
    ns1, ns2 = netns(), netns()
    mac = n("add", ns1, ours).check().json["interfaces"][0]["mac"]
    n("add", ns2, ours).check()
    n("del", ns1, ours).check()
    assert link(bridge_name)["address"] == mac
    n("del", ns2, ours).check()


# ---- failure after IPAM ------------------------------------------------------------------------
def test_failure_after_ipam_releases_address(ours, net, netns, bridge_name):
    """A route IPAM hands out that the kernel refuses: the address is released, the veth removed."""
    subnet = unique_subnet_v4()
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
             "ipam": hl(subnet, routes=[{"dst": "203.0.113.0/24", "gw": "192.0.2.1"}])})
    ns = netns()
    out = n("add", ns, ours).expect_error()
    assert "failed to add route" in out.msg and "203.0.113.0/24" in out.msg
    assert not link_exists("eth0", ns)
    assert not [p for p in bridge_json("link", "show") if p.get("master") == bridge_name]
    assert not list((n.data_dir / n.name).glob("198.*"))
    assert iptables_lines(n.name) == []


# ---- ipMasq ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", [None, "iptables", "nftables"])
def test_ipmasq(backend, ours, net, netns, bridge_name):
    a, b = unique_subnet_v4(), v6()
    plugin = {"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True, "ipam": hl(a, b)}
    if backend:
        plugin["ipMasqBackend"] = backend
    n = net(plugin)
    ns = netns()
    res = n("add", ns, ours).check().json
    ip4, ip6 = (i["address"] for i in res["ips"])
    cid = n.ids[0]
    if backend == "nftables":
        rules = masq_rules_nft(n.name)
        assert len(rules) == 2 and all(f"id: {cid}" in r["comment"] for r in rules)
        assert iptables_lines(n.name) == [] and iptables_lines(n.name, 6) == []
    else:
        from cni.layout.masq import chain_name
        chain = chain_name(n.name, cid)
        v4 = iptables_lines(n.name)
        assert f":{chain} - [0:0]" in v4
        assert any(line.startswith(f"-A POSTROUTING -s {ip4.split('/')[0]}/32") and line.endswith(chain)
                   for line in v4)
        assert any(f"-d {a}" in line and line.endswith("ACCEPT") for line in v4)
        assert any("! -d 224.0.0.0/4" in line and line.endswith("MASQUERADE") for line in v4)
        v6lines = iptables_lines(n.name, 6)
        assert any(f"-s {ip6.split('/')[0]}/128" in line for line in v6lines)
        assert any("! -d ff00::/8" in line for line in v6lines)
        assert masq_rules_nft(n.name) == []
    n("del", ns, ours).check()
    assert iptables_lines(n.name) == [] and iptables_lines(n.name, 6) == [] and masq_rules_nft(n.name) == []


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
@pytest.mark.parametrize("how", ["netns-deleted", "no-netns", "iface-gone", "no-cache"])
def test_del_removes_masq_rules_whatever_is_gone(backend, how, ours, net, netns, bridge_name, run_plugin):
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
             "ipMasqBackend": backend, "macspoofchk": True, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    res = n("add", ns, ours).check().json
    cid = n.ids[0]
    assert iptables_lines(n.name) or masq_rules_nft(n.name)
    assert spoof_rules(cid)
    path = ns.path
    if how == "netns-deleted":
        subprocess.run(["ip", "netns", "del", ns.name], check=True)
    elif how == "no-netns":
        path = ""
    elif how == "iface-gone":
        ns.exec("ip", "link", "del", "eth0")
    else:
        for f in (n.state / "cache").rglob("*"):
            if f.is_file():
                f.unlink()
    for _ in range(2):
        n("del", path, ours, container_id=cid).check()
        assert iptables_lines(n.name) == [] and masq_rules_nft(n.name) == []
        assert spoof_rules(cid) == []
        assert not (n.data_dir / n.name / res["ips"][0]["address"].split("/")[0]).exists()
    if how == "no-netns":
        n("del", ns.path, ours, container_id=cid).check()
    assert not link_exists(res["interfaces"][1]["name"])


# ip6tables on a host whose IPv6 nat table cannot be initialised (legacy backend, IPv6 disabled)
_NO_IP6_NAT = {
    "ip6tables-save": "ip6tables-save v1.8.9 (legacy): Cannot initialize: "
                      "Address family not supported by protocol",
    "ip6tables-restore": "ip6tables-restore v1.8.9 (legacy): ip6tables-restore: "
                         "unable to initialize table 'nat'",
}


@pytest.mark.parametrize("verb", ["DEL", "GC"])
def test_masq_removal_skips_unreadable_ipv6_nat(verb, ours, net, netns, run_plugin, bridge_name, state_dir):
    """A family whose nat table cannot be read holds none of our rules: DEL and GC of an IPv4
    attachment succeed there (not fail on every retry) and still remove the IPv4 rules."""
    fake = state_dir / "no-ip6-nat"  # removed with state_dir
    fake.mkdir()
    for tool, message in _NO_IP6_NAT.items():
        (fake / tool).write_text(f"#!/bin/sh\necho \"{message}\" >&2\nexit 1\n")
        (fake / tool).chmod(0o755)
    env = {"PATH": f"{fake}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
             "ipMasqBackend": "iptables", "ipam": hl(unique_subnet_v4())}, "1.1.0")
    ns = netns()
    cid = f"pcb-noip6nat-{verb.lower()}"
    n.ids.append(cid)
    call = dict(cni_path=ours, netns=ns, container_id=cid, extra_env=env)
    res = run_plugin("bridge", "ADD", n.plugin_stdin(), **call).check().json
    from cni.layout.masq import chain_name
    assert f":{chain_name(n.name, cid)} - [0:0]" in iptables_lines(n.name)
    if verb == "DEL":
        out = run_plugin("bridge", "DEL", n.plugin_stdin(prevResult=res), **call).check()
    else:
        out = run_plugin("bridge", "GC", n.plugin_stdin(**{"cni.dev/valid-attachments": []}), cni_path=ours,
                         container_id="", ifname="", extra_env=env).check()
    assert "IPv6 masquerade rules skipped" in out.stderr and "Address family not supported" in out.stderr
    assert iptables_lines(n.name) == []
    assert not (n.data_dir / n.name / res["ips"][0]["address"].split("/")[0]).exists()
    run_plugin("bridge", "DEL", n.plugin_stdin(), **call).check()
    assert not link_exists("eth0", ns)


def test_masq_removal_fails_on_a_passing_iptables_failure(ours, net, netns, run_plugin, bridge_name,
                                                          state_dir):
    """A failure that is not "no nat table here" (a lock or ruleset race, a killed tool) fails DEL, so
    the runtime retries it, instead of reporting success and leaving the rules for good."""
    fake = state_dir / "flaky-iptables"  # removed with state_dir
    fake.mkdir()
    (fake / "iptables-save").write_text(
        "#!/bin/sh\necho 'iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: "
        "Resource temporarily unavailable' >&2\nexit 4\n")
    (fake / "iptables-save").chmod(0o755)
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
             "ipMasqBackend": "iptables", "ipam": hl(unique_subnet_v4())}, "1.1.0")
    ns = netns()
    cid = "pcb-flaky-iptables"
    n.ids.append(cid)
    call = dict(cni_path=ours, netns=ns, container_id=cid)
    res = run_plugin("bridge", "ADD", n.plugin_stdin(), **call).check().json
    flaky = {"PATH": f"{fake}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}
    out = run_plugin("bridge", "DEL", n.plugin_stdin(prevResult=res), **call, extra_env=flaky).expect_error()
    assert "generation id" in out.msg + (out.json.get("details") or "")
    assert iptables_lines(n.name)  # still there: nothing claimed they were removed
    run_plugin("bridge", "DEL", n.plugin_stdin(prevResult=res), **call).check()  # the runtime's retry
    assert iptables_lines(n.name) == []


def test_macspoofchk(ours, net, netns, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "macspoofchk": True, "ipam": hl(unique_subnet_v4())})
    ns = netns()
    res = n("add", ns, ours).check().json
    cid = n.ids[0]
    rules = spoof_rules(cid)
    host, mac = res["interfaces"][1]["name"], res["interfaces"][2]["mac"]
    text = json.dumps(rules)
    assert len(rules) == 4 and host in text and mac in text and '"drop"' in text
    n("del", ns, ours).check()
    assert spoof_rules(cid) == []


# ---- STATUS and GC ---------------------------------------------------------------------------
def test_status(ours, net, run_plugin, bridge_name, tmp_path):
    n = net({"type": "bridge", "bridge": bridge_name, "ipam": hl(unique_subnet_v4())}, "1.1.0")
    run_plugin("bridge", "STATUS", n.plugin_stdin(), cni_path=ours, container_id="", ifname="").check()
    l2 = net({"type": "bridge", "bridge": bridge_name, "ipam": {}}, "1.1.0")
    run_plugin("bridge", "STATUS", l2.plugin_stdin(), cni_path=ours, container_id="", ifname="").check()
    bad = net({"type": "bridge", "bridge": bridge_name, "ipam": {"type": "no-such-ipam"}}, "1.1.0")
    out = run_plugin("bridge", "STATUS", bad.plugin_stdin(), cni_path=ours, container_id="",
                     ifname="").expect_error(7)
    assert out.msg.startswith('failed to find plugin "no-such-ipam" in path') and str(ours) in out.msg


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_gc_removes_stale_masq_rules(backend, ours, net, netns, run_plugin, bridge_name):
    n = net({"type": "bridge", "bridge": bridge_name, "isGateway": True, "ipMasq": True,
             "ipMasqBackend": backend, "ipam": hl(unique_subnet_v4())})
    n.version = "1.1.0"  # GC needs 1.1.0; cnitool (libcni 1.1.2) drives ADD/DEL at 1.0.0
    ns1, ns2 = netns(), netns()
    keep_ip = n("add", ns1, ours).check().json["ips"][0]["address"].split("/")[0]
    stale_ip = n("add", ns2, ours).check().json["ips"][0]["address"].split("/")[0]
    keep, stale = n.ids
    reserved = n.data_dir / n.name
    assert (reserved / keep_ip).exists() and (reserved / stale_ip).exists()
    valid = [{"containerID": keep, "ifname": "eth0"}]
    run_plugin("bridge", "GC", n.plugin_stdin(**{"cni.dev/valid-attachments": valid}), cni_path=ours,
               container_id="", ifname="").check()
    # IPAM GC releases the stale attachment's address and keeps the live one's
    assert not (reserved / stale_ip).exists()
    assert (reserved / keep_ip).read_bytes() == f"{keep}\r\neth0".encode()
    if backend == "nftables":
        assert [r["comment"].rsplit("id: ", 1)[1] for r in masq_rules_nft(n.name)] == [keep]
    else:
        from cni.layout.masq import chain_name
        text = "\n".join(iptables_lines(n.name))
        assert chain_name(n.name, keep) in text and chain_name(n.name, stale) not in text
    n("del", ns1, ours).check()
    n("del", ns2, ours).check()
    assert iptables_lines(n.name) == [] and masq_rules_nft(n.name) == []


# ---- DAD settling (the container side, in a namespace of its own) ---------------------------------
def _tentative_link(ns, up_peer: bool):
    """eth0 in `ns` with an IPv6 address under DAD, up; its peer up (DAD runs) or down (it cannot)."""
    ns.exec("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=1")
    ns.exec("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    ns.exec("sysctl", "-qw", "net.ipv6.conf.eth0.dad_transmits=1")
    ns.exec("ip", "addr", "add", "fd00:5e77:1e::2/64", "dev", "eth0")
    ns.exec("ip", "link", "set", "eth0", "up")
    if up_peer:
        ns.exec("ip", "link", "set", "peer0", "up")


@pytest.mark.parametrize("up_peer", [False, True], ids=["link-down", "link-up"])
def test_settle_waits_for_dad_only_on_a_link_that_is_up(up_peer, netns):
    """DAD cannot finish on a link that is not operationally up: after 5 s the ADD goes on instead
    of failing (the reference since v1.7.0); on a link that is up it waits until DAD is done."""
    import time

    from cni.net import addr
    from cni.net import netns as cni_netns
    from cni.plugins.bridge.container import SETTLE_SECONDS, settle

    ns = netns()
    _tentative_link(ns, up_peer)
    index = json.loads(ns.exec("ip", "-j", "link", "show", "eth0").stdout)[0]["ifindex"]
    with cni_netns.open_handle(ns.path) as h:
        assert any(a.tentative for a in addr.list_addresses(h, index=index, family=6))
        start = time.monotonic()
        settle(h, index, "eth0")
        took = time.monotonic() - start
        left = [a for a in addr.list_addresses(h, index=index, family=6) if a.tentative]
    if up_peer:
        assert took < SETTLE_SECONDS and not left, (took, left)
    else:
        assert took >= SETTLE_SECONDS and left, (took, left)  # still tentative, and no error
