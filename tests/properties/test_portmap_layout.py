"""cni.layout.portmap: what one attachment's DEL, ADD or GC selects is its own and nothing else.

The nft rules are built as `nft -j list table` prints them: DNAT and masquerade rules commented
with the bare container ID (v1.9.1's layout), pycni's markers in each network's owner chain. Any
mix of attachments (one container ID on several networks and interfaces, some made by v1.9.1
without a marker) is drawn; the selection of each is checked against who made what.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cni.layout import portmap as layout
from cni.layout.iptables_save import quote

NAMES = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,12}", fullmatch=True)
IFNAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)


def _match(protocol: str, field: str, right: object) -> dict:
    payload = {"payload": {"protocol": protocol, "field": field}}
    return {"match": {"op": "==", "left": payload, "right": right}}


def _dnat(handle: int, cid: str, ip: str, port: int) -> dict:
    return {"family": "ip", "table": layout.NFT_TABLE, "chain": "hostports", "handle": handle,
            "comment": cid, "expr": [
                _match("tcp", "dport", port),
                {"dnat": {"addr": ip, "port": 80}}]}


def _masq(handle: int, cid: str, ip: str) -> dict:
    return {"family": "ip", "table": layout.NFT_TABLE, "chain": "masquerading", "handle": handle,
            "comment": cid, "expr": [
                _match("ip", "saddr", {"prefix": {"addr": ip, "len": 24}}),
                _match("ip", "daddr", ip),
                {"masquerade": None}]}


def _marker(handle: int, network: str, cid: str, ifname: str, ip: str) -> dict:
    return {"family": "ip", "table": layout.NFT_TABLE, "chain": layout.nft_owner_chain(network),
            "handle": handle, "comment": layout.nft_marker_comment(cid, ifname), "expr": [
                _match("ip", "daddr", ip),
                {"counter": {"packets": 0, "bytes": 0}}]}


# attachments: (network index, container index, ifname, made by pycni?)
ATTACHMENTS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.sampled_from(["eth0", "eth1"]),
                                 st.booleans()),
                       min_size=1, max_size=6, unique_by=lambda a: a[:3])

THREE_NETWORKS = st.lists(NAMES, min_size=3, max_size=3, unique=True)
TWO_IDS = st.lists(NAMES, min_size=2, max_size=2, unique=True)


def _world(networks: list[str], cids: list[str], attachments: list) -> tuple[list[dict], dict]:
    """The table's rules and, per attachment, the handles it made."""
    rules: list[dict] = []
    made: dict[tuple[str, str, str], set[tuple[str, int]]] = {}
    handle = 10
    for n, (net_i, cid_i, ifname, ours) in enumerate(attachments):
        net, cid, ip = networks[net_i], cids[cid_i], f"10.0.{n}.5"
        mine = [_dnat(handle, cid, ip, 18000 + n), _masq(handle + 1, cid, ip)]
        if ours:
            mine.append(_marker(handle + 2, net, cid, ifname, ip))
        handle += 3
        rules += mine
        made[(net, cid, ifname)] = {(r["chain"], r["handle"]) for r in mine}
    return rules, made


@settings(max_examples=300)
@given(THREE_NETWORKS, TWO_IDS, ATTACHMENTS)
def test_a_marked_attachment_selects_exactly_its_own(networks, cids, attachments):
    rules, made = _world(networks, cids, attachments)
    for net_i, cid_i, ifname, ours in attachments:
        key = (networks[net_i], cids[cid_i], ifname)
        picked = set(layout.nft_attachment(rules, *key))
        if ours:
            assert picked == made[key]
        else:
            # no marker (v1.9.1's ADD): its own rules, and never a marked attachment's
            assert made[key] <= picked
            marked = set().union(*(made[(networks[a[0]], cids[a[1]], a[2])] for a in attachments if a[3]))
            assert not picked & marked


@settings(max_examples=300)
@given(THREE_NETWORKS, TWO_IDS, ATTACHMENTS)
def test_gc_of_one_network_lists_only_its_markers(networks, cids, attachments):
    rules, _ = _world(networks, cids, attachments)
    for i, net in enumerate(networks):
        assert layout.nft_marked(rules, net) == {(cids[c], ifn) for n, c, ifn, ours in attachments
                                                  if ours and n == i}


@settings(max_examples=500)
@given(NAMES, NAMES)
def test_comment_names_its_owner_and_colliding_names_are_told_apart(network, cid):
    assert layout.parse_comment(layout.comment(network, cid)) == (network, cid)
    # (network + "1", cid) and (network, "1" + cid): one chain name, two owners
    chain = layout.dnat_chain(network + "1", cid)
    assert chain == layout.dnat_chain(network, "1" + cid)
    other = quote(layout.comment(network, "1" + cid))
    entry = f"{layout.DNAT_CHAIN} -p tcp -m comment --comment {other} -m multiport --dports 80 -j {chain}"
    save = f"*nat\n:{layout.DNAT_CHAIN} - [0:0]\n:{chain} - [0:0]\n-A {entry}\nCOMMIT\n"
    assert layout.foreign_owners(save, network + "1", cid) == {(network, "1" + cid)}
    assert layout.foreign_owners(save, network, "1" + cid) == set()


@settings(max_examples=300)
@given(st.sampled_from([layout.SET_BY_PYCNI, layout.SET_BY_OTHER]),
       st.sets(st.tuples(NAMES, NAMES, IFNAMES), max_size=5),
       st.integers(1, 2**32), st.integers(1, 2**31), IFNAMES | st.just("br-x.100"))
def test_localnet_records_read_back(set_by, attachments, inode, index, ifname):
    keys = {layout.attachment_key(*a) for a in attachments}
    assert len(keys) == len(attachments)
    assert layout.parse_localnet_record(layout.localnet_record(set_by, keys)) == (set_by, keys)
    name = layout.localnet_record_name(inode, index, ifname)
    assert layout.parse_localnet_record_name(name) == (inode, index, ifname)
    for net, cid, ifn in attachments:
        assert layout.attachment_key(net, cid, ifn).startswith(layout.network_key(net) + "-")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_a_damaged_record_is_never_read_as_ours(data):
    """Whatever the file holds, only a record whose first line says pycni can turn the value off."""
    set_by, _ = layout.parse_localnet_record(data)
    assert set_by == layout.SET_BY_OTHER or data.split(b"\n")[0] == layout.SET_BY_PYCNI.encode()
