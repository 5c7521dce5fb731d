"""Our bandwidth and the reference v1.9.1 on the same configs: results, kernel state, verbs.

Each side runs in its own `host`/`pod` namespaces after the reference `ptp`, so names that hash
the container ID differ; everything else read back from the kernel (qdiscs and their handles, the
redirect filter, the IFB's attributes) must be the same, and so must every verb's outcome
(success or failure; the codes differ where "Differences from the reference v1.9.1" in
docs/plugins/bandwidth.md says so).
"""

from __future__ import annotations

import json

import pytest
from helpers import ip_json, link, link_exists, tc_json

from .conftest import host_veth

pytestmark = pytest.mark.root

MBIT = 1_000_000
STATIC = {"ingressRate": 8 * MBIT, "ingressBurst": 800_000, "egressRate": 2 * MBIT, "egressBurst": 400_000}
IFB_KEYS = ("mtu", "txqlen", "operstate", "num_tx_queues", "num_rx_queues", "qdisc")


def _add(chain, bandwidth: dict | None, cap_args: dict | None = None) -> dict:
    chain.configure(bandwidth)
    return chain.run("add", cap_args=cap_args).check().json


def _ifb(chain, result: dict) -> str | None:
    names = [i["name"] for i in result["interfaces"] if i["name"].startswith("bwp")]
    return names[0] if names else None


def _qdiscs(chain, dev: str) -> list[tuple]:
    """(kind, handle, parent or root) of every qdisc but the default ones."""
    return sorted((q["kind"], q["handle"], "root" if q.get("root") else q.get("parent", ""))
                  for q in tc_json("qdisc", "show", "dev", dev, netns=chain.host.name)
                  if q["kind"] not in ("noqueue", "pfifo_fast", "mq", "fq_codel"))


def _filters(chain, dev: str, ifb: str | None) -> list[dict]:
    """The ingress filters of `dev` with their actions, the IFB's name replaced by "IFB"."""
    out = []
    for f in tc_json("filter", "show", "dev", dev, "ingress", netns=chain.host.name):
        opts = f.get("options", {})
        if not opts.get("actions"):
            continue
        actions = [{k: a.get(k) for k in ("kind", "mirred_action", "direction")}
                   | {"to_dev": "IFB" if a.get("to_dev") == ifb else a.get("to_dev")}
                   for a in opts["actions"]]
        # v1.9.1's filter carries the same redirect twice (its netlink library adds one for the
        # filter's redirect index, then the listed action); the second never runs
        actions = [a for i, a in enumerate(actions) if a not in actions[:i]]
        out.append({"kind": f["kind"], "protocol": f["protocol"], "pref": f["pref"],
                    "flowid": opts.get("flowid"), "match": opts.get("match"), "actions": actions})
    return out


def _tbf(chain, dev: str) -> dict | None:
    for q in tc_json("qdisc", "show", "dev", dev, netns=chain.host.name):
        if q["kind"] == "tbf":
            return {k: q["options"].get(k) for k in ("rate", "burst", "lat", "limit")}
    return None


def _state(chain, result: dict) -> dict:
    """What one side installed, in terms that do not depend on the container ID."""
    veth, ifb = host_veth(result), _ifb(chain, result)
    state = {"interfaces": [sorted(i) for i in result["interfaces"]], "veth_qdiscs": _qdiscs(chain, veth),
             "veth_tbf": _tbf(chain, veth), "filters": _filters(chain, veth, ifb), "ifb": None}
    if ifb is not None:
        info = link(ifb, chain.host.name)
        state["ifb"] = {k: info.get(k) for k in IFB_KEYS} | {
            "kind": info["linkinfo"]["info_kind"], "up": "UP" in info["flags"],
            "mac_listed": result["interfaces"][-1] == {"name": ifb, "mac": info["address"]},
            "qdiscs": _qdiscs(chain, ifb), "tbf": _tbf(chain, ifb)}
    return state


@pytest.mark.parametrize("config", [
    STATIC,
    {"ingressRate": 4 * MBIT, "ingressBurst": 64_000},
    {"egressRate": 4 * MBIT, "egressBurst": 64_000},
    {"ingressRate": 0, "ingressBurst": 0},
    # keys of v1.5 only (reverted before 1.6): ignored like any unknown key, everything is shaped
    {**STATIC, "unshapedSubnets": ["10.0.0.0/8"], "shapedSubnets": ["192.168.0.0/16"]},
], ids=["both", "ingress", "egress", "zero", "v1.5-subnets"])
def test_add_installs_the_same(chain, ref_chain, config):
    ours, theirs = _add(chain, config), _add(ref_chain, config)
    a, b = _state(chain, ours), _state(ref_chain, theirs)
    assert a == b, json.dumps([a, b])
    for c in (chain, ref_chain):
        c.run("check").check()
        c.run("del").check()
        c.run("del").check()
        assert not [x for x in ip_json("link", "show", netns=c.host.name) if x["ifname"].startswith("bwp")]


def test_runtime_config_installs_the_same(chain, ref_chain):
    caps = {"bandwidth": {"ingressRate": 10 * MBIT, "ingressBurst": 1_000_000,
                          "egressRate": 5 * MBIT, "egressBurst": 500_000}}
    conf = {"capabilities": {"bandwidth": True}}
    ours, theirs = _add(chain, conf, caps), _add(ref_chain, conf, caps)
    assert _state(chain, ours) == _state(ref_chain, theirs)
    assert _state(chain, ours)["ifb"]["tbf"]["rate"] == 625_000


def _verb(c, command: str, config: dict, **kw):
    return c.plugin(command, config, **kw)


def _both(chain, ref_chain, command: str, make, **kw) -> tuple:
    """Run `command` with `make(chain, result)`'s config on each side; (ours, theirs) outcomes."""
    return tuple(_verb(c, command, make(c), **kw) for c in (chain, ref_chain))


@pytest.mark.parametrize("case", ["no-limits-with-prev", "no-limits-no-prev", "limits-no-prev",
                                  "no-limits-foreign-prev"])
def test_check_outcomes(chain, ref_chain, case):
    """CHECK without limits is a no-op for us; v1.9.1 still wants prevResult and the container's
    veth in it (a listed difference)."""
    results = {id(c): _add(c, None) for c in (chain, ref_chain)}

    def make(c):
        conf = {"cniVersion": "1.0.0", "name": c.network, "type": "bandwidth"}
        if case == "limits-no-prev":
            return conf | STATIC
        if case == "no-limits-with-prev":
            return conf | {"prevResult": results[id(c)]}
        if case == "no-limits-foreign-prev":
            return conf | {"prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "cbr0"}]}}
        return conf

    ours, theirs = _both(chain, ref_chain, "CHECK", make)
    listed = case in ("no-limits-no-prev", "no-limits-foreign-prev")
    assert ours.ok == (theirs.ok or listed), (ours, theirs)
    assert theirs.ok == (case == "no-limits-with-prev"), theirs
    assert "Traceback" not in ours.stdout + ours.stderr
    if not ours.ok:
        assert ours.json["code"] == 7 and theirs.json["code"] == 999


@pytest.mark.parametrize("breakage, reference_sees_it", [
    ("veth-tbf-rate", True), ("ifb-gone", True),
    # v1.9.1 stops at the first qdisc that is not a tbf: the ingress qdisc hides the missing tbf
    ("veth-tbf-gone", False),
    ("redirect-gone", False),  # v1.9.1 does not look at the redirect
])
def test_check_finds_breakage(chain, ref_chain, breakage, reference_sees_it):
    for c in (chain, ref_chain):
        result = _add(c, STATIC)
        veth, ifb = host_veth(result), _ifb(c, result)
        if breakage == "veth-tbf-rate":
            c.host.exec("tc", "qdisc", "replace", "dev", veth, "root", "handle", "1:", "tbf", "rate", "9mbit",
                        "burst", "100000", "latency", "25ms")
        elif breakage == "veth-tbf-gone":
            c.host.exec("tc", "qdisc", "del", "dev", veth, "root")
        elif breakage == "redirect-gone":
            c.host.exec("tc", "qdisc", "del", "dev", veth, "ingress")
        else:
            c.host.exec("ip", "link", "del", ifb)
    ours, theirs = chain.run("check"), ref_chain.run("check")
    assert not ours.ok and ours.code == 999, ours
    assert theirs.ok != reference_sees_it, theirs


def test_del_without_prev_result_or_netns(chain, ref_chain):
    for c in (chain, ref_chain):
        result = _add(c, STATIC)
        ifb = _ifb(c, result)
        conf = {"cniVersion": "1.0.0", "name": c.network, "type": "bandwidth", **STATIC}
        c.plugin("DEL", conf, netns="").check()
        c.plugin("DEL", conf, netns="").check()
        assert not link_exists(ifb, c.host.name)


@pytest.mark.parametrize("bw", [{"ingressRate": 1000}, {"egressBurst": 1000},
                                {"ingressRate": 8000, "ingressBurst": 2**32 * 8}])
def test_invalid_config_fails_on_both(chain, ref_chain, bw):
    for c in (chain, ref_chain):
        c.configure(None)
        result = c.run("add").check().json
        conf = {"cniVersion": "1.0.0", "name": c.network, "type": "bandwidth", **bw, "prevResult": result}
        out = c.plugin("ADD", conf).expect_error()
        assert out.json["code"] == (7 if c is chain else 999), out
        assert not [x for x in ip_json("link", "show", netns=c.host.name) if x["ifname"].startswith("bwp")]
        assert _qdiscs(c, host_veth(result)) == []


def test_gc_and_status_succeed_on_both(chain, ref_chain):
    for c in (chain, ref_chain):
        conf = {"cniVersion": "1.1.0", "name": c.network, "type": "bandwidth"}
        c.plugin("STATUS", conf).check()
        c.plugin("GC", conf | {"cni.dev/valid-attachments": []}).check()
        out = c.plugin("VERSION", conf).check()
        assert out.json["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
