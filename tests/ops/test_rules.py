"""The pure rules of `pycni status` and `pycni gc`: which lists the runtime loads, who owns which
chain or rule, which attachments are valid, and the output for people."""

from __future__ import annotations

import ipaddress
import json

import pytest

from cni.layout import bandwidth as ifb_layout
from cni.layout import masq as masq_layout
from cni.layout import portmap as plan
from cni.layout.iptables_save import quote
from cni.net.firewall import masq
from cni.ops import attachments, cache, firewall, ifbs, node, render, stores
from cni.ops.libcni import conf_files, load_dir, parse_list, plugin_config

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
    return masq_layout.chain_name(net, cid)


def _dn(net: str, cid: str) -> str:
    return plan.dnat_chain(net, cid)


def _nat_save(*body: str) -> str:
    """An `iptables-save -t nat` dump holding the lines the writers produce."""
    lines = [line for part in body for line in part.splitlines() if line not in ("*nat", "COMMIT", "")]
    return "\n".join(["*nat", ":POSTROUTING ACCEPT [0:0]", *lines, "COMMIT", ""])


def _ipmasq(net: str, cid: str, address: str = "10.1.0.2/24") -> str:
    return masq.iptables_script([ipaddress.ip_interface(address)], net, cid)


def _dnat_entry(net: str, cid: str) -> str:
    return (f"-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment {quote(plan.comment(net, cid))} "
            f"-m multiport --dports 80 -j {_dn(net, cid)}")


def test_nat_chains_owned_by_what_the_plugins_wrote():
    masq_chain, dn = _masq("net", CID), _dn("net", CID)
    not_nat = "\n".join(["*filter", _ipmasq("net", "infilter").splitlines()[2], "COMMIT", ""])
    save = not_nat + _nat_save(
        _ipmasq("net", CID), f":{dn} - [0:0]", _dnat_entry("net", CID),
        # a comment naming an owner whose hash is not the chain: not attributed
        f'-A {_masq("net", "x")} -m comment --comment "name: \\"net\\" id: \\"other\\"" -j ACCEPT',
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK')
    chains = firewall.nat_chains(save, 4)
    assert sorted(chains) == sorted([firewall.Chain(4, masq_chain, "ipMasq", "net", CID),
                                     firewall.Chain(4, dn, "portmap", "net", CID)])


def test_a_changed_writer_breaks_its_reader(monkeypatch):
    """The reader goes through the layout: a comment written another way is no longer read as an
    owner, so a writer changed without its reader fails the test above."""
    monkeypatch.setattr(masq_layout, "comment", lambda net, cid: f"owner {net}/{cid}")
    assert firewall.nat_chains(_nat_save(_ipmasq("net", CID)), 4) == []
    monkeypatch.setattr(ifb_layout, "ifb_alias", lambda net, cid: f"bandwidth {net} {cid}")
    assert ifbs.ifbs([{"ifname": "bwp1", "ifalias": ifb_layout.ifb_alias("net", CID)}]) == [
        ifbs.Ifb("bwp1", None, None)]


def test_colliding_owners_of_one_chain_are_both_listed():
    """(X1, abc) and (X, 1abc) share a chain name; a chain both wrote to (the reference's ADD
    appends to it) is listed for each, one that only one wrote to for that one."""
    assert _masq("X1", "abc") == _masq("X", "1abc")
    one = firewall.nat_chains(_nat_save(_ipmasq("X", "1abc")), 4)
    assert [(c.network, c.container_id) for c in one] == [("X", "1abc")]
    both = firewall.nat_chains(_nat_save(_ipmasq("X", "1abc"), _ipmasq("X1", "abc", "10.1.0.3/24")), 4)
    assert sorted((c.network, c.container_id) for c in both) == [("X", "1abc"), ("X1", "abc")]


def test_nft_rules_and_ifb_tags():
    listing = {"nftables": [{"metainfo": {}}, {"rule": {"handle": 7, "comment":
               masq_layout.nft_comment("net", "eth0", CID)}},
               {"rule": {"handle": 8, "comment": "something else"}}]}
    assert firewall.nft_masq_rules(json.dumps(listing)) == [firewall.NftRule("net", "eth0", CID, 7)]
    assert firewall.nft_masq_rules("not json") == []
    links = [{"ifname": "bwp1", "ifalias": ifb_layout.ifb_alias("net", CID)},
             {"ifname": "bwp2"}, {"ifname": "bwp3", "ifalias": "someone else"}]
    assert ifbs.ifbs(links) == [ifbs.Ifb("bwp1", "net", CID), ifbs.Ifb("bwp2", None, None),
                                ifbs.Ifb("bwp3", None, None)]


def _state(**kw) -> node.NodeState:
    base = {"host_local": [], "cache": [], "chains": [], "nft_rules": [], "ifbs": [], "errors": []}
    base.update(kw)
    return node.NodeState(**base)


def _ifb(net: str, cid: str) -> str:
    return ifb_layout.ifb_name(net, cid)


def test_attachments_gather_every_resource_and_judge_it():
    live, old, young, other = "live" + "0" * 60, "old" + "0" * 61, "young" + "0" * 59, "x" * 64
    now = 10_000.0
    hl = stores.HostLocal("net", "bridge", "/d", [], [
        stores.Reservation("10.1.0.2", live, "eth0", now - 5000),
        stores.Reservation("10.1.0.3", old, "eth0", now - 5000),
        stores.Reservation("10.1.0.4", young, "eth0", now - 10),
        stores.Reservation("10.1.0.5", old, "", now - 5000),  # the older format: container ID only
    ], "")
    state = _state(
        host_local=[hl, stores.HostLocal("othernet", "bridge", "/d", [], [
            stores.Reservation("10.2.0.2", other, "eth0", 0)], "")],
        chains=[firewall.Chain(4, _masq("net", old), "ipMasq", "net", old),
                firewall.Chain(6, _masq("net", old), "ipMasq", "net", old),
                firewall.Chain(4, _dn("net", old), "portmap", "net", old)],
        ifbs=[ifbs.Ifb(_ifb("net", old), None, None),  # untagged: matched by name
              ifbs.Ifb(_ifb("net", live), "net", live), ifbs.Ifb(_ifb("othernet", other), "othernet", other),
              ifbs.Ifb("bwp000000000000", None, None), ifbs.Ifb("ifb0", None, None)])
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
    assert attachments.unowned_ifbs(["net", "othernet"], state) == ["bwp000000000000"]


def test_a_cached_attachment_whose_netns_exists_is_in_use(tmp_path):
    """Another runtime's container on a shared list (its namespace is there) is never collected."""
    entry = cache.CacheEntry("net", "other", "eth0", "/proc/self/ns/net", 0.0, "/x", [], {}, None,
                            cache.netns_alive("/proc/self/ns/net"))
    gone = entry._replace(container_id="gone", netns=str(tmp_path / "f"), netns_alive=False)
    (tmp_path / "f").write_text("")  # what a failed unmount leaves: not a namespace
    assert entry.netns_alive and not cache.netns_alive(str(tmp_path / "f")) and not cache.netns_alive("")
    atts = attachments.build("net", _state(cache=[entry, gone]))
    attachments.judge(atts, set(), 1e9, 0)
    assert {a.container_id: a.verdict for a in atts} == {"other": "in-use", "gone": "leaked"}
    assert attachments.valid_attachments(atts, set()) == [{"containerID": "other", "ifname": "eth0"}]


def test_every_listed_sandbox_is_valid_even_without_state():
    """A listed sandbox is never collected, whatever the node holds of it and however old."""
    atts = attachments.build("net", _state())
    assert attachments.valid_attachments(atts, {"s1"}) == [{"containerID": "s1", "ifname": "eth0"},
                                                           {"containerID": "s1", "ifname": "lo"}]
    hl = stores.HostLocal("net", "bridge", "/d", [], [stores.Reservation("10.1.0.9", "s1", "net1", 0.0)], "")
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


def test_one_config_is_libcnis():
    """What one plugin of a list gets (libcni's buildOneConfig and injectRuntimeConfig), shared by
    `pycni gc`'s DELs and the bench: prevResult when given, runtimeConfig holding only the
    capabilities the plugin declares true."""
    from cni.ops.libcni import find, make_list, one_config

    declared = {"portMappings": True, "bandwidth": False}
    lst = make_list("n", "1.0.0", [{"type": "portmap", "capabilities": declared}])
    caps = {"portMappings": [{"hostPort": 80}], "bandwidth": {"rate": 1}, "ips": ["10.0.0.2"]}
    conf = one_config(lst, lst.plugins[0], {"ips": []}, caps)
    assert conf == {"type": "portmap", "capabilities": declared, "name": "n", "cniVersion": "1.0.0",
                    "prevResult": {"ips": []}, "runtimeConfig": {"portMappings": [{"hostPort": 80}]}}
    odd = {"type": "x", "capabilities": {"ips": "yes"}}
    assert "runtimeConfig" not in one_config(lst, odd, None, caps)
    for bad in ("", ".", "..", "../sh", "a/b"):
        assert find("/usr/bin", bad) is None, bad
    assert find("/usr/bin", "env") == "/usr/bin/env"
