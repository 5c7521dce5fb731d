"""veth.create_pair: the container end named, the host end random, each in its own namespace."""

from __future__ import annotations

import pytest

from cni.net import link, netns, veth
from cni.net.netlink import Handle

from .conftest import NS


def test_pair_across_namespaces(h: Handle, ns: NS, h2: Handle, ns2: NS) -> None:
    """`ns` plays the host (the calling thread is in it), `ns2` the container."""
    with netns.entered(ns.path):
        outer, inner = veth.create_pair(h, h2, "eth0", mtu=1400, mac="02:aa:bb:cc:dd:01")
    assert inner.name == "eth0" and inner.mac == "02:aa:bb:cc:dd:01" and inner.mtu == 1400
    assert outer.name.startswith("veth") and len(outer.name) == 12
    int(outer.name[4:], 16)  # eight hex digits
    host_end = ns.json("ip", "-j", "-d", "link", "show", "dev", outer.name)[0]
    assert host_end["mtu"] == 1400 and host_end["linkinfo"]["info_kind"] == "veth"
    assert link.get_link(h2, "eth0").link == outer.index and link.get_link(h, outer.name).link == inner.index
    with netns.entered(ns.path), pytest.raises(veth.NameTaken):
        veth.create_pair(h, h2, "eth0")
    assert [x.name for x in link.list_links(h) if x.kind == "veth"] == [outer.name]


def test_delete_container_end_removes_both_ends_and_finds_nothing_to_do_again(
        h: Handle, ns: NS, h2: Handle, ns2: NS, tmp_path) -> None:
    """DEL's removal: both ends gone from the kernel; a second call, a missing namespace file and a
    file that is no network namespace are nothing to do (DEL is idempotent)."""
    with netns.entered(ns.path):
        outer, _ = veth.create_pair(h, h2, "eth0")
    veth.delete_container_end(ns2.path, "eth0")
    assert link.get_link(h2, "eth0") is None
    assert link.get_link(h, outer.name) is None
    assert not [x for x in ns.json("ip", "-j", "link", "show") if x["ifname"] == outer.name]
    veth.delete_container_end(ns2.path, "eth0")
    veth.delete_container_end(str(tmp_path / "gone"), "eth0")
    plain = tmp_path / "plain"
    plain.write_text("")
    veth.delete_container_end(str(plain), "eth0")
