"""host-local and loopback against the reference v1.9.1 (`ref_bin_dir`) on the contract: every verb in
every spec version, the CNI_* variables, the config's envelope. Each call goes to both; the exit
status and the error code must be the same, and the message too where skel's words are ours.

Where we answer otherwise on purpose, the case is in DIFFERENT with both answers, so a change on
either side fails here; "Differences from the reference v1.9.1" in docs/plugins/host-local.md and
loopback.md gives the reasons.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import unique_name

pytestmark = pytest.mark.root

VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "0.5.0", "1.2.0", "x", "1.1"]
VERBS = ["ADD", "CHECK", "DEL", "STATUS", "GC"]
UNSET = None


def _outcome(out) -> tuple:
    """(exit status, code, msg) of a failure; (0, the result) of a success."""
    if out.rc == 0:
        return 0, out.json
    return out.rc, out.code, out.msg


def _config(plugin: str, version: str, data: Path) -> dict:
    if plugin == "loopback":
        return {"cniVersion": version, "name": "lonet", "type": "loopback"}
    return {"cniVersion": version, "name": "hl", "type": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": str(data)}}


@pytest.fixture
def both(run_plugin, bin_dir, ref_bin_dir, netns, state_dir):
    """call(plugin, verb, config_of(data dir) or bytes, **env) -> (ours, reference), each in a
    namespace and a data directory of its own."""
    spaces = {"ours": netns(), "ref": netns()}

    def call(plugin: str, verb: str, config, **env):
        answers = []
        for label, plugins in (("ours", bin_dir), ("ref", ref_bin_dir)):
            conf = config(state_dir / label) if callable(config) else config
            kw = {"netns": spaces[label].path, "container_id": "ctr1", "ifname": "eth0",
                  "cni_path": plugins, **env}
            if verb in ("STATUS", "GC"):
                kw = {"netns": None, "container_id": None, "ifname": None, "cni_path": plugins, **env}
            answers.append(run_plugin(plugins / plugin, verb, conf, **kw))
        return answers

    return call


@pytest.mark.parametrize("plugin", ["host-local", "loopback"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_verb_in_every_version(both, plugin, version):
    for verb in VERBS:
        mine, theirs = both(plugin, verb, lambda d: _config(plugin, version, d))
        if plugin == "loopback" and verb == "ADD" and mine.rc == 0 and version < "1.0.0":
            # docs/plugins/loopback.md: before 1.0.0 ours is in the version's own format,
            # v1.9.1 prints 1.0.0's shape
            assert theirs.rc == 0 and mine.json["cniVersion"] == theirs.json["cniVersion"] == version
            continue
        if plugin == "loopback" and verb == "ADD" and mine.rc == 0:
            for answer in (mine, theirs):
                answer.json["interfaces"][0].pop("sandbox")   # each ran in its own namespace
        assert _outcome(mine) == _outcome(theirs), (verb, version, mine.describe(), theirs.describe())


def _env_cases(plugin: str) -> list[tuple[str, str, dict]]:
    return [
        ("no-command", "ADD", {"extra_env": {"CNI_COMMAND": None}}),
        ("unknown-command", "FROB", {}),
        ("no-containerid", "ADD", {"container_id": UNSET}),
        ("no-containerid-del", "DEL", {"container_id": UNSET}),
        ("no-ifname", "ADD", {"ifname": UNSET}),
        ("no-netns", "ADD", {"netns": UNSET}),
        ("no-netns-check", "CHECK", {"netns": UNSET}),
        ("no-path", "ADD", {"extra_env": {"CNI_PATH": None}}),
        ("no-path-gc", "GC", {"extra_env": {"CNI_PATH": None}}),
        ("bad-containerid", "ADD", {"container_id": "a/b"}),
        ("bad-ifname", "ADD", {"ifname": "a/b"}),
        ("long-ifname", "CHECK", {"ifname": "x" * 16}),
        ("netns-not-needed-for-del", "DEL", {"netns": UNSET}),
    ]


@pytest.mark.parametrize("plugin", ["host-local", "loopback"])
def test_the_cni_variables(both, plugin):
    for label, verb, env in _env_cases(plugin):
        mine, theirs = both(plugin, verb, lambda d: _config(plugin, "1.1.0", d), **env)
        assert (mine.rc, mine.code) == (theirs.rc, theirs.code), (label, mine.describe(), theirs.describe())
        if mine.rc and label in ("unknown-command", "no-command"):
            assert mine.msg == theirs.msg, label


ENVELOPE = {
    "not-json": b"{nope",
    "empty": b"",
    "no-name": json.dumps({"cniVersion": "1.1.0", "type": "loopback"}).encode(),
    "bad-name": json.dumps({"cniVersion": "1.1.0", "name": "a/b", "type": "loopback"}).encode(),
    "version-not-string": json.dumps({"cniVersion": 1, "name": "n", "type": "loopback"}).encode(),
    "array": b"[]",
}


@pytest.mark.parametrize("plugin", ["host-local", "loopback"])
@pytest.mark.parametrize("case", sorted(ENVELOPE))
def test_the_config_envelope(both, plugin, case):
    mine, theirs = both(plugin, "ADD", ENVELOPE[case])
    assert (mine.rc, mine.code) == (theirs.rc, theirs.code), (case, mine.describe(), theirs.describe())


def _hl(d: Path, version: str = "1.1.0", **ipam) -> dict:
    conf = _config("host-local", version, d)
    conf["ipam"].update(ipam)
    return conf


# case: (plugin, verb, config of the data dir, env, ours (rc, code), reference's (rc, code))
DIFFERENT = {
    "hl-cni-args-not-pairs": ("host-local", "ADD", _hl, {"cni_args": "garbage"}, (1, 4), (1, 999)),
    "hl-cni-args-unknown": ("host-local", "ADD", _hl, {"cni_args": "FOO=1"}, (1, 4), (1, 999)),
    "hl-ipam-not-object": ("host-local", "ADD", lambda d: {**_hl(d), "ipam": 5}, {}, (1, 7), (1, 999)),
    "hl-no-ipam": ("host-local", "ADD", lambda d: {"cniVersion": "1.1.0", "name": "hl", "type": "x"}, {},
                   (1, 7), (1, 999)),
    "hl-resolvconf-missing": ("host-local", "ADD", lambda d: _hl(d, resolvConf="/nonexistent/pycni"), {},
                              (1, 5), (1, 999)),
    "hl-datadir-a-file": ("host-local", "ADD", lambda d: _hl(d, dataDir="/etc/hostname"), {},
                          (1, 5), (1, 999)),
    "hl-del-datadir-a-file": ("host-local", "DEL", lambda d: _hl(d, dataDir="/etc/hostname"), {},
                              (0,), (1, 999)),
    "hl-del-invalid-range": ("host-local", "DEL", lambda d: _hl(d, subnet="nope"), {}, (0,), (1, 999)),
    "hl-check-invalid-range": ("host-local", "CHECK", lambda d: _hl(d, subnet="nope"), {}, (1, 7), (1, 999)),
    "hl-status-invalid-range": ("host-local", "STATUS", lambda d: _hl(d, subnet="nope"), {}, (1, 7), (0,)),
    "lo-netns-gone": ("loopback", "ADD", lambda d: _config("loopback", "1.1.0", d),
                      {"netns": "/var/run/netns/pycni-gone-" + unique_name("", 6)}, (1, 3), (1, 999)),
    "lo-del-netns-not-a-namespace": ("loopback", "DEL", lambda d: _config("loopback", "1.1.0", d),
                                     {"netns": "/etc/hostname"}, (0,), (1, 999)),
    "lo-add-netns-not-a-namespace": ("loopback", "ADD", lambda d: _config("loopback", "1.1.0", d),
                                     {"netns": "/etc/hostname"}, (1, 3), (1, 999)),
    "hl-ifname-with-percent": ("host-local", "ADD", _hl, {"ifname": "eth%d"}, (1, 4), (0,)),
    "hl-gc-attachments-not-a-list": ("host-local", "GC", lambda d: {
        **_hl(d), "cni.dev/valid-attachments": "x"}, {}, (1, 7), (0,)),
    "lo-prev-result-older-version": ("loopback", "ADD", lambda d: {**_config("loopback", "1.0.0", d),
        "prevResult": {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.1.1/24"}]}}, {},
        (0,), (1, 999)),
    "lo-prev-result-not-parsing": ("loopback", "ADD", lambda d: {**_config("loopback", "1.1.0", d),
        "prevResult": {"cniVersion": "1.1.0", "ips": "x"}}, {}, (1, 6), (1, 999)),
}


def test_host_local_ignores_a_prev_result_like_the_reference(both):
    """An IPAM plugin has no use for prevResult: one that does not parse fails neither."""
    def config(d: Path) -> dict:
        return {**_hl(d), "prevResult": {"cniVersion": "1.1.0", "ips": "x", "interfaces": 5}}

    for verb in ("ADD", "CHECK", "DEL"):
        mine, theirs = both("host-local", verb, config)
        assert _outcome(mine) == _outcome(theirs) and mine.rc == 0, (verb, mine.describe())


@pytest.mark.parametrize("case", sorted(DIFFERENT))
def test_the_differences_are_the_documented_ones(both, case):
    plugin, verb, config, env, expect_ours, expect_ref = DIFFERENT[case]
    mine, theirs = both(plugin, verb, config, **env)
    assert (mine.rc, mine.code)[:len(expect_ours)] == expect_ours, mine.describe()
    assert (theirs.rc, theirs.code)[:len(expect_ref)] == expect_ref, theirs.describe()
