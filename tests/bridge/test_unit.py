"""Pure parts of the bridge plugin: config rules, gateway planning, firewall names and batches."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.result import IPConfig, Result, Route
from cni.layout import masq as masq_layout
from cni.net.firewall import iptables, masq, spoofcheck
from cni.plugins.bridge import config as bridge_config
from cni.plugins.bridge import gateways as bridge_gateways

REPO = Path(__file__).resolve().parents[2]


def ip(text: str):
    return ipaddress.ip_interface(text)


# ---- config ---------------------------------------------------------------------------------
def test_defaults():
    conf = bridge_config.load({"name": "n"}, {})
    assert conf.bridge == "cni0" and not conf.is_gateway and not conf.ip_masq
    assert conf.mtu is None and conf.access_vlan == 0 and conf.trunk_vlans is None and not conf.layer3
    assert conf.preserve_default_vlan is False  # the reference's default since v1.8.0
    assert not conf.vlan_filtering


@pytest.mark.parametrize("extra, access, trunk, native, drops, filtering", [
    ({"vlan": 7}, 7, None, 7, True, True),
    ({"vlan": 7, "preserveDefaultVlan": True}, 7, None, 7, False, True),
    ({"vlanTrunk": [{"id": 40}]}, 0, [40], 1, True, True),  # a trunk alone: VLAN 1 is native
    ({"vlan": 30, "vlanTrunk": [{"id": 40}]}, 30, [40], 30, True, True),  # vlan is the trunk's native
    ({"vlanTrunk": []}, 0, None, 0, False, True),  # the key alone turns filtering on, as the reference
    ({}, 0, None, 0, False, False),
])
def test_port_vlans(extra, access, trunk, native, drops, filtering):
    conf = bridge_config.load({"name": "n", **extra}, {})
    plan = bridge_config.container_port(conf)
    assert (plan.access_vlan, plan.trunk_vlans, plan.native_vlan) == (access, trunk, native)
    assert plan.drops_default_vlan is drops and conf.vlan_filtering is filtering


def test_default_gateway_implies_gateway():
    conf = bridge_config.load({"name": "n", "isDefaultGateway": True}, {})
    assert conf.is_gateway and conf.is_default_gateway


@pytest.mark.parametrize("items, vids", [
    ([{"id": 101}, {"minID": 200, "maxID": 203}], [101, 200, 201, 202, 203]),
    ([{"id": 5}, {"id": 5}, {"minID": 4, "maxID": 6}], [4, 5, 6]),
    ([{"minID": 4094, "maxID": 4094}], [4094]),
    ([], None),
    (None, None),
])
def test_trunk(items, vids):
    assert bridge_config.collect_trunk(items) == vids


@pytest.mark.parametrize("items, why", [
    ([{"id": 0}], "incorrect trunk id"),
    ([{"id": 4095}], "incorrect trunk id"),
    ([{"minID": 0, "maxID": 5}], "incorrect trunk minID"),
    ([{"minID": 5, "maxID": 4095}], "incorrect trunk maxID"),
    ([{"minID": 10, "maxID": 5}], "minID is greater than maxID"),
    ([{"maxID": 5}], "minID is missing"),
    ([{"minID": 5}], "maxID is missing"),
])
def test_trunk_invalid(items, why):
    with pytest.raises(CNIError) as e:
        bridge_config.collect_trunk(items)
    assert e.value.code == INVALID_CONFIG and why in e.value.msg


@pytest.mark.parametrize("extra, why", [
    ({"hairpinMode": True, "promiscMode": True}, "hairpin mode and promiscuous mode"),
    ({"disableContainerInterface": True, "ipam": {"type": "host-local"}}, "DisableContainerInterface flag"),
    ({"mtu": 67}, "invalid MTU"),
])
def test_exclusive_options(extra, why):
    with pytest.raises(CNIError) as e:
        bridge_config.load({"name": "n", **extra}, {})
    assert e.value.code == INVALID_CONFIG and why in e.value.msg


def test_disable_container_interface_without_ipam_is_fine():
    conf = bridge_config.load({"name": "n", "disableContainerInterface": True, "ipam": {}}, {})
    assert conf.disable_container_interface and not conf.layer3


def test_del_tolerates_what_add_refuses():
    conf = bridge_config.load({"name": "n", "hairpinMode": True, "promiscMode": True, "ipMasq": True,
                               "runtimeConfig": {"mac": "nonsense"}}, {}, for_add=False)
    assert conf.ip_masq


def test_mac_precedence():
    cfg = {"name": "n", "runtimeConfig": {"mac": "02:00:00:00:00:01"},
           "args": {"cni": {"mac": "02:00:00:00:00:02"}}}
    args = {"MAC": "02:00:00:00:00:03"}
    assert bridge_config.load(cfg, args).mac == "02:00:00:00:00:01"
    del cfg["runtimeConfig"]
    assert bridge_config.load(cfg, args).mac == "02:00:00:00:00:02"
    del cfg["args"]
    assert bridge_config.load(cfg, args).mac == "02:00:00:00:00:03"
    assert bridge_config.load(cfg, {}).mac is None


@pytest.mark.parametrize("mac", ["zz:00:00:00:00:01", "02:00:00:00:00", "01:00:5e:00:00:01"])
def test_bad_mac(mac):
    with pytest.raises(CNIError) as e:
        bridge_config.load({"name": "n", "args": {"cni": {"mac": mac}}}, {})
    assert e.value.code == INVALID_CONFIG and "args.cni.mac" in e.value.msg


def test_mac_normalised():
    assert bridge_config.normalize_mac("02-AB-00-00-00-01", "x") == "02:ab:00:00:00:01"


def test_dns_override_only_when_set():
    assert bridge_config.dns_override({"dns": {}}) is None
    assert bridge_config.dns_override({"dns": {"nameservers": ["1.1.1.1"]}}) == {"nameservers": ["1.1.1.1"]}
    assert bridge_config.dns_override({"dns": {"domain": "x"}}) == {"domain": "x"}


# ---- gateways ------------------------------------------------------------------------------
# The IPAM answer's addresses are `cni.addrtext` values (canonical text) or `ipaddress` objects
# (other text a foreign IPAM printed): the plan reads both alike.
def _addrtext_kind():
    from cni import addrtext
    return addrtext.parse_cidr, addrtext.parse_ip, addrtext.parse_network


def _ipaddress_kind():
    return ipaddress.ip_interface, ipaddress.ip_address, ipaddress.ip_network


KINDS = pytest.mark.parametrize("kind", [_addrtext_kind, _ipaddress_kind], ids=["addrtext", "ipaddress"])


def _texts(gws):
    return {family: [str(g) for g in found] for family, found in gws.items()}


@KINDS
def test_plan_fills_gateway_and_default_routes(kind):
    cidr, _, _ = kind()
    r = Result(ips=[IPConfig(address=cidr("10.1.0.5/24")), IPConfig(address=cidr("2001:db8::5/64"))])
    gws = bridge_gateways.plan(r, True, True)
    assert [i.interface for i in r.ips] == [2, 2]
    assert str(r.ips[0].gateway) == "10.1.0.1" and str(r.ips[1].gateway) == "2001:db8::1"
    assert _texts(gws) == {4: ["10.1.0.1/24"], 6: ["2001:db8::1/64"]}
    assert [(str(x.dst), str(x.gw)) for x in r.routes] == [("0.0.0.0/0", "10.1.0.1"),
                                                           ("::/0", "2001:db8::1")]


@KINDS
def test_plan_keeps_ipam_default_route_and_gateway(kind):
    cidr, address, network = kind()
    r = Result(ips=[IPConfig(address=cidr("10.1.0.5/24"), gateway=address("10.1.0.254"))],
               routes=[Route(dst=network("0.0.0.0/0"), gw=address("10.1.0.9"))])
    gws = bridge_gateways.plan(r, True, True)
    assert _texts(gws) == {4: ["10.1.0.254/24"], 6: []}
    assert len(r.routes) == 1


@KINDS
def test_plan_adds_a_default_route_when_ipam_has_one_without_gateway_or_of_the_other_family(kind):
    cidr, address, network = kind()
    r = Result(ips=[IPConfig(address=cidr("10.1.0.5/24")), IPConfig(address=cidr("fd00::5/64"))],
               routes=[Route(dst=network("0.0.0.0/0")), Route(dst=network("::/0"), gw=address("fd00::9")),
                       Route(dst=network("10.9.0.0/16"), gw=address("10.1.0.7"))])
    bridge_gateways.plan(r, True, True)
    assert [(str(x.dst), str(x.gw)) for x in r.routes][3:] == [("0.0.0.0/0", "10.1.0.1")]


@KINDS
def test_plan_gives_one_bridge_address_per_gateway(kind):
    cidr, _, _ = kind()
    r = Result(ips=[IPConfig(address=cidr("10.1.0.5/24")), IPConfig(address=cidr("10.1.0.6/24")),
                    IPConfig(address=cidr("10.1.1.6/23"))])
    assert _texts(bridge_gateways.plan(r, True, False)) == {4: ["10.1.0.1/24", "10.1.0.1/23"], 6: []}


def test_plan_without_gateway():
    r = Result(ips=[IPConfig(address=ip("10.1.0.5/24"))])
    assert bridge_gateways.plan(r, False, False) == {4: [], 6: []}
    assert r.ips[0].gateway is None and not r.routes


def test_first_gateways():
    ips = [IPConfig(address=ip("10.1.0.5/24"), gateway=ipaddress.ip_address("10.1.0.1")),
           IPConfig(address=ip("10.2.0.5/24"), gateway=ipaddress.ip_address("10.2.0.1"))]
    assert bridge_gateways.first_gateways(ips) == {4: ipaddress.ip_address("10.1.0.1")}


# ---- firewall names and batches ---------------------------------------------------------------
def test_chain_names_match_the_reference():
    # values from the reference's own unit tests (pkg/utils)
    assert masq_layout.chain_name("test", "1234") == "CNI-2bbe0c48b91a7d1b8a6753a8"
    long_name = "testalongnamethatdoesnotmakesense"
    assert masq_layout.chain_name(long_name, "1234") == "CNI-374f33fe84ab0ed84dcdebe3"
    assert masq_layout.comment("net", "cid") == 'name: "net" id: "cid"'


def test_nft_comment():
    c = masq_layout.nft_comment("net", "eth0", "cid")
    assert c.startswith(masq_layout.nft_network_hash("net") + "-")
    assert c.endswith(", net: net, if: eth0, id: cid")
    assert len(masq_layout.nft_comment("n" * 200, "eth0", "cid")) == 128


def test_iptables_script():
    s = masq.iptables_script([ip("10.1.0.5/24")], "net", "cid")
    chain = masq_layout.chain_name("net", "cid")
    assert s.splitlines() == [
        "*nat", f":{chain} - [0:0]",
        f'-A {chain} -d 10.1.0.0/24 -m comment --comment "name: \\"net\\" id: \\"cid\\"" -j ACCEPT',
        f'-A {chain} ! -d 224.0.0.0/4 -m comment --comment "name: \\"net\\" id: \\"cid\\"" -j MASQUERADE',
        f'-A POSTROUTING -s 10.1.0.5/32 -m comment --comment "name: \\"net\\" id: \\"cid\\"" -j {chain}',
        "COMMIT"]


SAVE = """# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:{a} - [0:0]
:{b} - [0:0]
-A POSTROUTING -s 10.1.0.5/32 -m comment --comment "name: \\"net\\" id: \\"one\\"" -j {a}
-A POSTROUTING -s 10.1.0.6/32 -m comment --comment "name: \\"net\\" id: \\"two\\"" -j {b}
-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE
-A {a} -d 10.1.0.0/24 -m comment --comment "name: \\"net\\" id: \\"one\\"" -j ACCEPT
-A {b} -d 10.1.0.0/24 -m comment --comment "name: \\"net\\" id: \\"two\\"" -j ACCEPT
COMMIT
"""


def _save():
    a, b = masq_layout.chain_name("net", "one"), masq_layout.chain_name("net", "two")
    return SAVE.format(a=a, b=b), a, b


def test_iptables_teardown_finds_rules_without_addresses():
    save, a, _b = _save()
    script = iptables.remove_chains_script(save, {a})
    assert script.splitlines() == [
        "*nat", f'-D POSTROUTING -s 10.1.0.5/32 -m comment --comment "name: \\"net\\" id: \\"one\\"" -j {a}',
        f"-F {a}", f"-X {a}", "COMMIT"]
    assert iptables.remove_chains_script(save, {"CNI-nothere"}) is None


def test_iptables_owners():
    save, a, b = _save()
    assert masq_layout.owners(save) == {a: [("net", "one")], b: [("net", "two")]}


def test_nft_script():
    s = masq.nft_script([ip("10.1.0.5/24"), ip("2001:db8::5/64")], "net", "eth0", "cid", [7])
    assert "delete rule inet cni_plugins_masquerade masq_checks handle 7" in s
    assert "ip saddr == 10.1.0.5 ip daddr != 10.1.0.0/24 masquerade" in s
    assert "ip6 saddr == 2001:db8::5 ip6 daddr != 2001:db8::/64 masquerade" in s
    assert "type nat hook postrouting priority srcnat" in s


def test_spoofcheck_script_and_teardown():
    s = spoofcheck.setup_script("veth1", "02:00:00:00:00:01", "cid", "eth0")
    assert 'add rule bridge nat PREROUTING iifname "veth1" jump cni-br-iface-cid-eth0' in s
    assert "ether saddr 02:00:00:00:00:01 return" in s
    listing = json.dumps({"nftables": [
        {"chain": {"name": "PREROUTING"}}, {"chain": {"name": "cni-br-iface-cid-eth0"}},
        {"chain": {"name": "cni-br-iface-cid-eth0-mac"}},
        {"rule": {"chain": "PREROUTING", "handle": 4, "comment": "macspoofchk-cid-eth0"}},
        {"rule": {"chain": "PREROUTING", "handle": 5, "comment": "macspoofchk-other-eth0"}},
    ]})
    t = spoofcheck.teardown_script(listing, "cid", "eth0")
    assert "handle 4" in t and "handle 5" not in t
    assert "delete chain bridge nat cni-br-iface-cid-eth0-mac" in t
    assert spoofcheck.teardown_script(json.dumps({"nftables": []}), "cid", "eth0") is None


# ---- schema ---------------------------------------------------------------------------------
def test_schema_is_valid_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "conf/schemas/bridge.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for key, prop in schema["properties"].items():
        assert prop.get("description"), key


def test_example_conflist_validates():
    from cni.contract import schema

    example = json.loads((REPO / "conf/examples/10-pycni-cbr0.conflist").read_text())
    assert example["cniVersion"] == "1.1.0"
    assert [p["type"] for p in example["plugins"]][:2] == ["loopback", "bridge"]
    bridge = example["plugins"][1]
    cfg = schema.validate({"name": example["name"], "cniVersion": "1.1.0", **bridge}, "bridge")
    conf = bridge_config.load(cfg, {})
    assert conf.bridge == "cbr0" and conf.is_gateway and conf.ipam_type == "host-local"
