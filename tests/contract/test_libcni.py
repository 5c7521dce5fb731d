"""Our executables driven by libcni (tests/tools/cnitool), the way a container runtime drives them.

libcni parses every answer with its own types: a result it cannot decode, an error it cannot
read, or a version it does not accept fails the call here. The chain loopback -> bandwidth (no
limits) makes libcni hand our first answer to our second plugin as prevResult, converted to the
list's version, and read back the pass-through.
"""

from __future__ import annotations

import pytest
from helpers import conflist, link, unique_name

pytestmark = pytest.mark.root

LIBCNI_VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]  # what Debian's libcni 1.1.2 drives


def lo_up(ns) -> bool:
    return "UP" in link("lo", ns)["flags"]


@pytest.fixture
def need(bin_dir):
    def check(*types: str) -> None:
        for t in types:
            assert (bin_dir / t).exists(), f"{t} is not built"
    return check


@pytest.mark.parametrize("version", LIBCNI_VERSIONS)
def test_chain_loopback_then_bandwidth(version, cnitool, bin_dir, netns, netconf, state_dir, need):
    need("loopback", "bandwidth")
    ns = netns()
    name = unique_name("chain-", 8)
    netconf(conflist(name, [{"type": "loopback"}, {"type": "bandwidth"}], cni_version=version))
    common = {"netconf_dir": netconf.dir, "cni_path": bin_dir, "cache_dir": state_dir / "cache"}

    added = cnitool("add", name, ns, **common).check()
    assert lo_up(ns)
    assert added.json["cniVersion"] == version
    assert added.json["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ns.path}]
    assert "127.0.0.1/8" in [ip["address"] for ip in added.json["ips"]]
    cache = cnitool.cache_file(name, ns, cache_dir=state_dir / "cache")
    assert cache.exists()

    if version != "0.3.1":
        cnitool("check", name, ns, **common).check()
    cnitool("del", name, ns, **common).check()
    assert not lo_up(ns)
    assert not cache.exists()


def test_single_plugin_conf_in_020(cnitool, bin_dir, netns, netconf, state_dir, need):
    """A .conf file is wrapped into a list by libcni; 0.2.0 answers come back as ip4/ip6."""
    need("loopback")
    ns = netns()
    name = unique_name("conf-", 8)
    netconf({"cniVersion": "0.2.0", "name": name, "type": "loopback"})
    common = {"netconf_dir": netconf.dir, "cni_path": bin_dir, "cache_dir": state_dir / "cache"}
    added = cnitool("add", name, ns, **common).check()
    assert added.json["ip4"]["ip"] == "127.0.0.1/8"
    assert "ips" not in added.json
    assert lo_up(ns)
    cnitool("del", name, ns, **common).check()
    assert not lo_up(ns)


def test_our_error_reaches_the_runtime_intact(cnitool, bin_dir, netns, netconf, state_dir, need):
    """libcni decodes our error JSON: code and message arrive as we printed them."""
    need("loopback")
    ns = netns()
    name = unique_name("err-", 8)
    netconf(conflist(name, [{"type": "loopback", "args": ["not", "an", "object"]}], cni_version="1.0.0"))
    out = cnitool("add", name, ns, netconf_dir=netconf.dir, cni_path=bin_dir, cache_dir=state_dir / "cache")
    out.expect_error(7)
    assert "args" in out.json["msg"]
    assert not lo_up(ns)
