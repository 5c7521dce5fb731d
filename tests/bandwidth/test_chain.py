"""bandwidth chained after the reference ptp/bridge: what it installs, read back from the kernel.

Expected figures come from `tc` itself: for every unclamped config the test installs a twin with
`tc qdisc add ... tbf rate R burst B latency 25ms` on a spare link and requires the same rate and
limit, and the same bucket to within a microsecond (tc keeps the fraction of a microsecond that
the reference plugin, and so pycni, drops: up to 15 ticks). Against the reference plugin itself the
figures must be identical. Clamped (runtime-sized) bursts are compared with hand-computed figures,
and the reference plugin's wrapped bucket is shown for contrast.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import ip_json, link, link_exists, tc_json

from cni.layout import bandwidth as ifb_layout
from cni.plugins.bandwidth import shaping

from .conftest import host_veth, root_tbf, tc_raw
from .reference import reference_bucket

pytestmark = pytest.mark.root

TICK = 15.625  # /proc/net/psched on every kernel since 2.6.x with high-resolution timers
CONTAINERD_BURST = 2**32 - 1  # bits, what containerd sends for an annotated pod
MBIT = 1_000_000


def tc_twin(ns, rate_bits: int, burst_bits: int) -> dict:
    """What `tc qdisc add ... tbf rate R burst B latency 25ms` installs, on a spare link in `ns`."""
    dev = "bwtwin0"
    ns.exec("ip", "link", "add", dev, "type", "ifb")
    try:
        ns.exec("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "tbf", "rate", f"{rate_bits}bit",
                "burst", str(burst_bits // 8), "latency", "25ms")
        return root_tbf(ns, dev)
    finally:
        ns.exec("ip", "link", "del", dev)


# containerd's burst at 1, 10, 100 Mbit/s, as `tc -raw -j` prints it, worked out by hand:
# 100 ms of the rate (at least 16 KiB), buffer in ticks of 64 ns, limit = bucket + 25 ms of the rate.
CONTAINERD_TBF = {
    1 * MBIT: {"rate": 125_000, "burst": 16_384, "burst_raw": f"{131_072 * 1000 // 64:x}", "lat": 25000,
               "limit": 16_384 + 3_125},
    10 * MBIT: {"rate": 1_250_000, "burst": 125_000, "burst_raw": f"{100_000 * 1000 // 64:x}", "lat": 25000,
                "limit": 125_000 + 31_250},
    100 * MBIT: {"rate": 12_500_000, "burst": 1_250_000, "burst_raw": f"{100_000 * 1000 // 64:x}",
                 "lat": 25000, "limit": 1_250_000 + 312_500},
}


def tbf_figures(opts: dict) -> dict:
    return {k: opts.get(k) for k in ("rate", "burst", "burst_raw", "lat", "limit")}


def assert_like(got: dict | None, want: dict) -> None:
    """Same rate and limit; bucket within 1 µs (ticks, and bytes at the rate); latency within 2 µs."""
    assert got is not None, "no tbf root qdisc"
    rate = want["rate"]
    assert (got["rate"], got["limit"]) == (want["rate"], want["limit"]), (got, want)
    assert abs(int(got["burst_raw"], 16) - int(want["burst_raw"], 16)) <= TICK, (got, want)
    assert abs(got["burst"] - want["burst"]) <= rate // 1_000_000 + 1, (got, want)
    assert abs(got["lat"] - want["lat"]) <= 2, (got, want)


def add(chain, bandwidth: dict | None, cap_args: dict | None = None, version: str = "1.0.0") -> dict:
    chain.configure(bandwidth, version)
    return chain.run("add", cap_args=cap_args).check().json


def ifb_of(chain) -> str:
    return ifb_layout.ifb_name(chain.network, chain.container_id())


def assert_redirect(chain, veth: str, ifb: str) -> None:
    filters = [f for f in tc_json("filter", "show", "dev", veth, "parent", "ffff:", netns=chain.host.name)
               if f.get("options", {}).get("actions")]
    assert len(filters) == 1, filters
    f = filters[0]
    assert (f["kind"], f["protocol"], f["pref"], f["options"]["flowid"]) == ("u32", "all", 1, "1:1")
    (action,) = f["options"]["actions"]
    assert (action["kind"], action["mirred_action"], action["direction"], action["to_dev"]) == (
        "mirred", "redirect", "egress", ifb)
    assert f["options"]["match"] == {"value": "0", "mask": "0", "offmask": "", "off": 0}


STATIC = {"ingressRate": 8 * MBIT, "ingressBurst": 800_000, "egressRate": 2 * MBIT, "egressBurst": 400_000}


# --- what ADD installs ------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
def test_static_both_directions(chain, version):
    result = add(chain, STATIC, version=version)
    veth, ifb = host_veth(result), ifb_of(chain)
    assert_like(root_tbf(chain.host, veth), tc_twin(chain.host, 8 * MBIT, 800_000))
    assert_like(root_tbf(chain.host, ifb), tc_twin(chain.host, 2 * MBIT, 400_000))
    assert root_tbf(chain.host, veth)["lat"] == 25000
    assert root_tbf(chain.host, veth)["limit"] == 1_000_000 * 25 // 1000 + 100_000
    # the IFB: up, the veth's MTU, listed last in the result with its MAC
    info, vinfo = link(ifb, chain.host.name), link(veth, chain.host.name)
    assert info["linkinfo"]["info_kind"] == "ifb"
    assert "UP" in info["flags"] and info["mtu"] == vinfo["mtu"]
    assert info.get("txqlen", 0) == 0  # as v1.9.1 makes it (iproute2 omits a zero txqlen)
    assert result["interfaces"][-1] == {"name": ifb, "mac": info["address"]}
    assert len(result["interfaces"]) == 3 and result["cniVersion"] == version
    assert [q["kind"] for q in tc_json("qdisc", "show", "dev", veth, "ingress", netns=chain.host.name)] == [
        "ingress"]
    assert_redirect(chain, veth, ifb)
    if version >= "0.4.0":
        chain.run("check").check()
    chain.run("del").check()
    assert not link_exists(ifb, chain.host.name)


def test_runtime_config(chain):
    caps = {"bandwidth": {"ingressRate": 10 * MBIT, "ingressBurst": 1_000_000,
                          "egressRate": 5 * MBIT, "egressBurst": 500_000}}
    result = add(chain, {"capabilities": {"bandwidth": True}}, cap_args=caps)
    veth, ifb = host_veth(result), ifb_of(chain)
    assert_like(root_tbf(chain.host, veth), tc_twin(chain.host, 10 * MBIT, 1_000_000))
    assert_like(root_tbf(chain.host, ifb), tc_twin(chain.host, 5 * MBIT, 500_000))
    assert_redirect(chain, veth, ifb)
    chain.run("check", cap_args=caps).check()


def test_static_wins_over_runtime(chain):
    caps = {"bandwidth": {"ingressRate": 10 * MBIT, "ingressBurst": 1_000_000,
                          "egressRate": 5 * MBIT, "egressBurst": 500_000}}
    # one static key is enough for the static config to win wholesale: no egress limit at all
    static = {"capabilities": {"bandwidth": True}, "ingressRate": 3 * MBIT, "ingressBurst": 300_000}
    result = add(chain, static, cap_args=caps)
    veth = host_veth(result)
    assert_like(root_tbf(chain.host, veth), tc_twin(chain.host, 3 * MBIT, 300_000))
    assert not link_exists(ifb_of(chain), chain.host.name)
    assert len(result["interfaces"]) == 2


def test_ingress_only(chain):
    result = add(chain, {"ingressRate": 4 * MBIT, "ingressBurst": 64_000})
    veth = host_veth(result)
    assert_like(root_tbf(chain.host, veth), tc_twin(chain.host, 4 * MBIT, 64_000))
    assert tc_json("qdisc", "show", "dev", veth, "ingress", netns=chain.host.name) == []
    assert not link_exists(ifb_of(chain), chain.host.name)
    chain.run("check").check()


def test_egress_only(chain):
    result = add(chain, {"egressRate": 4 * MBIT, "egressBurst": 64_000})
    veth, ifb = host_veth(result), ifb_of(chain)
    assert root_tbf(chain.host, veth) is None
    assert_like(root_tbf(chain.host, ifb), tc_twin(chain.host, 4 * MBIT, 64_000))
    assert_redirect(chain, veth, ifb)
    chain.run("check").check()


@pytest.mark.parametrize("rate", [1 * MBIT, 10 * MBIT, 100 * MBIT])
def test_containerd_burst_becomes_100_ms(chain, rate):
    caps = {"bandwidth": {"ingressRate": rate, "ingressBurst": CONTAINERD_BURST,
                          "egressRate": rate, "egressBurst": CONTAINERD_BURST}}
    result = add(chain, {"capabilities": {"bandwidth": True}}, cap_args=caps)
    veth, ifb = host_veth(result), ifb_of(chain)
    want = CONTAINERD_TBF[rate]
    assert_like(root_tbf(chain.host, veth), want)
    assert_like(root_tbf(chain.host, ifb), want)
    chain.run("check", cap_args=caps).check()


def test_reference_wraps_containerd_burst(ref_chain):
    """The figures docs/plugins/bandwidth.md quotes for the reference (v1.9.1, as 1.1.1) at 1 Mbit/s."""
    caps = {"bandwidth": {"ingressRate": MBIT, "ingressBurst": CONTAINERD_BURST}}
    result = add(ref_chain, {"capabilities": {"bandwidth": True}}, cap_args=caps)
    opts = root_tbf(ref_chain.host, host_veth(result))
    _rate, buffer, limit = reference_bucket(MBIT, CONTAINERD_BURST, TICK)
    assert (opts["rate"], opts["burst"], int(opts["burst_raw"], 16), opts["limit"]) == (
        125000, 21474835, buffer, limit)
    assert opts["lat"] > 4000 * 1_000_000  # over an hour of queue


@pytest.mark.parametrize("config", [
    {"ingressRate": 8 * MBIT, "ingressBurst": 800_000, "egressRate": 2 * MBIT, "egressBurst": 400_000},
    {"ingressRate": 8000, "ingressBurst": 16000, "egressRate": 8000, "egressBurst": 16000},
    {"ingressRate": 50 * MBIT, "ingressBurst": 50 * MBIT},
])
def test_same_figures_as_reference(chain, ref_chain, config):
    ours = add(chain, config)
    theirs = add(ref_chain, config)
    assert tbf_figures(root_tbf(chain.host, host_veth(ours))) == tbf_figures(
        root_tbf(ref_chain.host, host_veth(theirs)))
    if "egressRate" in config:
        assert tbf_figures(root_tbf(chain.host, ifb_of(chain))) == tbf_figures(
            root_tbf(ref_chain.host, ifb_of(ref_chain)))
    assert ifb_of(chain) == ifb_of(ref_chain) or chain.container_id() != ref_chain.container_id()


@pytest.mark.parametrize("bridge", ["reference", "ours"])
def test_after_bridge(cnitool, bin_dir, ref_bin_dir, netns, bw_state, bridge):
    from .conftest import Chain, plugin_dir

    ours = bin_dir if bridge == "ours" else None
    cni_dir = plugin_dir(bw_state / "bin", ref_bin_dir, (bin_dir / "bandwidth").resolve(), ours)
    chain = Chain(cnitool, netns("pycni-bwh-"), netns("pycni-bwp-"), cni_dir, bw_state, main="bridge")
    result = add(chain, STATIC)
    veth, ifb = host_veth(result), ifb_of(chain)
    assert link(veth, chain.host.name)["master"] == chain.bridge
    assert_like(root_tbf(chain.host, veth), tc_twin(chain.host, 8 * MBIT, 800_000))
    assert_like(root_tbf(chain.host, ifb), tc_twin(chain.host, 2 * MBIT, 400_000))
    assert_redirect(chain, veth, ifb)
    chain.run("check").check()
    chain.run("del").check()
    assert not link_exists(ifb, chain.host.name)


# --- pass-through ---------------------------------------------------------------------------------------

def test_no_limits_passes_through(chain):
    chain.configure(None)
    plain = chain.run("add").check().json
    chain.run("del").check()
    chain.configure({"ingressRate": 0, "ingressBurst": 0})
    result = chain.run("add").check().json
    assert result["interfaces"][0]["name"].startswith("veth") and len(result["interfaces"]) == 2
    assert result.keys() == plain.keys()
    assert root_tbf(chain.host, host_veth(result)) is None
    assert not [x for x in ip_json("link", "show", netns=chain.host.name) if x["ifname"].startswith("bwp")]
    chain.run("check").check()  # a clean no-op (the reference 1.1.1 panicked here, v1.9.1 does not)
    chain.run("del").check()


# --- DEL, CHECK, GC, STATUS ---------------------------------------------------------------------------

def test_del_is_idempotent_and_leaves_nothing(chain):
    result = add(chain, STATIC)
    ifb = ifb_of(chain)
    config = json.loads(next(chain.netconf_dir.glob("*")).read_text())
    bw = {"cniVersion": "1.0.0", "name": chain.network, **config["plugins"][1], "prevResult": result}
    chain.plugin("DEL", bw).check()
    assert not link_exists(ifb, chain.host.name)
    chain.plugin("DEL", bw).check()
    chain.plugin("DEL", {k: v for k, v in bw.items() if k != "prevResult"}, netns="").check()
    chain.run("del").check()
    chain.run("del").check()
    left = [x["ifname"] for x in ip_json("link", "show", netns=chain.host.name)]
    assert not [n for n in left if n.startswith(("bwp", "veth"))]


def test_del_removes_an_ifb_left_untagged_by_a_killed_add(chain):
    """ADD makes the IFB under "bwt"+hash and renames it once tagged; if ADD dies in between, the
    runtime's DEL must still find it."""
    result = add(chain, STATIC)
    ifb = ifb_of(chain)
    temp = ifb_layout.ifb_temp_name(chain.network, chain.container_id())
    assert temp.startswith("bwt") and temp[3:] == ifb[3:] and len(temp) == 15
    assert not link_exists(temp, chain.host.name)  # renamed away by a completed ADD
    chain.host.exec("ip", "link", "add", temp, "type", "ifb")  # as a killed ADD would leave it
    config = json.loads(next(chain.netconf_dir.glob("*")).read_text())
    bw = {"cniVersion": "1.0.0", "name": chain.network, **config["plugins"][1], "prevResult": result}
    chain.plugin("DEL", bw).check()
    assert not link_exists(temp, chain.host.name) and not link_exists(ifb, chain.host.name)
    chain.run("del").check()


def test_add_replaces_an_ifb_left_untagged_by_a_killed_add(chain):
    """A retried ADD finds the stale "bwt" device of its own attachment and replaces it."""
    chain.configure(STATIC, "1.0.0")
    temp = ifb_layout.ifb_temp_name(chain.network, chain.container_id())
    chain.host.exec("ip", "link", "add", temp, "type", "ifb")  # as a killed ADD would leave it
    chain.run("add").check()
    ifb = ifb_of(chain)
    assert link_exists(ifb, chain.host.name) and not link_exists(temp, chain.host.name)
    info = ip_json("-d", "link", "show", "dev", ifb, netns=chain.host.name)[0]
    assert info.get("ifalias", "").startswith("pycni-bandwidth network=")
    chain.run("del").check()
    assert not link_exists(ifb, chain.host.name)


def test_check_detects_changed_qdisc(chain):
    result = add(chain, STATIC)
    veth = host_veth(result)
    chain.host.exec("tc", "qdisc", "replace", "dev", veth, "root", "handle", "1:", "tbf", "rate", "9mbit",
                    "burst", "100000", "latency", "25ms")
    out = chain.run("check").expect_error()
    assert "rate" in out.msg and veth in out.msg
    chain.host.exec("tc", "qdisc", "del", "dev", veth, "root")
    assert "no tbf root qdisc" in chain.run("check").expect_error().msg


def test_check_detects_missing_ifb_and_redirect(chain):
    result = add(chain, STATIC)
    veth, ifb = host_veth(result), ifb_of(chain)
    chain.host.exec("tc", "qdisc", "del", "dev", veth, "ingress")
    assert "redirect" in chain.run("check").expect_error().msg
    chain.host.exec("ip", "link", "del", ifb)
    assert ifb in chain.run("check").expect_error().msg


def test_check_without_limits_or_prev_result(chain):
    result = add(chain, None)
    base = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth"}
    chain.plugin("CHECK", {**base, "prevResult": result}).check()
    chain.plugin("CHECK", base).check()  # nothing to check (v1.9.1 fails: docs/plugins/bandwidth.md)
    out = chain.plugin("CHECK", {**base, **STATIC}).expect_error(7)
    assert "prevResult" in out.msg


def test_status_and_version(chain):
    base = {"cniVersion": "1.1.0", "name": chain.network, "type": "bandwidth"}
    chain.plugin("STATUS", base).check()
    out = chain.plugin("VERSION", base).check()
    assert out.json["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    chain.plugin("ADD", {**base, "cniVersion": "0.2.0"}).expect_error(1)


def redirect(ns, dev: str, target: str) -> None:
    """A match-all redirect from `dev`'s ingress to `target`, as a bandwidth ADD installs it."""
    ns.exec("tc", "qdisc", "add", "dev", dev, "clsact")
    ns.exec("tc", "filter", "add", "dev", dev, "ingress", "protocol", "all", "prio", "1", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", target)


def test_ifb_is_tagged_with_its_network(chain):
    add(chain, STATIC)
    alias = link(ifb_of(chain), chain.host.name)["ifalias"]
    assert alias == f"pycni-bandwidth network={chain.network} container={chain.container_id()}"
    assert ifb_layout.parse_alias(alias).network == chain.network


def test_gc_removes_only_this_networks_stale_ifbs(chain):
    """Tagged IFBs: this network's stale ones go (fed or not), other networks' stay (fed or not).
    Untagged `bwp*` IFBs (the reference plugin's) go only when nothing redirects to them."""
    result = add(chain, STATIC)
    veth, live = host_veth(result), ifb_of(chain)
    h = chain.host

    def ifb(name: str, alias: str | None = None) -> str:
        h.exec("ip", "link", "add", name, "type", "ifb")
        if alias is not None:
            h.exec("ip", "link", "set", "dev", name, "alias", alias)
        return name

    own = ifb_layout.ifb_alias(chain.network, "gone-container")
    stale = ifb(ifb_layout.ifb_name(chain.network, "gone-container"), own)
    fed_name = ifb_layout.ifb_name(chain.network, "gone-fed")
    fed_alias = ifb_layout.ifb_alias(chain.network, "gone-fed")
    stale_fed = ifb(fed_name, fed_alias)
    # another network's ADD between creating its IFB and adding the redirect
    other = ifb(ifb_layout.ifb_name("othernet", "c1"), ifb_layout.ifb_alias("othernet", "c1"))
    other_fed = ifb(ifb_layout.ifb_name("othernet", "c2"), ifb_layout.ifb_alias("othernet", "c2"))
    # the reference plugin's (untagged), one still fed by its veth and one orphaned
    ref_fed = ifb(ifb_layout.ifb_name("refnet", "c3"))
    ref_orphan = ifb(ifb_layout.ifb_name(chain.network, "gone-ref"))
    foreign_alias = ifb(ifb_layout.ifb_name("refnet", "c4"), "set by someone else")  # not our tag: untagged
    h.exec("ip", "link", "add", "bwpnotifb0", "type", "veth", "peer", "name", "bwpnotifb1")
    tagged_plain = ifb("ifbplain0", own)  # tagged ours but not a bwp name: a leftover of ours all the same
    untagged_plain = ifb("ifbplain1")
    for i, target in enumerate((stale_fed, other_fed, ref_fed)):
        h.exec("ip", "link", "add", f"vethgc{i}", "type", "veth", "peer", "name", f"vethgc{i}p")
        redirect(h, f"vethgc{i}", target)
    for name, alias in ((stale, own), (other, ifb_layout.ifb_alias("othernet", "c1")), (ref_fed, None)):
        assert link(name, h.name).get("ifalias") == alias

    gc = {"cniVersion": "1.1.0", "name": chain.network, "type": "bandwidth",
          "cni.dev/valid-attachments": [{"containerID": chain.container_id(), "ifname": "eth0"}]}
    chain.plugin("GC", gc).check()
    names = {x["ifname"] for x in ip_json("link", "show", netns=h.name)}
    assert {live, other, other_fed, ref_fed, "bwpnotifb0", untagged_plain} <= names
    assert not {stale, stale_fed, ref_orphan, foreign_alias, tagged_plain} & names
    assert_redirect(chain, veth, live)

    # nothing valid: this network's live IFB goes, though its veth still feeds it
    chain.plugin("GC", {k: v for k, v in gc.items() if k != "cni.dev/valid-attachments"}).check()
    assert not link_exists(live, h.name)
    for name in (other, other_fed, ref_fed):
        assert link_exists(name, h.name), name
    # the reference's IFB goes once nothing redirects to it; other networks' tagged ones never
    h.exec("ip", "link", "del", "vethgc2")
    h.exec("ip", "link", "del", "vethgc1")
    chain.plugin("GC", {k: v for k, v in gc.items() if k != "cni.dev/valid-attachments"}).check()
    assert not link_exists(ref_fed, h.name)
    assert link_exists(other, h.name) and link_exists(other_fed, h.name)


# --- another tool's qdiscs and failures ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ingress", "clsact"])
def test_reuses_existing_ingress_or_clsact(chain, kind):
    """Another tool's ingress or clsact qdisc on the veth: our redirect goes under it."""
    chain.configure(None)
    result = chain.run("add").check().json
    veth = host_veth(result)
    chain.host.exec("tc", "qdisc", "add", "dev", veth, kind)
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", "egressRate": 4 * MBIT,
              "egressBurst": 64_000, "prevResult": result}
    out = chain.plugin("ADD", config).check()
    ifb = ifb_of(chain)
    assert out.json["interfaces"][-1]["name"] == ifb
    qdiscs = [q["kind"] for q in tc_json("qdisc", "show", "dev", veth, "ingress", netns=chain.host.name)]
    assert qdiscs == [kind]
    parent = "ffff:" if kind == "ingress" else "ffff:fff2"
    filters = [f for f in tc_json("filter", "show", "dev", veth, "parent", parent, netns=chain.host.name)
               if f.get("options", {}).get("actions")]
    assert [a["to_dev"] for f in filters for a in f["options"]["actions"]] == [ifb]
    chain.plugin("CHECK", config).check()
    chain.plugin("DEL", config).check()


def test_foreign_filter_is_a_clear_error_and_rolls_back(chain):
    chain.configure(None)
    result = chain.run("add").check().json
    veth = host_veth(result)
    chain.host.exec("tc", "qdisc", "add", "dev", veth, "clsact")
    chain.host.exec("tc", "filter", "add", "dev", veth, "ingress", "protocol", "all", "prio", "1", "u32",
                    "match", "u32", "0", "0", "flowid", "1:2")
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC,
              "prevResult": result}
    out = chain.plugin("ADD", config).expect_error()
    assert "priority 1" in out.msg and veth in out.msg
    assert "Traceback" not in out.stdout
    # nothing half-done: no IFB, no tbf, the foreign qdisc and filter untouched
    assert not link_exists(ifb_of(chain), chain.host.name)
    assert root_tbf(chain.host, veth) is None
    filters = tc_json("filter", "show", "dev", veth, "ingress", netns=chain.host.name)
    assert {f["kind"] for f in filters} == {"u32"}
    assert [f["options"]["flowid"] for f in filters if "flowid" in f.get("options", {})] == ["1:2"]
    assert not [f for f in filters if f.get("options", {}).get("actions")]


def test_existing_root_qdisc_is_a_clear_error(chain):
    chain.configure(None)
    result = chain.run("add").check().json
    veth = host_veth(result)
    chain.host.exec("tc", "qdisc", "add", "dev", veth, "root", "handle", "7:", "htb")
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC,
              "prevResult": result}
    out = chain.plugin("ADD", config).expect_error()
    assert "root qdisc" in out.msg and "htb" in out.msg
    assert not link_exists(ifb_of(chain), chain.host.name)


def test_repeated_add_fails_cleanly_and_keeps_the_first(chain):
    result = add(chain, STATIC)
    veth, ifb = host_veth(result), ifb_of(chain)
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC,
              "prevResult": {k: v for k, v in result.items()}}
    config["prevResult"]["interfaces"] = result["interfaces"][:2]
    out = chain.plugin("ADD", config).expect_error()
    assert "root qdisc" in out.msg or "already exists" in out.msg
    assert link_exists(ifb, chain.host.name)
    assert_redirect(chain, veth, ifb)
    chain.run("check").check()


@pytest.mark.parametrize("prev, why", [
    ({"cniVersion": "1.0.0"}, "no interfaces"),
    ({"cniVersion": "1.0.0", "interfaces": [{"name": "cbr0"}]}, "not a host interface"),
])
def test_bad_prev_result(chain, prev, why):
    chain.configure(None)
    chain.run("add").check()
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC, "prevResult": prev}
    out = chain.plugin("ADD", config).expect_error(7)
    assert why in out.msg


def test_no_veth_peer(chain):
    chain.pod.exec("ip", "link", "add", "eth0", "type", "ifb")
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC,
              "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "vethx"}]}}
    out = chain.plugin("ADD", config).expect_error(7)
    assert "no veth peer" in out.msg


def test_without_prev_result(chain):
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **STATIC}
    out = chain.plugin("ADD", config).expect_error(7)
    assert "chained" in out.msg


@pytest.mark.parametrize("bw, key", [
    ({"ingressRate": 1000}, "ingressBurst"),
    ({"egressBurst": 1000}, "egressRate"),
    ({"ingressRate": 8000, "ingressBurst": 2**32 * 8}, "ingressBurst"),
    ({"runtimeConfig": {"bandwidth": {"egressRate": 8000}}}, "runtimeConfig.bandwidth.egressBurst"),
    ({"ingressRate": -1}, "ingressRate"),
    ({"egressRate": "1M", "egressBurst": 1000}, "egressRate"),
])
def test_invalid_config_names_the_key(chain, bw, key):
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", **bw}
    out = chain.plugin("ADD", config).expect_error(7)
    assert key in out.msg + (out.json.get("details") or "")


def test_runtime_config_key_case_insensitive(chain):
    chain.configure(None)
    result = chain.run("add").check().json
    config = {"cniVersion": "1.0.0", "name": chain.network, "type": "bandwidth", "prevResult": result,
              "runtimeConfig": {"bandWidth": {"IngressRate": 2 * MBIT, "ingressburst": 100_000}}}
    chain.plugin("ADD", config).check()
    assert_like(root_tbf(chain.host, host_veth(result)), tc_twin(chain.host, 2 * MBIT, 100_000))


def test_tc_raw_reads_what_the_plugin_sent(chain):
    """Cross-check the read-back: the kernel's tbf through our own netlink listing equals tc's."""
    from cni.net import tc
    from cni.net.netns import open_handle

    result = add(chain, STATIC)
    veth = host_veth(result)
    with open_handle(chain.host.path) as h:
        from cni.net import link as netlink_link

        index = netlink_link.get_link(h, veth).index
        (q,) = [q for q in tc.list_qdiscs(h, index) if q.kind == "tbf"]
    opts = root_tbf(chain.host, veth)
    b = shaping.bucket(8 * MBIT, 800_000, TICK)
    assert (q.rate, q.buffer, q.limit) == (b.rate, b.buffer, b.limit) == (
        opts["rate"], int(opts["burst_raw"], 16), opts["limit"])
    assert subprocess.run(["tc", "-V"], capture_output=True).returncode == 0
    assert tc_raw(chain.host, "qdisc", "show", "dev", veth)


# --- attachments whose IFB names collide -------------------------------------------------------------

EGRESS = {"egressRate": 2 * MBIT, "egressBurst": 400_000}


def test_colliding_attachments_keep_their_own_ifb(chain):
    """(network X, container 1abc) and (X1, abc) hash to one IFB name, as the reference names it. The
    IFB's tag says it is X's: X1's ADD is refused (11) without touching it, X1's DEL leaves it, X's
    traffic still goes through it, and a stale temporary device tagged X's is not X1's to replace."""
    x_cid = "1abc" + chain.container_id()[:16]
    x1_name, x1_cid = chain.network + "1", x_cid[1:]
    name = ifb_layout.ifb_name(chain.network, x_cid)
    assert name == ifb_layout.ifb_name(x1_name, x1_cid)
    chain.configure(EGRESS)
    result = chain.run("add", container_id=x_cid).check().json
    veth = host_veth(result)
    tagged = link(name, chain.host.name)["ifalias"]
    assert ifb_layout.parse_alias(tagged) == ifb_layout.Tag(chain.network, x_cid)
    before = root_tbf(chain.host, name)
    x1 = {"cniVersion": "1.0.0", "name": x1_name, "type": "bandwidth", **EGRESS, "prevResult": result}

    out = chain.plugin("ADD", x1, container_id=x1_cid).expect_error(11)
    assert name in out.msg and repr(chain.network) in out.msg and repr(x_cid) in out.msg
    chain.plugin("DEL", x1, container_id=x1_cid).check()
    chain.plugin("DEL", {k: v for k, v in x1.items() if k != "prevResult"}, container_id=x1_cid,
                 netns="").check()
    assert link(name, chain.host.name)["ifalias"] == tagged
    assert root_tbf(chain.host, name) == before
    assert_redirect(chain, veth, name)
    chain.run("check", container_id=x_cid).check()
    out = chain.plugin("CHECK", x1, container_id=x1_cid).expect_error()
    assert "another attachment" in out.msg

    # X's ADD killed before its rename left a tagged temporary device: X1's ADD may not take it
    temp = ifb_layout.ifb_temp_name(x1_name, x1_cid)
    chain.host.exec("ip", "link", "add", temp, "type", "ifb")
    chain.host.exec("ip", "link", "set", "dev", temp, "alias", ifb_layout.ifb_alias(chain.network, x_cid))
    chain.plugin("ADD", x1, container_id=x1_cid).expect_error()
    assert link(temp, chain.host.name)["ifalias"] == ifb_layout.ifb_alias(chain.network, x_cid)

    chain.run("del", container_id=x_cid).check()
    assert not link_exists(name, chain.host.name) and not link_exists(temp, chain.host.name)


def test_gc_of_a_colliding_network_leaves_the_others_ifb(chain):
    """GC of X1 with no valid attachment: the IFB named as X1's would be, but tagged X's, stays."""
    x_cid = "1abc" + chain.container_id()[:16]
    x1_name = chain.network + "1"
    name = ifb_layout.ifb_name(chain.network, x_cid)
    chain.configure(EGRESS)
    chain.run("add", container_id=x_cid).check()
    chain.plugin("GC", {"cniVersion": "1.1.0", "name": x1_name, "type": "bandwidth",
                        "cni.dev/valid-attachments": [{"containerID": x_cid[1:], "ifname": "eth0"}]}).check()
    chain.plugin("GC", {"cniVersion": "1.1.0", "name": x1_name, "type": "bandwidth"}).check()
    assert link_exists(name, chain.host.name)
    chain.plugin("GC", {"cniVersion": "1.1.0", "name": chain.network, "type": "bandwidth",
                        "cni.dev/valid-attachments": [{"containerID": x_cid, "ifname": "eth0"}]}).check()
    assert link_exists(name, chain.host.name)
    chain.run("del", container_id=x_cid).check()
    assert not link_exists(name, chain.host.name)
