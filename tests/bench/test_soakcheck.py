"""The soak's rules over data: the chain taken from the examples, duplicates, reservations, leftovers."""

from __future__ import annotations

import json
from pathlib import Path

from bench import soakcheck

A, B, C = "a" * 64, "b" * 64, "c" * 64
REF_LEAK = [  # what the reference left after a killed ADD and its DEL (a soak run, abridged)
    "*nat",
    ":POSTROUTING ACCEPT [0:0]",
    ":CNI-7d92c2a41bf15aa413d5d54f - [0:0]",
    f'-A POSTROUTING -s 198.19.155.50/32 -m comment --comment "name: \\"n\\" id: \\"{A}\\"" '
    "-j CNI-7d92c2a41bf15aa413d5d54f",
    f'-A CNI-7d92c2a41bf15aa413d5d54f -d 198.19.155.0/24 -m comment --comment "name: \\"n\\" id: \\"{A}\\"" '
    "-j ACCEPT",
    "COMMIT",
]


def test_example_plugins_take_every_type_once_in_order(tmp_path: Path) -> None:
    (tmp_path / "10-a.conflist").write_text(json.dumps(
        {"plugins": [{"type": "loopback"}, {"type": "bridge", "bridge": "x"}, {"type": "bandwidth"}]}))
    (tmp_path / "20-b.conflist").write_text(json.dumps(
        {"plugins": [{"type": "bridge", "bridge": "y"},
                     {"type": "portmap", "capabilities": {"portMappings": True}}]}))
    plugins = soakcheck.example_plugins(tmp_path.glob("*.conflist"))
    assert [p["type"] for p in plugins] == ["loopback", "bridge", "bandwidth", "portmap"]
    assert plugins[1]["bridge"] == "x"


def test_the_shipped_example_is_the_soaked_chain() -> None:
    repo = Path(__file__).resolve().parents[2]
    types = [p["type"] for p in soakcheck.example_plugins((repo / "conf" / "examples").glob("*.conflist"))]
    assert types[:3] == ["loopback", "bridge", "bandwidth"]


def test_soak_plugins_make_the_bridge_private_with_masquerade() -> None:
    plugins = [{"type": "loopback"}, {"type": "bridge", "bridge": "cbr0", "ipMasq": False,
                                      "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}]
    out = soakcheck.soak_plugins(plugins, "pcs1", "198.18.5.0/24", "198.18.5.1", "/tmp/d")
    assert out[1]["bridge"] == "pcs1" and out[1]["ipMasq"] is True
    assert out[1]["ipam"]["subnet"] == "198.18.5.0/24" and out[1]["ipam"]["dataDir"] == "/tmp/d"
    assert plugins[1]["bridge"] == "cbr0", "the example itself is not changed"


def test_duplicates_name_every_holder() -> None:
    assert soakcheck.duplicates({A: ["10.0.0.2"], B: ["10.0.0.3"]}) == {}
    assert soakcheck.duplicates({A: ["10.0.0.2"], B: ["10.0.0.2"], C: ["10.0.0.4"]}) == {"10.0.0.2": [A, B]}


def test_reservations_and_their_faults() -> None:
    files = {"lock": b"", "last_reserved_ip.0": b"10.0.0.3", "10.0.0.2": f"{A}\r\neth0".encode(),
             "10.0.0.3": f"{C}\r\neth0".encode()}
    reserved = soakcheck.reservations(files)
    assert reserved == {"10.0.0.2": A, "10.0.0.3": C}
    assert soakcheck.reservation_faults(reserved, {A: ["10.0.0.2"], C: ["10.0.0.3"]}) == []
    faults = soakcheck.reservation_faults(reserved, {A: ["10.0.0.2"], B: ["10.0.0.9"]})
    assert faults == [f"10.0.0.3 reserved by {C[:12]}, which is not a live pod",
                      f"{B[:12]} holds 10.0.0.9, reserved by nobody"]


def test_iptables_leftovers_find_the_references_leak_and_spare_shared_chains() -> None:
    left = soakcheck.iptables_leftovers("\n".join(REF_LEAK), {A})
    assert left[0] == "chain CNI-7d92c2a41bf15aa413d5d54f" and len(left) == 3
    shared = "*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n-A PREROUTING -m addrtype -j CNI-HOSTPORT-DNAT\nCOMMIT\n"
    assert soakcheck.iptables_leftovers(shared, {A}) == []
    assert soakcheck.iptables_leftovers("-A CNI-HOSTPORT-DNAT -p tcp -j CNI-DN-0123", set()) != []


def test_nft_and_link_leftovers() -> None:
    ruleset = f'table inet t {{\n chain c {{\n  ip saddr 10.0.0.2 masquerade comment "x, id: {B}"\n }}\n}}'
    assert len(soakcheck.nft_leftovers(ruleset, {B})) == 1
    assert soakcheck.nft_leftovers(ruleset, {A}) == []
    links = [{"ifname": "lo"}, {"ifname": "br0", "linkinfo": {"info_kind": "bridge"}},
             {"ifname": "veth1", "linkinfo": {"info_kind": "veth"}},
             {"ifname": "bwp1", "linkinfo": {"info_kind": "ifb"}}]
    assert soakcheck.link_leftovers(links, {"lo", "br0"}) == ["link veth1 (veth)", "link bwp1 (ifb)"]
