"""Links, bridges, veths, IFBs and bridge ports, read back with `ip -j -d link` and `bridge -j`."""

from __future__ import annotations

import errno
import struct

import pytest

from cni.net import bridge_port, link
from cni.net import netlink as nl
from cni.net.netlink import Handle

from .conftest import NS


def test_get_link_and_list_links(h: Handle, ns: NS) -> None:
    lo = link.get_link(h, "lo")
    assert lo is not None
    assert (lo.index, lo.name, lo.kind, lo.mac, lo.mtu) == (1, "lo", "", "00:00:00:00:00:00", 65536)
    assert link.get_link(h, 1) == lo
    assert link.get_link(h, "nosuch0") is None
    assert link.get_link(h, 4242) is None
    assert link.get_link(h, "x" * 16) is None  # longer than IFNAMSIZ: cannot exist
    link.create_ifb(h, "ifb7")
    listed = {x.name: x for x in link.list_links(h)}
    kernel = {x["ifname"]: x for x in ns.json("ip", "-j", "link", "show")}
    assert set(listed) == set(kernel) == {"lo", "ifb7"}
    for name, x in listed.items():
        assert x.index == kernel[name]["ifindex"]
        assert x.mac == kernel[name]["address"]
        assert x.mtu == kernel[name]["mtu"]
        assert x.operstate == kernel[name]["operstate"].lower()


def test_create_bridge(h: Handle, ns: NS) -> None:
    br = link.create_bridge(h, "cni0", mtu=1400, up=True)
    k = ns.link("cni0")
    assert k["linkinfo"]["info_kind"] == "bridge"
    assert k["mtu"] == 1400 and "UP" in k["flags"]
    assert k["linkinfo"]["info_data"]["vlan_filtering"] == 0
    assert (br.name, br.kind, br.index, br.mtu, br.up) == ("cni0", "bridge", k["ifindex"], 1400, True)
    assert br.mac == k["address"] and br.mac == br.mac.lower() and len(br.mac) == 17
    assert br.vlan_filtering is False and br.master is None and not br.promisc
    with pytest.raises(FileExistsError) as info:
        link.create_bridge(h, "cni0")
    assert info.value.errno == errno.EEXIST and "create bridge cni0" in str(info.value)
    link.create_ifb(h, "notbr")
    with pytest.raises(FileExistsError):
        link.create_bridge(h, "notbr")  # taken by something else: the caller checks .kind
    assert link.get_link(h, "notbr").kind == "ifb"


def test_bridge_vlan_filtering(h: Handle, ns: NS, vlan_filtering_supported: bool) -> None:
    if not vlan_filtering_supported:
        with pytest.raises(OSError) as info:
            link.create_bridge(h, "brv", vlan_filtering=True)
        assert info.value.errno == errno.EOPNOTSUPP and "VLAN filtering" in str(info.value)
        pytest.skip("kernel without CONFIG_BRIDGE_VLAN_FILTERING (the clear error was checked)")
    br = link.create_bridge(h, "brv", vlan_filtering=True)
    assert br.vlan_filtering is True
    assert ns.link("brv")["linkinfo"]["info_data"]["vlan_filtering"] == 1


def test_create_veth_with_peer_in_another_namespace(
    h: Handle, ns: NS, h2: Handle, ns2: NS, ns2_fd: int
) -> None:
    cont = link.create_veth(
        h,
        "eth0",
        "vethabc",
        peer_netns_fd=ns2_fd,
        mtu=1450,
        mac="0A:58:0A:01:00:05",
        peer_mac="02:aa:bb:cc:dd:ee",
    )
    host = link.get_link(h2, "vethabc")
    assert host is not None and link.get_link(h, "vethabc") is None
    k_cont, k_host = ns.link("eth0"), ns2.link("vethabc")
    assert k_cont["linkinfo"]["info_kind"] == k_host["linkinfo"]["info_kind"] == "veth"
    assert (k_cont["mtu"], k_host["mtu"]) == (1450, 1450)
    assert k_cont["address"] == cont.mac == "0a:58:0a:01:00:05"
    assert k_host["address"] == host.mac == "02:aa:bb:cc:dd:ee"
    # Each end names its peer by ifindex in the peer's namespace, plus a netnsid.
    assert cont.kind == "veth" and cont.link == host.index and host.link == cont.index
    assert cont.link_netnsid is not None and host.link_netnsid is not None
    assert k_cont["link_netnsid"] == cont.link_netnsid
    assert not cont.up and cont.operstate == "down"


def test_create_veth_same_namespace_and_eexist(h: Handle, ns: NS) -> None:
    a = link.create_veth(h, "va", "vb", up=True)
    b = link.get_link(h, "vb")
    assert a.link == b.index and b.link == a.index and a.link_netnsid is None
    assert a.up and not b.up
    assert ns.link("va")["link"] == "vb"
    with pytest.raises(FileExistsError):
        link.create_veth(h, "vc", "vb")
    assert link.get_link(h, "vc") is None  # nothing half-created


@pytest.mark.parametrize("peer_txqlen, want", [(None, 1000), (0, 0), (5, 5)])
def test_create_veth_peer_txqlen(h: Handle, ns: NS, peer_txqlen: int | None, want: int) -> None:
    """The peer's queue length is the kernel's default unless given (bridge gives its host ends 0,
    as the reference); the local end keeps the default either way."""
    v = link.create_veth(h, "tq0", "tq1", peer_txqlen=peer_txqlen)
    assert v.txqlen == ns.link("tq0")["txqlen"] == 1000
    assert link.get_link(h, "tq1").txqlen == ns.link("tq1").get("txqlen", 0) == want


def test_create_ifb(h: Handle, ns: NS) -> None:
    ifb = link.create_ifb(h, "bwp0123456789a", mtu=1400, txqlen=0, up=True)
    k = ns.link("bwp0123456789a")
    assert k["linkinfo"]["info_kind"] == "ifb" and ifb.kind == "ifb"
    assert k["mtu"] == ifb.mtu == 1400
    assert k.get("txqlen", 0) == ifb.txqlen == 0  # iproute2 omits a zero txqlen
    ns.exec("ip", "link", "add", "plain0", "type", "ifb")
    assert ns.link("plain0")["txqlen"] > 0  # what the kernel would have chosen
    assert "UP" in k["flags"] and ifb.up
    assert "ifalias" not in k and ifb.alias == ""


def test_create_ifb_with_alias(h: Handle, ns: NS) -> None:
    """The alias is on the device from the moment it has its name; nothing temporary stays."""
    tag = "pycni-bandwidth network=net-a container=c0"
    ifb = link.create_ifb(h, "bwpalias000001", mtu=1300, txqlen=1000, up=True, alias=tag)
    k = ns.link("bwpalias000001")
    assert k["ifalias"] == ifb.alias == tag
    assert k["linkinfo"]["info_kind"] == "ifb" and k["mtu"] == 1300 and k["txqlen"] == 1000
    assert "UP" in k["flags"] and ifb.up and ifb.name == "bwpalias000001"
    assert {x.alias for x in link.list_links(h) if x.name == "bwpalias000001"} == {tag}
    down = link.create_ifb(h, "bwpalias000002", alias="x")
    assert not down.up and ns.link("bwpalias000002")["ifalias"] == "x"
    with pytest.raises(FileExistsError):
        link.create_ifb(h, "bwpalias000001", alias="other")
    assert ns.link("bwpalias000001")["ifalias"] == tag
    names = {x["ifname"] for x in ns.json("ip", "-j", "link", "show")}
    assert names == {"lo", "bwpalias000001", "bwpalias000002"}  # no temporary device left


def test_set_link_each_property(h: Handle, ns: NS, h2: Handle, ns2: NS, ns2_fd: int) -> None:
    br = link.create_bridge(h, "br0")
    v = link.create_veth(h, "v0", "v1")
    link.set_link(h, v.index, mtu=1300, mac="02:00:00:00:00:01", txqlen=10)
    k = ns.link("v0")
    assert (k["mtu"], k["address"], k["txqlen"]) == (1300, "02:00:00:00:00:01", 10)
    link.set_link(h, v.index, up=True, master=br.index, promisc=True)
    k = ns.link("v0")
    assert "UP" in k["flags"] and k["master"] == "br0" and "PROMISC" in k["flags"]
    got = link.get_link(h, v.index)
    assert got.up and got.master == br.index and got.promisc and got.slave_kind == "bridge"
    link.set_link(h, v.index, master=0, promisc=False, up=False)  # master 0: nomaster
    k = ns.link("v0")
    assert "master" not in k and "PROMISC" not in k["flags"] and "UP" not in k["flags"]
    link.set_link(h, v.index, name="renamed0")
    assert ns.link("renamed0")["ifindex"] == v.index
    # Move to another namespace, renaming and bringing it up there in the same message.
    link.set_link(h, v.index, netns_fd=ns2_fd, name="moved0", up=True)
    assert link.get_link(h, "renamed0") is None
    moved = link.get_link(h2, "moved0")
    assert moved is not None and moved.up
    assert ns2.link("moved0")["linkinfo"]["info_kind"] == "veth"
    peer = link.get_link(h, "v1")
    assert peer.link == moved.index and peer.link_netnsid is not None


def test_set_link_errors(h: Handle) -> None:
    with pytest.raises(OSError) as info:
        link.set_link(h, 4242, up=True)
    assert info.value.errno == errno.ENODEV
    with pytest.raises(ValueError):
        link.set_link(h, 1, mac="zz")


def test_delete_link(h: Handle, ns: NS) -> None:
    v = link.create_veth(h, "d0", "d1")
    link.delete_link(h, v.index)
    names = {x["ifname"] for x in ns.json("ip", "-j", "link", "show")}
    assert names == {"lo"}  # the peer went with it
    with pytest.raises(OSError) as info:
        link.delete_link(h, v.index)
    assert info.value.errno == errno.ENODEV


def test_bridge_port_flags(h: Handle, ns: NS) -> None:
    br = link.create_bridge(h, "br0", up=True)
    v = link.create_veth(h, "p0", "p1")
    link.set_link(h, v.index, master=br.index, up=True)
    info = ns.link("p0")["linkinfo"]["info_slave_data"]
    assert info["hairpin"] is False and info["isolated"] is False
    bridge_port.set_bridge_port(h, v.index, hairpin=True, isolated=True)
    info = ns.link("p0")["linkinfo"]["info_slave_data"]
    assert info["hairpin"] is True and info["isolated"] is True
    (bj,) = [p for p in ns.json("bridge", "-j", "-d", "link", "show") if p["ifname"] == "p0"]
    assert bj["hairpin"] is True and bj["isolated"] is True
    bridge_port.set_bridge_port(h, v.index, hairpin=False)
    info = ns.link("p0")["linkinfo"]["info_slave_data"]
    assert info["hairpin"] is False and info["isolated"] is True
    bridge_port.set_bridge_port(h, v.index)  # nothing to change: no request at all
    with pytest.raises(OSError):
        bridge_port.set_bridge_port(h, br.index, hairpin=True)  # the bridge is not a port of itself


def test_bridge_vlans(h: Handle, ns: NS, vlan_filtering_supported: bool) -> None:
    br = link.create_bridge(h, "br0", up=True, vlan_filtering=vlan_filtering_supported)
    v = link.create_veth(h, "p0", "p1")
    link.set_link(h, v.index, master=br.index)
    if not vlan_filtering_supported:
        with pytest.raises(OSError) as info:
            bridge_port.bridge_vlan_add(h, v.index, 10, pvid=True, untagged=True)
        assert info.value.errno == errno.EOPNOTSUPP and "VLAN filtering" in str(info.value)
        assert bridge_port.bridge_vlans(h, v.index) == []
        pytest.skip("kernel without CONFIG_BRIDGE_VLAN_FILTERING (the clear error was checked)")
    bridge_port.bridge_vlan_add(h, v.index, 10, pvid=True, untagged=True)
    bridge_port.bridge_vlan_add(h, v.index, 20)
    bridge_port.bridge_vlan_del(h, v.index, 1)
    got = {x.vid: x for x in bridge_port.bridge_vlans(h, v.index)}
    assert got == {
        10: bridge_port.BridgeVlan(vid=10, pvid=True, untagged=True),
        20: bridge_port.BridgeVlan(vid=20, pvid=False, untagged=False),
    }
    shown = {e["ifname"]: e["vlans"] for e in ns.json("bridge", "-j", "vlan", "show")}
    assert {x["vlan"] for x in shown["p0"]} == {10, 20}
    assert {x["vlan"] for x in shown["br0"]} >= {1}  # the bridge's own default VLAN
    assert 1 in {x.vid for x in bridge_port.bridge_vlans(h, br.index)}
    with pytest.raises(ValueError):
        bridge_port.bridge_vlan_add(h, v.index, 4095)


def test_bridge_vlan_message_layout() -> None:
    """The bytes `bridge vlan add` sends (checked with strace), so kernels with VLAN filtering agree."""
    port = bridge_port._vlan_msg(7, 10, pvid=True, untagged=True)
    assert port == (
        struct.pack("=BxHiII", nl.AF_BRIDGE, 0, 7, 0, 0)
        + struct.pack("=HH", 12, bridge_port.IFLA_AF_SPEC)
        + struct.pack("=HHHH", 8, bridge_port.IFLA_BRIDGE_VLAN_INFO, 0x2 | 0x4, 10)
    )
