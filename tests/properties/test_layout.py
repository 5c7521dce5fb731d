"""What pycni writes on a host reads back as written, and a shared name is never taken for a shared
owner: for any two attachments whose (network, container ID) run together to the same text, the
chain and the IFB have one name, and the comments and tags still tell them apart."""

from __future__ import annotations

import ipaddress

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cni.layout import bandwidth, iptables_save, masq
from cni.net.firewall import iptables
from cni.net.firewall import masq as masq_rules

# libcni's rule for network names and container IDs, and anything at all (the reader must not care)
NAMED = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=3, max_size=80)
ANY = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=1000, deadline=None)
@given(network=ANY, container_id=ANY)
def test_comment_read_back_through_a_save(network, container_id):
    """Written by Go's %q, quoted as iptables-save quotes it, read by the one walker: the owner."""
    text = masq.comment(network, container_id)
    assume("\n" not in text and "\r" not in text)
    save = f"*nat\n-A POSTROUTING -m comment --comment {iptables.quote(text)} -j CNI-x\nCOMMIT\n"
    rule = iptables_save.rules(save)[0]
    assert masq.parse_comment(rule.comment() or "") == (network, container_id)
    assert rule.target() == "CNI-x"


def _collision(text: str, data: st.DataObject) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two different (network, container ID) splits of one text."""
    i, j = sorted(data.draw(st.lists(st.integers(1, len(text) - 1), min_size=2, max_size=2, unique=True)))
    return (text[:i], text[i:]), (text[:j], text[j:])


@settings(max_examples=300, deadline=None)
@given(text=NAMED, data=st.data())
def test_colliding_attachments_are_told_apart(text, data):
    a, b = _collision(text, data)
    assert masq.chain_name(*a) == masq.chain_name(*b) and bandwidth.ifb_name(*a) == bandwidth.ifb_name(*b)
    script = masq_rules.iptables_script([ipaddress.ip_interface("10.1.0.5/24")], *a)
    recorded = masq.chain_owners(script)[masq.chain_name(*a)]
    assert recorded and not masq.foreign(recorded, a)
    assert masq.foreign(recorded, b) == recorded  # b's DEL or ADD must leave a's chain alone
    alias = bandwidth.ifb_alias(*a)
    assert bandwidth.owned_by(alias, *a) is True
    assert bandwidth.owned_by(alias, *b) is False
    assert masq.nft_comment(a[0], "eth0", a[1]) != masq.nft_comment(b[0], "eth0", b[1])


@settings(max_examples=500, deadline=None)
@given(network=NAMED, container_id=NAMED)
def test_ifb_tag_read_back(network, container_id):
    alias = bandwidth.ifb_alias(network, container_id)
    assert alias is not None
    tag = bandwidth.parse_alias(alias)
    assert tag is not None and tag.network == network and tag.container_id in (None, container_id)
