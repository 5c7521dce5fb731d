"""Faults a node meets, each with its exact outcome: a full or read-only data directory, the xtables
lock held by another process, a reboot, and `lo` and `eth0` attached to one sandbox at the same time.

Every chain runs through libcni (cnitool) inside a private node namespace (see conftest.py); the
xtables lock is a private file named by XTABLES_LOCKFILE, never the host's /run/xtables.lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.xtables import XTABLES_BOUND, HeldLock, legacy_tools

from .conftest import in_ns, links

pytestmark = pytest.mark.root

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _ipam_conf(node, version: str = "1.0.0") -> dict:
    return {"cniVersion": version, "name": node.name, "type": "host-local",
            "ipam": {"type": "host-local", "subnet": node.subnet, "dataDir": str(node.data_dir)}}


def _status(run_plugin, bin_dir: Path, node, plugin: Path | None = None):
    conf = _ipam_conf(node, "1.1.0")
    return run_plugin(plugin or bin_dir / "host-local", "STATUS", conf, container_id=None, ifname=None,
                      netns=None, cni_path=bin_dir)


def _nothing_of(node, pod: str) -> None:
    """The pod's attachment left nothing: no link in the pod but lo, no reservation, no cached result."""
    assert set(links(pod)) == {"lo"}, links(pod)
    cid = node.cnitool.container_id(pod)
    assert cid not in "".join(node.reservations().values()), node.reservations()
    assert not list(node.cache_dir.glob(f"results/*{cid}*"))


# ---- the data directory full --------------------------------------------------------------------
def _fill(mount: Path, inodes_free: int | None, pages_free: int | None) -> None:
    """Use up the tmpfs until exactly `inodes_free` inodes / `pages_free` pages remain."""
    filler = mount / "filler"
    filler.mkdir(exist_ok=True)
    if pages_free is not None:
        st = os.statvfs(mount)
        with open(filler / "pages", "ab") as f:
            f.write(b"\0" * ((st.f_bfree - pages_free) * st.f_bsize))
    if inodes_free is not None:
        n = 0
        while os.statvfs(mount).f_ffree > inodes_free:
            (filler / f"i{n}").touch()
            n += 1
    st = os.statvfs(mount)
    if pages_free is not None:
        assert st.f_bfree == pages_free, st
    if inodes_free is not None:
        assert st.f_ffree == inodes_free, st


@pytest.fixture
def small_tmpfs(state_dir: Path):
    mount = state_dir / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,nr_inodes=200,mode=0755", "tmpfs", str(mount)],
                   check=True, capture_output=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


# What the ADD of one more pod needs from the disk, in order: a temporary reservation file (one
# inode, one page), its hard link under the address (one more inode), the new last_reserved_ip
# (a temporary file of one page, renamed). Each case leaves exactly too little for one of them.
FULL_AT = {"temp file": (None, 0), "link": (1, None), "last_reserved_ip": (None, 1)}


@pytest.mark.parametrize("where", list(FULL_AT))
def test_data_dir_full(node, bin_dir, run_plugin, small_tmpfs, where):
    n = node(data_dir=small_tmpfs, ipmasq=False)
    first, second = n.pod(), n.pod()
    n("add", first, bin_dir).check()
    before = n.reservations()
    assert len(before) == 1
    _fill(small_tmpfs, *FULL_AT[where])

    out = n("add", second, bin_dir).expect_error(5)
    assert "No space left on device" in out.msg, out.describe()
    _nothing_of(n, second)
    assert n.reservations() == before
    assert not [p.name for p in (small_tmpfs / n.name).iterdir() if p.name.startswith(".")]
    assert len(n.host_links()) == 1, n.host_links()  # the first pod's veth only
    status = _status(run_plugin, bin_dir, n).expect_error(50)
    assert "No space left on device" in status.msg, status.describe()

    n("del", second, bin_dir).check()      # the runtime's DEL after the failed ADD
    n("del", first, bin_dir).check()       # and a DEL still releases on the full disk
    assert n.reservations() == {}
    assert n.host_links() == {}
    subprocess.run(["rm", "-rf", str(small_tmpfs / "filler")], check=True)
    _status(run_plugin, bin_dir, n).check()
    n("add", second, bin_dir).check()
    n("del", second, bin_dir).check()


# ---- the data directory read-only ---------------------------------------------------------------
def test_data_dir_read_only(node, bin_dir, state_dir, run_plugin):
    n = node(ipmasq=True)
    first, second = n.pod(), n.pod()
    n("add", first, bin_dir).check()
    before, rules = n.reservations(), n.firewall()
    # The same cnitool, in a private mount namespace where the data directory is remounted read-only.
    script = (f'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && '
              f'exec nsenter --net={n.path} -- {n.real_cnitool} "$@"')
    ro = state_dir / f"ro-{n.name}"
    ro.write_text(f"#!/bin/sh\n{n.shell_env}\nexec unshare -m --propagation private sh -c '{script}' "
                  f"'{n.data_dir}' \"$@\"\n")
    ro.chmod(0o755)
    n.cnitool.binary, rw = ro, n.cnitool.binary
    try:
        out = n("add", second, bin_dir).expect_error(5)
        assert "Read-only file system" in out.msg, out.describe()
    finally:
        n.cnitool.binary = rw
    _nothing_of(n, second)
    assert n.reservations() == before and n.firewall() == rules
    assert len(n.host_links()) == 1, n.host_links()
    n("del", second, bin_dir).check()
    n("del", first, bin_dir).check()
    assert n.reservations() == {} and n.firewall() == [] and n.host_links() == {}


# ---- the xtables lock -----------------------------------------------------------------------------
@pytest.fixture
def legacy_env(state_dir: Path) -> dict:
    """PATH with the legacy iptables (the backend that takes the xtables lock) and a private lock."""
    d = legacy_tools(state_dir / "legacy-bin")
    return {"PATH": f"{d}:{SYSTEM_PATH}", "XTABLES_LOCKFILE": str(state_dir / "xtables.lock")}


def test_xtables_lock_held_longer_than_the_bound(node, bin_dir, legacy_env):
    n = node(ipmasq=True)
    first, second = n.pod(), n.pod()
    lock = HeldLock(legacy_env["XTABLES_LOCKFILE"])
    try:
        t0 = time.monotonic()
        out = n("add", first, bin_dir, extra_env=legacy_env).expect_error(11)  # try again later
        waited = time.monotonic() - t0
        assert "xtables lock" in out.msg and f"{XTABLES_BOUND} s" in out.msg, out.describe()
        assert XTABLES_BOUND <= waited < XTABLES_BOUND + 15, waited
        _nothing_of(n, first)
        assert n.host_links() == {} and n.firewall("iptables-legacy-save") == []
    finally:
        lock.release()
    n("del", first, bin_dir, extra_env=legacy_env).check()   # the runtime's DEL after the failed ADD

    # A DEL that meets the lock fails the same way and succeeds when retried once it is free.
    n("add", second, bin_dir, extra_env=legacy_env).check()
    assert n.firewall("iptables-legacy-save")
    lock = HeldLock(legacy_env["XTABLES_LOCKFILE"])
    try:
        out = n("del", second, bin_dir, extra_env=legacy_env).expect_error(11)
        assert "xtables lock" in out.msg, out.describe()
    finally:
        lock.release()
    n("del", second, bin_dir, extra_env=legacy_env).check()
    _nothing_of(n, second)
    assert n.host_links() == {} and n.firewall("iptables-legacy-save") == []
    assert n.reservations() == {}


# ---- a reboot -------------------------------------------------------------------------------------
@pytest.mark.parametrize("data_on", ["disk", "tmpfs"])
def test_reboot_leaks_and_gc_frees(node, bin_dir, run_plugin, state_dir, small_tmpfs, data_on):
    """A reboot takes the namespaces, links and rules; the dataDir's files stay on disk (not on tmpfs,
    kind's /run/cni-ipam-state). What stays is exactly the reservations, and GC frees them."""
    data = state_dir / "ipam-disk" if data_on == "disk" else small_tmpfs
    n = node(data_dir=data, ipmasq=True)
    pods = [n.pod() for _ in range(3)]
    for p in pods:
        n("add", p, bin_dir).check()
    held = n.reservations()
    assert len(held) == 3
    # The reboot: every namespace and link goes, and a tmpfs starts empty.
    for p in pods:
        subprocess.run(["ip", "netns", "del", os.path.basename(p)], check=True)
    subprocess.run(["ip", "netns", "del", n.name], check=True)
    if data_on == "tmpfs":
        subprocess.run(["umount", str(small_tmpfs)], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small_tmpfs)], check=True)
    subprocess.run(["ip", "netns", "add", n.name], check=True)
    leaked = n.reservations()
    assert leaked == (held if data_on == "disk" else {})
    # libcni's result cache (under /var/lib/cni on a node) stays either way: the runtime's to clear.
    assert len(list(n.cache_dir.glob("results/*"))) == 3
    # GC with nothing valid (no pod survived the reboot) frees exactly what leaked.
    conf = dict(_ipam_conf(n, "1.1.0"), **{"cni.dev/valid-attachments": []})
    run_plugin(bin_dir / "host-local", "GC", conf, container_id=None, ifname=None, netns=None).check()
    assert n.reservations() == {}
    new = n.pod()
    n("add", new, bin_dir).check()
    n("del", new, bin_dir).check()
    assert n.reservations() == {} and n.host_links() == {} and n.firewall() == []


# ---- lo and eth0 at the same time ---------------------------------------------------------------
def test_lo_and_eth0_of_one_sandbox_at_once(node, bin_dir):
    """containerd attaches its loopback list and the pod's list concurrently, in one namespace."""
    n = node(plugins=[{"type": "bridge"}, {"type": "bandwidth", "capabilities": {"bandwidth": True}}])
    lo_net = n.name + "-lo"
    (n.netconf_dir / f"{lo_net}.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": lo_net, "plugins": [{"type": "loopback"}]}))
    pods = [n.pod() for _ in range(8)]
    caps = {"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 4294967295,
                          "egressRate": 2_000_000, "egressBurst": 4294967295}}

    def attach(pod: str, ifname: str, verb: str):
        cid = "sandbox-" + os.path.basename(pod)
        if ifname == "lo":
            return n.cnitool(verb, lo_net, pod, netconf_dir=n.netconf_dir, cni_path=bin_dir, ifname="lo",
                             container_id=cid, cache_dir=n.cache_dir)
        return n(verb, pod, bin_dir, container_id=cid, cap_args=caps)

    with ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(lambda a: attach(*a, "add"), [(p, i) for p in pods for i in ("lo", "eth0")]))
    for o in outs:
        o.check()
    addrs = [ip["address"] for o in outs[1::2] for ip in o.json["ips"]]   # eth0's (lo has 127.0.0.1)
    assert len(addrs) == len(set(addrs)) == len(pods)
    for p in pods:
        state = json.loads(in_ns(p, "ip", "-j", "addr", "show"))
        by_name = {link["ifname"]: link for link in state}
        assert "UP" in by_name["lo"]["flags"] and by_name["eth0"]["addr_info"], state
    with ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(lambda a: attach(*a, "del"), [(p, i) for p in pods for i in ("lo", "eth0")]))
    for o in outs:
        o.check()
    assert n.reservations() == {} and n.host_links() == {} and n.firewall() == []
