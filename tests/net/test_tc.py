"""tc: tbf, ingress and the mirred redirect filter, compared with what tc(8) itself installs."""

from __future__ import annotations

import errno

import pytest

from cni.net import link, tc
from cni.net.netlink import Handle

from .conftest import NS


@pytest.fixture
def veths(h: Handle) -> tuple[link.Link, link.Link]:
    """Two veth ends: "ref" is configured by tc(8), "ours" through cni.net.tc."""
    ref = link.create_veth(h, "ref", "ours")
    return ref, link.get_link(h, "ours")


def _qdisc_json(ns: NS, dev: str, kind: str) -> dict:
    (q,) = [q for q in ns.json("tc", "-j", "-s", "-d", "qdisc", "show", "dev", dev) if q["kind"] == kind]
    return q


def _kernel_tbf(h: Handle, index: int) -> tc.Qdisc:
    (q,) = [q for q in tc.list_qdiscs(h, index) if q.kind == "tbf"]
    return q


def test_psched_helpers() -> None:
    with open("/proc/net/psched") as f:
        t2us, us2t = (int(x, 16) for x in f.read().split()[:2])
    assert tc.tick_in_usec() == t2us / us2t  # 1000 ns per us / 64 ns per tick = 15.625
    assert tc.xmittime(125000, 16000) == int(128000 * tc.tick_in_usec())
    assert tc.handle(1) == 0x10000 and tc.handle(1, 1) == 0x10001


@pytest.mark.parametrize(
    ("rate_arg", "rate", "burst"),
    [
        ("1mbit", 125_000, 16000),
        ("8bit", 1, 1),  # the reference plugin's smallest test value
        ("2400mbit", 300_000_000, 1_000_000),
        ("40gbit", 5_000_000_000, 160_000),  # >= 2^32 bytes/s: TCA_TBF_RATE64
    ],
)
def test_tbf_matches_tc(
    h: Handle, ns: NS, veths: tuple[link.Link, link.Link], rate_arg: str, rate: int, burst: int
) -> None:
    ref, ours = veths
    ns.exec(*f"tc qdisc add dev ref root handle 1: tbf rate {rate_arg} burst {burst} latency 25ms".split())
    limit = int(rate * 25_000 / 1e6) + burst  # what tc computes for "latency 25ms"
    tc.add_tbf(h, ours.index, rate, tc.xmittime(rate, burst), limit, burst=burst)
    want, got = _qdisc_json(ns, "ref", "tbf"), _qdisc_json(ns, "ours", "tbf")
    assert got["options"] == want["options"]
    assert (got["handle"], got.get("root")) == (want["handle"], want.get("root")) == ("1:", True)
    a, b = _kernel_tbf(h, ref.index), _kernel_tbf(h, ours.index)
    assert (b.rate, b.buffer, b.limit) == (a.rate, a.buffer, a.limit)
    assert (b.rate, b.limit, b.handle, b.parent) == (rate, limit, 0x10000, tc.TC_H_ROOT)


def test_tbf_without_burst_keeps_the_buffer(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    _, ours = veths
    tc.add_tbf(h, ours.index, 1, 15625000, 1)  # the reference plugin's values for rate 8, burst 8
    q = _kernel_tbf(h, ours.index)
    assert (q.rate, q.buffer, q.limit) == (1, 15625000, 1)
    opts = _qdisc_json(ns, "ours", "tbf")["options"]
    assert opts["rate"] == 1 and opts["burst"].startswith("1b")
    with pytest.raises(FileExistsError):
        tc.add_tbf(h, ours.index, 1, 15625000, 1)
    tc.add_tbf(h, ours.index, 2, 15625000, 2, replace=True)
    assert _kernel_tbf(h, ours.index).rate == 2


def test_tbf_rejects_values_that_do_not_fit(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    _, ours = veths
    huge = tc.xmittime(125_000, (2**32 - 1) // 8)  # containerd's burst at 1 Mbit/s
    assert huge > 2**32
    with pytest.raises(ValueError):
        tc.add_tbf(h, ours.index, 125_000, huge, 1000)
    with pytest.raises(ValueError):
        tc.add_tbf(h, ours.index, 0, 1, 1)
    assert "tbf" not in {q.kind for q in tc.list_qdiscs(h, ours.index)}
    assert "tbf" not in {q["kind"] for q in ns.json("tc", "-j", "qdisc", "show", "dev", "ours")}


def test_ingress_qdisc(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    ref, ours = veths
    tc.add_ingress_qdisc(h, ours.index)
    q = _qdisc_json(ns, "ours", "ingress")
    assert (q["handle"], q["parent"]) == ("ffff:", "ffff:fff1")
    (mine,) = [q for q in tc.list_qdiscs(h, ours.index) if q.kind == "ingress"]
    assert (mine.handle, mine.parent, mine.rate) == (tc.INGRESS_HANDLE, tc.TC_H_INGRESS, None)
    with pytest.raises(FileExistsError):
        tc.add_ingress_qdisc(h, ours.index)
    # Another tool's clsact holds the same slot: visible, and adding ingress says EEXIST.
    ns.exec("tc", "qdisc", "add", "dev", "ref", "clsact")
    assert "clsact" in {q.kind for q in tc.list_qdiscs(h, ref.index)}
    with pytest.raises(FileExistsError):
        tc.add_ingress_qdisc(h, ref.index)


def _normalised_filters(ns: NS, dev: str) -> list[dict]:
    out = ns.json("tc", "-j", "filter", "show", "dev", dev, "ingress")
    for f in out:
        for act in f.get("options", {}).get("actions", []):
            act.pop("to_dev")
            act.pop("index")
    return out


def test_mirred_redirect_filter_matches_tc(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    ref, ours = veths
    ifb_ref = link.create_ifb(h, "ifbref")
    ifb_ours = link.create_ifb(h, "ifbours")
    ns.exec("tc", "qdisc", "add", "dev", "ref", "ingress")
    cmd = "tc filter add dev ref parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 "
    ns.exec(*(cmd + "action mirred egress redirect dev ifbref").split())
    tc.add_ingress_qdisc(h, ours.index)
    tc.add_mirred_redirect_filter(h, ours.index, ifb_ours.index)
    assert _normalised_filters(ns, "ours") == _normalised_filters(ns, "ref")
    raw = ns.json("tc", "-j", "filter", "show", "dev", "ours", "ingress")
    assert raw[-1]["options"]["actions"][0]["to_dev"] == "ifbours"
    want, got = tc.list_filters(h, ref.index), tc.list_filters(h, ours.index)
    assert len(got) == len(want) == 3  # the u32 root, its hash table 800:, the rule 800::800
    for a, b in zip(want, got, strict=True):
        assert (a.kind, a.prio, a.protocol, a.handle, a.parent, a.classid) == (
            b.kind, b.prio, b.protocol, b.handle, b.parent, b.classid,
        )  # fmt: skip
    rule = got[-1]
    assert (rule.prio, rule.protocol, rule.classid, rule.parent) == (
        1,
        tc.ETH_P_ALL,
        0x10001,
        tc.INGRESS_HANDLE,
    )
    assert rule.actions == [
        tc.Action(kind="mirred", verdict=tc.TC_ACT_STOLEN, eaction=1, target=ifb_ours.index)
    ]
    assert want[-1].actions[0].target == ifb_ref.index


def test_filter_under_clsact(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    _, ours = veths
    ifb = link.create_ifb(h, "ifb0")
    ns.exec("tc", "qdisc", "add", "dev", "ours", "clsact")
    tc.add_mirred_redirect_filter(h, ours.index, ifb.index, parent=tc.CLSACT_INGRESS)
    shown = ns.json("tc", "-j", "filter", "show", "dev", "ours", "ingress")
    assert shown[-1]["options"]["actions"][0]["to_dev"] == "ifb0"
    assert tc.list_filters(h, ours.index, tc.CLSACT_INGRESS)[-1].actions[0].target == ifb.index


def test_delete_qdiscs(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    _, ours = veths
    ifb = link.create_ifb(h, "ifb0")
    tc.add_tbf(h, ours.index, 125_000, tc.xmittime(125_000, 16000), 19125)
    tc.add_ingress_qdisc(h, ours.index)
    tc.add_mirred_redirect_filter(h, ours.index, ifb.index)
    tc.delete_qdisc(h, ours.index, tc.TC_H_INGRESS)  # its filters go with it
    assert ns.json("tc", "-j", "filter", "show", "dev", "ours", "ingress") == []
    assert tc.list_filters(h, ours.index) == []
    tc.delete_qdisc(h, ours.index)
    kinds = {q["kind"] for q in ns.json("tc", "-j", "qdisc", "show", "dev", "ours")}
    assert kinds.isdisjoint({"tbf", "ingress"}) and tc.list_qdiscs(h, ours.index) == []
    with pytest.raises(OSError) as info:
        tc.delete_qdisc(h, ours.index, tc.TC_H_INGRESS)
    assert info.value.errno in (errno.EINVAL, errno.ENOENT)
    assert "delete qdisc" in str(info.value)


def test_list_qdiscs_all_links(h: Handle, ns: NS, veths: tuple[link.Link, link.Link]) -> None:
    ref, ours = veths
    tc.add_ingress_qdisc(h, ref.index)
    tc.add_ingress_qdisc(h, ours.index)
    every = tc.list_qdiscs(h)
    assert {q.index for q in every if q.kind == "ingress"} == {ref.index, ours.index}
    assert len(every) == len(ns.json("tc", "-j", "qdisc", "show"))
