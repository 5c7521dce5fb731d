"""A cached result cut short by a kill, as libcni 1.3.0 (containerd 2.x) meets it, and libcni 1.1.2.

libcni writes an attachment's result to its cache after the ADD; a SIGKILL of the runtime while it
writes leaves the file empty or cut. libcni 1.1.2 (Debian 12's containerd 1.6, ``cnitool``) then
fails every DEL of that attachment before any plugin runs; libcni 1.3.0 (``cnidrive``) drops the
unreadable file and runs the DEL without ``prevResult``, and its GC skips the file (it names no
attachment) but still sends GC to every plugin. Each test runs ours and the reference v1.9.1 on
the same private node (see conftest.py) and reads back links, reservations, rules and the cache.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
from helpers import Cnitool, realnode

from .conftest import links

pytestmark = pytest.mark.root

CUTS = {"empty": 0, "half": 0.5}


@pytest.fixture(scope="session")
def cnidrive() -> Path:
    return realnode.require(realnode.CNIDRIVE)


def _driver(node, binary: Path) -> Cnitool:
    """``binary`` (cnitool or cnidrive: the same command line) run inside the node's namespace."""
    return node.cnitool.inside(node.path, binary=binary, cache_dir=node.cache_dir, env=node.launch_env,
                               keep_mounts=True)


def _cut(path: Path, share: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


def _sides(bin_dir: Path, ref_bin_dir: Path) -> dict[str, Path]:
    return {"ours": bin_dir, "ref": ref_bin_dir}


@pytest.mark.parametrize("side", ["ours", "ref"])
@pytest.mark.parametrize("cut", sorted(CUTS))
def test_del_after_a_cut_cache(node, bin_dir, ref_bin_dir, cnitool, cnidrive, state_dir, side, cut):
    """1.1.2 fails the DEL in libcni itself; 1.3.0 runs it without prevResult and leaves nothing."""
    plugins = _sides(bin_dir, ref_bin_dir)[side]
    n = node([{"type": "loopback"}, {"type": "bridge"}], ipmasq=True, version="1.1.0")
    old = _driver(n, cnitool.binary)
    new = _driver(n, cnidrive)
    pod, cid = n.pod(), secrets.token_hex(32)
    call = dict(netconf_dir=n.netconf_dir, cni_path=plugins, container_id=cid, cache_dir=n.cache_dir)
    new("add", n.name, pod, **call).check()
    cached = new.cache_file(n.name, pod, container_id=cid)
    assert cached.exists() and len(n.reservations()) == 1 and n.firewall()
    _cut(cached, CUTS[cut])

    failed = old("del", n.name, pod, **call)
    assert failed.rc != 0 and "unexpected end of JSON input" in failed.stdout + failed.stderr, failed
    assert len(n.reservations()) == 1 and "eth0" in links(pod), "1.1.2 ran no plugin"

    new("del", n.name, pod, **call).check()
    assert not cached.exists(), "1.3.0 drops the unreadable result"
    assert set(links(pod)) == {"lo"}, links(pod)
    assert n.reservations() == {}
    assert n.firewall() == [], "the ipMasq rules are found without prevResult"
    assert n.host_links() == {}


@pytest.mark.parametrize("side", ["ours", "ref"])
def test_gc_after_a_cut_cache_and_a_lost_pod(node, bin_dir, ref_bin_dir, cnidrive, state_dir, side):
    """The pod is gone (its namespace with it) and its cached result is cut: libcni 1.3.0's GC cannot
    DEL it, so only the plugins' GC can free it. Ours frees the reservation and the ipMasq rules;
    the reference bridge v1.9.1 has no GC (it answers success and passes nothing on), so both stay."""
    plugins = _sides(bin_dir, ref_bin_dir)[side]
    n = node([{"type": "loopback"}, {"type": "bridge"}], ipmasq=True, version="1.1.0")
    new = _driver(n, cnidrive)
    kept, lost = n.pod(), n.pod()
    ids = {kept: secrets.token_hex(32), lost: secrets.token_hex(32)}
    for pod, cid in ids.items():
        new("add", n.name, pod, netconf_dir=n.netconf_dir, cni_path=plugins, container_id=cid,
            cache_dir=n.cache_dir).check()
    cut = new.cache_file(n.name, lost, container_id=ids[lost])
    _cut(cut, 0.5)
    subprocess.run(["ip", "netns", "del", os.path.basename(lost)], check=True)

    new("gc", n.name, f"{ids[kept]}/eth0", netconf_dir=n.netconf_dir, cni_path=plugins,
        cache_dir=n.cache_dir).check()
    assert cut.exists(), "libcni's GC skips a cached result it cannot read"
    owners = "".join(n.reservations().values())
    assert ids[kept] in owners and "eth0" in links(kept), "the valid pod keeps everything"
    lost_rules = [r for r in n.firewall() if ids[lost] in r]
    if side == "ours":
        assert ids[lost] not in owners and lost_rules == []
    else:
        assert ids[lost] in owners and lost_rules, "the reference bridge v1.9.1 does not GC"
