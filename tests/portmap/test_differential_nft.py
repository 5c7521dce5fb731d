"""Our portmap next to the reference v1.9.1 on the nftables backend, on one emulated node: the same
request gives the same `ip`/`ip6 cni_hostport` tables (read back with `nft -j list table`), once
the pod's addresses are named and what docs/plugins/portmap.md lists under "Differences from
the reference v1.9.1" is set aside: our owner chain `pycni_owners_*`, and the masquerade's
source (the pod's subnet where v1.9.1 takes the pod itself). Each one's DEL removes the other's
ADD, and each one's CHECK accepts the other's rules.
"""

from __future__ import annotations

import json

import pytest
from helpers import unique_name

pytestmark = pytest.mark.root


def _m(host, cont, proto="tcp", host_ip=""):
    return {"hostPort": host, "containerPort": cont, "protocol": proto, "hostIP": host_ip}


CASES = {
    "tcp-udp": ({}, lambda node: [_m(19080, 80), _m(19053, 53, "udp"), _m(19054, 54, "sctp")]),
    "host-ip": ({}, lambda node: [_m(19082, 82, host_ip=node.ip4), _m(19083, 83, host_ip=node.ip6),
                                  _m(19084, 84, host_ip="0.0.0.0"), _m(19085, 85, host_ip="::")]),
    "no-snat": ({"snat": False}, lambda node: [_m(19086, 86), _m(19087, 87, "udp")]),
    "conditions": ({"conditionsV4": ["ip", "saddr", "198.51.100.0/24"],
                    "conditionsV6": ["ip6", "saddr", "!=", "2001:db8:1::/48"]}, lambda node: [_m(19090, 90)]),
}


def _normalise(value, pod):
    """The pod's addresses named; the subnet of a masquerade's source made the pod's address."""
    text = json.dumps(value)
    return json.loads(text.replace(f'"{pod.ip6}"', '"<pod6>"').replace(f'"{pod.ip4}"', '"<pod4>"'))


def _table(node, pod, family: str) -> list[dict]:
    """The table's chains and rules without handles, our owner chain and the masquerade source."""
    listing = node.nft(family)
    if listing is None:
        return []
    out = []
    for item in listing["nftables"]:
        kind, body = next(iter(item.items()))
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if body.get("name", body.get("chain", "")).startswith("pycni_owners_"):
            continue
        if kind == "rule" and body.get("chain") == "masquerading":
            exprs = body["expr"]
            body["expr"] = [e for e in exprs if not (e.get("match", {}).get("left", {}).get("payload", {})
                                                     .get("field") == "saddr"
                                                     and e["match"]["right"] not in ("127.0.0.1",))]
        out.append({kind: _normalise(body, pod)})
    return out


def _state(node, pod) -> dict:
    return {family: _table(node, pod, family) for family in ("ip", "ip6")}


def _drop_tables(node) -> None:
    for family in ("ip", "ip6"):
        node.sh("nft", "delete", "table", family, "cni_hostport", check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_tables_and_cross_del(case, node, pods):
    portmap, mappings = CASES[case]
    net = pods.network({"backend": "nftables", **portmap})
    cid = unique_name("pmnft", 10)
    states = {}
    for add_impl, other in (("ours", "ref"), ("ref", "ours")):
        pod = pods(mappings(node), net=net, impl=add_impl, cid=cid)
        states[add_impl] = _state(node, pod)
        for checker in ("ours", "ref"):
            checked = pod.run("check", pods.dirs[checker])
            assert checked.ok, f"{checker}'s CHECK of {add_impl}'s ADD: {checked.stdout} {states}"
        pod.run("del", pods.dirs[other]).check()
        pod.deleted = True
        left = [r for fam in ("ip", "ip6") for r in _table(node, pod, fam)
                if "rule" in r and r["rule"].get("comment") == cid]
        assert not left, f"{other}'s DEL left {add_impl}'s rules: {left}"
        _drop_tables(node)
    assert states["ours"] == states["ref"], json.dumps(states)
    assert any("dnat" in json.dumps(r) for r in states["ours"]["ip"])


def test_masquerade_source_is_the_pods_subnet(node, pods):
    """The one listed difference in the rules: v1.9.1 masquerades only the pod's own hairpin."""
    net = pods.network({"backend": "nftables"})
    seen = {}
    for impl in ("ours", "ref"):
        pod = pods([_m(19091, 91)], net=net, impl=impl)
        listing = node.nft("ip")["nftables"]
        sources = [e["match"]["right"] for i in listing if i.get("rule", {}).get("chain") == "masquerading"
                   and i["rule"].get("comment") == pod.cid for e in i["rule"]["expr"]
                   if e.get("match", {}).get("left", {}).get("payload", {}).get("field") == "saddr"]
        seen[impl] = sorted(json.dumps(s) for s in sources)
        pod.run("del").check()
        pod.deleted = True
        _drop_tables(node)
    subnet = net[2]["v4"]
    assert seen["ours"] == sorted([json.dumps("127.0.0.1"), json.dumps(
        {"prefix": {"addr": str(subnet.network_address), "len": subnet.prefixlen}})])
    assert len(seen["ref"]) == 2 and json.dumps("127.0.0.1") in seen["ref"]


def test_masq_all_is_honoured_where_the_reference_ignores_it(node, pods):
    """Listed difference: v1.9.1's nftables backend ignores `masqAll`; ours masquerades every
    source towards the pod (one rule, no localhost rule needed)."""
    rules = {}
    for impl in ("ours", "ref"):
        for masq_all in (False, True):
            net = pods.network({"backend": "nftables", "masqAll": masq_all})
            pod = pods([_m(19092, 92)], net=net, impl=impl)
            rules[impl, masq_all] = [{k: v for k, v in r["rule"].items() if k != "comment"}
                                     for r in _table(node, pod, "ip")
                                     if r.get("rule", {}).get("chain") == "masquerading"]
            raw = [i["rule"] for i in node.nft("ip")["nftables"]
                   if i.get("rule", {}).get("chain") == "masquerading"]
            if impl == "ours" and masq_all:
                (only,) = raw
                assert not [e for e in only["expr"] if e.get("match", {}).get("left", {}).get("payload", {})
                            .get("field") == "saddr" and e["match"]["right"] != {"prefix": {"addr": "0.0.0.0",
                                                                                             "len": 0}}], only
            pod.run("del").check()
            pod.deleted = True
            _drop_tables(node)
    assert rules["ref", True] == rules["ref", False] and len(rules["ref", True]) == 2
    assert len(rules["ours", False]) == 2 and len(rules["ours", True]) == 1
