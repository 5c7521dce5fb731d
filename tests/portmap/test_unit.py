"""portmap's pure logic: names and comments as the reference makes them, multiport groups, the
config's rules, container addresses from prevResult, and layouts (masqAll as v1.9.1 has it)."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cni.contract.errors import CNIError
from cni.contract.result import Result
from cni.contract.schema import validate
from cni.layout import portmap as layout
from cni.plugins.portmap import config, plan

NAME = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,40}", fullmatch=True)


def _conf(**extra) -> config.PortMapConf:
    raw = {"name": "net", "type": "portmap", **extra}
    return config.load(validate(raw, "portmap"), "iptables")


@given(NAME, NAME)
def test_chain_name_is_the_references_hash(network, cid):
    expected = ("CNI-DN-" + hashlib.sha512((network + cid).encode()).hexdigest())[:28]
    assert layout.dnat_chain(network, cid) == expected and len(expected) == 28


@given(NAME, NAME)
def test_comment_round_trip(network, cid):
    text = layout.comment(network, cid)
    assert text == f'dnat name: "{network}" id: "{cid}"'
    assert layout.parse_comment(text) == (network, cid)


def test_long_comment_is_cut_as_the_reference_cuts_it():
    text = layout.comment("n", "c" * 300)
    assert len(text) == 256 and text.endswith("...") and layout.parse_comment(text) is None


@given(st.lists(st.tuples(st.sampled_from(["tcp", "udp", "sctp"]), st.integers(1, 65535)), max_size=60))
def test_groups_hold_every_port_at_most_15_each(pairs):
    maps = [config.Mapping(host_port=p, container_port=1, protocol=proto, host_ip="", host_ip_version=0)
            for proto, p in pairs]
    groups = plan.host_port_groups(maps)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    assert all(len(ports.split(",")) <= 15 for _, ports in groups)
    for proto in ("tcp", "udp", "sctp"):
        listed = [int(p) for g, ports in groups if g == proto for p in ports.split(",")]
        assert listed == [p for q, p in pairs if q == proto]


def test_keys_fold_as_go_decodes_them():
    conf = _conf(runtimeConfig={"portMappings": [
        {"HostPort": 80, "ContainerPort": 8080, "Protocol": "UDP", "HostIP": "::"}]})
    (m,) = conf.mappings
    got = (m.host_port, m.container_port, m.protocol, m.host_ip, m.host_ip_version)
    assert got == (80, 8080, "udp", "", 6)
    assert not m.applies_to(4) and m.applies_to(6)


def test_defaults():
    conf = _conf()
    got = (conf.snat, conf.masq_all, conf.mark_bit, conf.backend, conf.mappings)
    assert got == (True, False, 13, "iptables", [])
    assert plan.mark(13) == "0x2000/0x2000" and plan.mark(0) == "0x1/0x1"


@pytest.mark.parametrize("extra, words", [
    ({"markMasqBit": 13, "externalSetMarkChain": "X"}, ("externalSetMarkChain", "markMasqBit")),
    ({"backend": "nftables", "externalSetMarkChain": "X"}, ("externalSetMarkChain",)),
    ({"backend": "nftables", "conditionsV6": ["-s", "::1"]}, ("conditionsV6",)),
    ({"conditionsV4": ["ip", "saddr", "10.0.0.1"]}, ("conditionsV4",)),
    ({"conditionsV4": ["-s", "10.0.0.1\n-A INPUT -j DROP"]}, ("conditionsV4[1]",)),
    ({"backend": "nftables", "conditionsV6": ["ip6 saddr ::1; delete table ip6 filter"]},
     ("conditionsV6[0]",)),
])
def test_conflicts_are_code_7_naming_the_keys(extra, words):
    with pytest.raises(CNIError) as e:
        _conf(**extra)
    assert e.value.code == 7 and all(w in str(e.value) for w in words)


def test_container_addresses_follow_the_reference():
    prev = Result.from_json({"cniVersion": "1.0.0",
                             "interfaces": [{"name": "br"}, {"name": "eth0", "sandbox": "/ns"},
                                            {"name": "eth1", "sandbox": "/ns"}],
                             "ips": [{"address": "10.0.0.2/24", "interface": 0},
                                     {"address": "10.0.1.2/24", "interface": 2},
                                     {"address": "10.0.2.2/24", "interface": 1},
                                     {"address": "fd00::2/64"},
                                     {"address": "fd00::3/64", "interface": 1}]}, "1.0.0")
    got = config.container_addresses(prev, "eth0")
    assert got == {4: ipaddress.ip_interface("10.0.2.2/24"), 6: ipaddress.ip_interface("fd00::2/64")}


def test_masq_all_layout_of_v1_9_1():
    """masqAll: the hairpin mark for every source (iptables omits 0.0.0.0/0), no localhost rule."""
    conf = _conf(masqAll=True, runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 8080}]})
    p = plan.iptables_plan(conf, "c", 4, ipaddress.ip_interface("10.0.0.2/24"))
    chain = layout.dnat_chain("net", "c")
    assert p.rules == [f"{chain} -p tcp -m tcp --dport 80 -j CNI-HOSTPORT-SETMARK",
                       f"{chain} -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080"]


def test_add_script_reuses_shared_chains_and_replaces_own_entries():
    conf = _conf(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 8080}]})
    p = plan.iptables_plan(conf, "c", 4, ipaddress.ip_interface("10.0.0.2/24"))
    first = plan.iptables_add_script(p, "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    assert "-N CNI-HOSTPORT-DNAT" in first and "-N CNI-HOSTPORT-SETMARK" in first
    saved = "*nat\n" + "".join(f":{c} - [0:0]\n" for c in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK",
                                                          "CNI-HOSTPORT-MASQ", p.chain))
    saved += "".join(f"-A {c} {r}\n" for c, r, _ in p.shared) + "".join(f"-A {r}\n" for r in p.entries)
    again = plan.iptables_add_script(p, saved + "COMMIT\n")
    assert "-N " not in again and "-I POSTROUTING" not in again
    assert [line for line in again.splitlines() if line.startswith("-D ")] == [f"-D {r}" for r in p.entries]
    assert plan.iptables_missing(p, saved + "".join(f"-A {r}\n" for r in p.rules) + "COMMIT\n") == []


def test_owners_need_the_comment_and_the_hash_to_agree():
    chain = layout.dnat_chain("net", "c")
    good = f'-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"net\\" id: \\"c\\"" -j {chain}'
    forged = good.replace(chain, layout.dnat_chain("net", "other"))
    assert layout.iptables_owners(f"*nat\n{good}\n{forged}\nCOMMIT\n") == {chain: ("net", "c")}
