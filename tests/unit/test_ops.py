"""The pure rules of `pycni status` and `pycni gc`: which lists the runtime loads, who owns which
chain or rule, which attachments are valid, and the output for people."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cni.names import hashed_name
from cni.ops import attachments, node, render
from cni.ops.netconf import conf_files, load_dir, parse_list, plugin_config

CID = "a" * 64


def test_conf_files_in_the_runtimes_order():
    names = ["10-kindnet.conflist", "00-pycni.conflist", "99.json", "05-x.conf", ".00-pycni.conflist.tmp",
             "README", "01-y.conflist.bak", ".hidden.conflist"]
    assert conf_files(names) == [".hidden.conflist", "00-pycni.conflist", "05-x.conf", "10-kindnet.conflist",
                                 "99.json"]


def test_parse_list_wraps_single_plugins_and_says_what_is_wrong():
    lst = parse_list("05-x.conf", json.dumps({"cniVersion": "0.3.1", "name": "n", "type": "bridge"}).encode())
    got = (lst.name, lst.version, [p["type"] for p in lst.plugins], lst.error)
    assert got == ("n", "0.3.1", ["bridge"], "")
    assert parse_list("a.conflist", b"{").error.startswith("not JSON")
    assert parse_list("a.conflist", b'{"name": "n", "plugins": []}').error == "no plugins"
    no_type = parse_list("a.conflist", b'{"name": "n", "plugins": [{"x": 1}]}')
    assert no_type.error == "a plugin without a type"
    list_in_conf = parse_list("a.conf", b'{"name": "n", "plugins": [{"type": "b"}]}')
    assert "network type not found" in list_in_conf.error
    assert parse_list("a.conflist", b'{"plugins": [{"type": "b"}]}').error == "no network name"
    picked = parse_list("a.conflist", b'{"name": "n", "cniVersions": ["0.4.0", "1.1.0", "9.0.0"], '
                                      b'"plugins": [{"type": "b"}], "disableGC": true}')
    assert picked.version == "1.1.0" and picked.disable_gc
    assert parse_list("a.conflist", b'{"name": "n", "plugins": [{"type": "b"}]}').version == "0.1.0"


def test_load_dir_reads_every_file(tmp_path):
    (tmp_path / "00-a.conflist").write_text('{"name": "a", "cniVersion": "1.0.0", '
                                            '"plugins": [{"type": "x"}]}')
    (tmp_path / "10-b.conf").write_text("not json")
    (tmp_path / "sub.conflist").mkdir()
    lists = load_dir(str(tmp_path))
    assert [(lst.file, lst.name, bool(lst.error)) for lst in lists] == [("00-a.conflist", "a", False),
                                                                        ("10-b.conf", "", True)]
    with pytest.raises(OSError, match="cannot read the CNI config directory"):
        load_dir(str(tmp_path / "missing"))


def test_plugin_config_injects_name_and_version():
    lst = parse_list("a.conflist", b'{"name": "n", "cniVersion": "1.0.0", '
                                   b'"plugins": [{"type": "b", "name": "x"}]}')
    conf = plugin_config(lst, lst.plugins[0], "1.1.0", {"cni.dev/valid-attachments": []})
    assert conf == {"type": "b", "name": "n", "cniVersion": "1.1.0", "cni.dev/valid-attachments": []}
    assert lst.plugins[0]["name"] == "x", "the list itself is not changed"


def _masq(net: str, cid: str) -> str:
    return hashed_name("CNI-", net + cid, 28)


def _dn(net: str, cid: str) -> str:
    return hashed_name("CNI-DN-", net + cid, 28)


def test_nat_chains_owned_by_their_comments():
    masq, dn = _masq("net", CID), _dn("net", CID)
    comment = f'"name: \\"net\\" id: \\"{CID}\\""'
    save = "\n".join([
        "*filter", f"-A {masq} -m comment --comment {comment} -j ACCEPT",  # not the nat table
        "*nat", f":{masq} - [0:0]", f":{dn} - [0:0]",
        f"-A POSTROUTING -s 10.1.0.2/32 -m comment --comment {comment} -j {masq}",
        f"-A {masq} -d 10.1.0.0/24 -m comment --comment {comment} -j ACCEPT",
        f'-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"net\\" id: \\"{CID}\\"" '
        f"-m multiport --dports 80 -j {dn}",
        # a comment naming an owner whose hash is not the chain: not attributed
        '-A CNI-deadbeef -m comment --comment "name: \\"net\\" id: \\"other\\"" -j ACCEPT',
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK',
        "COMMIT"])
    chains = node.nat_chains(save, 4)
    assert sorted(chains) == sorted([node.Chain(4, masq, "ipMasq", "net", CID),
                                     node.Chain(4, dn, "portmap", "net", CID)])


def test_nft_rules_and_ifb_tags():
    listing = {"nftables": [{"metainfo": {}}, {"rule": {"handle": 7, "comment":
               f"0123456789abcdef-0123456789abcdef, net: net, if: eth0, id: {CID}"}},
               {"rule": {"handle": 8, "comment": "something else"}}]}
    assert node.nft_masq_rules(json.dumps(listing)) == [node.NftRule("net", "eth0", CID, 7)]
    assert node.nft_masq_rules("not json") == []
    links = [{"ifname": "bwp1", "ifalias": f"pycni-bandwidth network=net container={CID}"},
             {"ifname": "bwp2"}, {"ifname": "bwp3", "ifalias": "someone else"}]
    assert node.ifbs(links) == [node.Ifb("bwp1", "net", CID), node.Ifb("bwp2", None, None),
                                node.Ifb("bwp3", None, None)]


def _state(**kw) -> node.NodeState:
    base = {"host_local": [], "cache": [], "chains": [], "nft_rules": [], "ifbs": [], "errors": []}
    base.update(kw)
    return node.NodeState(**base)


def _ifb(net: str, cid: str) -> str:
    return hashed_name("bwp", net + cid, 15)


def test_attachments_gather_every_resource_and_judge_it():
    live, old, young, other = "live" + "0" * 60, "old" + "0" * 61, "young" + "0" * 59, "x" * 64
    now = 10_000.0
    hl = node.HostLocal("net", "bridge", "/d", [], [
        node.Reservation("10.1.0.2", live, "eth0", now - 5000),
        node.Reservation("10.1.0.3", old, "eth0", now - 5000),
        node.Reservation("10.1.0.4", young, "eth0", now - 10),
        node.Reservation("10.1.0.5", old, "", now - 5000),  # the older format: container ID only
    ], "")
    state = _state(
        host_local=[hl, node.HostLocal("othernet", "bridge", "/d", [], [
            node.Reservation("10.2.0.2", other, "eth0", 0)], "")],
        chains=[node.Chain(4, _masq("net", old), "ipMasq", "net", old),
                node.Chain(6, _masq("net", old), "ipMasq", "net", old),
                node.Chain(4, _dn("net", old), "portmap", "net", old)],
        ifbs=[node.Ifb(_ifb("net", old), None, None),  # untagged: matched by name
              node.Ifb(_ifb("net", live), "net", live), node.Ifb(_ifb("othernet", other), "othernet", other),
              node.Ifb("bwpunknown", None, None), node.Ifb("ifb0", None, None)])
    atts = attachments.build("net", state)
    by = {a.key(): a for a in atts}
    assert set(by) == {(live, "eth0"), (old, "eth0"), (old, ""), (young, "eth0")}
    assert by[(old, "eth0")].ipmasq == [_masq("net", old), f"v6:{_masq('net', old)}"]
    assert by[(old, "eth0")].portmap == [_dn("net", old)] and by[(old, "eth0")].ifbs == [_ifb("net", old)]
    assert by[(live, "eth0")].ifbs == [_ifb("net", live)]
    attachments.judge(atts, {live}, now, grace=300)
    assert {k: a.verdict for k, a in by.items()} == {
        (live, "eth0"): "live", (old, "eth0"): "leaked", (old, ""): "leaked", (young, "eth0"): "young"}
    valid = attachments.valid_attachments(atts, {live})
    assert valid == [{"containerID": live, "ifname": "eth0"}, {"containerID": live, "ifname": "lo"},
                     {"containerID": young, "ifname": "eth0"}]
    attachments.judge(atts, None, now, grace=300)
    assert {a.verdict for a in atts} == {"unknown"}
    assert attachments.unowned_ifbs(["net", "othernet"], state) == ["bwpunknown"]


def test_a_cached_attachment_whose_netns_exists_is_in_use(tmp_path):
    """Another runtime's container on a shared list (its namespace is there) is never collected."""
    entry = node.CacheEntry("net", "other", "eth0", "/proc/self/ns/net", 0.0, "/x", [], {}, None,
                            node.netns_alive("/proc/self/ns/net"))
    gone = entry._replace(container_id="gone", netns=str(tmp_path / "f"), netns_alive=False)
    (tmp_path / "f").write_text("")  # what a failed unmount leaves: not a namespace
    assert entry.netns_alive and not node.netns_alive(str(tmp_path / "f")) and not node.netns_alive("")
    atts = attachments.build("net", _state(cache=[entry, gone]))
    attachments.judge(atts, set(), 1e9, 0)
    assert {a.container_id: a.verdict for a in atts} == {"other": "in-use", "gone": "leaked"}
    assert attachments.valid_attachments(atts, set()) == [{"containerID": "other", "ifname": "eth0"}]


def test_every_listed_sandbox_is_valid_even_without_state():
    """A listed sandbox is never collected, whatever the node holds of it and however old."""
    atts = attachments.build("net", _state())
    assert attachments.valid_attachments(atts, {"s1"}) == [{"containerID": "s1", "ifname": "eth0"},
                                                           {"containerID": "s1", "ifname": "lo"}]
    hl = node.HostLocal("net", "bridge", "/d", [], [node.Reservation("10.1.0.9", "s1", "net1", 0.0)], "")
    atts = attachments.build("net", _state(host_local=[hl]))
    attachments.judge(atts, {"s1"}, 1e9, 0)
    assert {"containerID": "s1", "ifname": "net1"} in attachments.valid_attachments(atts, {"s1"})


def test_render_status_and_gc():
    ok = {"ok": True, "code": None, "msg": None, "details": None}
    plugins = [{"type": "bridge", "executable": "/opt/cni/bin/bridge", "status": ok, "note": None},
               {"type": "portmap", "executable": None, "status": None, "note": None}]
    att = {"containerID": CID, "ifname": "eth0", "verdict": "live", "ageSeconds": 4000,
           "addresses": ["10.1.0.2"], "ipMasq": [], "portmap": [], "ifbs": [], "cached": True}
    good = {"file": "00-a.conflist", "usedByRuntime": True, "name": "a", "cniVersion": "1.0.0",
            "error": None, "note": "n", "plugins": plugins, "hostLocal": [], "attachments": [att]}
    bad = {"file": "10-b.conf", "usedByRuntime": False, "name": None, "cniVersion": None,
           "error": "not JSON", "note": None, "plugins": [], "hostLocal": [], "attachments": []}
    runtime = {"endpoint": "unix:///s", "reachable": True, "error": None,
               "sandboxes": [{"id": CID, "name": "p", "namespace": "d", "state": "ready"}]}
    report = {"confDir": "/etc/cni/net.d", "binDir": "/opt/cni/bin", "graceSeconds": 300,
              "runtime": runtime, "networks": [good, bad], "unownedIfbs": [], "errors": []}
    text = render.status(report)
    assert "00-a.conflist: network a, cniVersion 1.0.0  <- the runtime's network" in text
    assert "NOT FOUND" in text and "10-b.conf: INVALID: not JSON" in text and "1h" in text
    assert f"{CID[:12]}…" in text
    unreachable = {"endpoint": "unix:///s", "reachable": False, "error": "boom", "sandboxes": None}
    assert "NOT REACHABLE: boom" in render.status(dict(report, runtime=unreachable))
    warm = {"socket": "/run/pycni/warm.sock", "running": True, "pid": 42, "buildId": "abc",
            "bundleMatches": True, "rssKiB": 20480, "pssKiB": 10240, "error": None}
    assert ("warm process: running, pid 42, serves this bundle (build abc), RSS 20.0 MiB (PSS 10.0 MiB)"
            in render.status(dict(report, warm=warm)))
    assert "serves ANOTHER bundle" in render.status(dict(report, warm=dict(warm, bundleMatches=False)))
    down = dict(warm, running=False, error="not running (No such file or directory)")
    assert ("warm process: /run/pycni/warm.sock: not running (No such file or directory); "
            "plugin calls run cold" in render.status(dict(report, warm=down)))
    gc = {"runtime": unreachable, "error": "nothing was collected: boom", "dryRun": False, "networks": []}
    assert "nothing was collected" in render.gc(gc)
