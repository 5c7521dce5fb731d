"""host-local as built executables: every verb, interoperation with the reference plugin on one data
directory, parallel calls, and ADDs killed at random moments.

The reference is v1.9.1 (what kind ships): answers, files, modes and errors are compared with it.
Interoperation on one directory is run with it and with Debian 12's 1.1.1 both, since a node is
switched to pycni (or back) from either with its reservations in place.

Every test has its own dataDir under the `state_dir` fixture; the host's /var/lib/cni is never used.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

REF_VERSION = "1.1.0"  # the newest version the reference plugin (v1.9.1) speaks
# The references a node may be switched from or to: (fixture, newest spec version, file mode).
REFERENCES = {"v1.9.1": ("ref_bin_dir", "1.1.0", 0o600), "1.1.1": ("debian_ref_bin_dir", "1.0.0", 0o644)}
OURS_MODE = 0o600
BOOKKEEPING = {"lock", "last_reserved_ip.0", "last_reserved_ip.1"}


def netconf(data: Path, version: str = "1.1.0", name: str = "hl", **ipam) -> dict:
    return {"cniVersion": version, "name": name, "type": "bridge",
            "ipam": {"type": "host-local", "dataDir": str(data), **ipam}}


def dual(data: Path, version: str = "1.1.0", v4: str = "10.1.2.0/24", v6: str = "2001:db8:1::/64") -> dict:
    return netconf(data, version, ranges=[[{"subnet": v4}], [{"subnet": v6}]])


def files(data: Path, name: str = "hl") -> dict[str, bytes]:
    d = data / name
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else {}


def modes(data: Path, name: str = "hl") -> dict[str, int]:
    d = data / name
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in sorted(d.iterdir())} if d.exists() else {}


def reservations(data: Path, name: str = "hl") -> dict[str, bytes]:
    return {n: b for n, b in files(data, name).items() if n not in BOOKKEEPING}


def addresses(outcome) -> list[str]:
    outcome.check()
    return [ip["address"] for ip in outcome.json["ips"]]


@pytest.fixture
def run_plugin(run_plugin):
    """run_plugin with a CNI_NETNS for ADD and CHECK: IPAM never enters it, but skel requires one."""

    def run(plugin, command, config, **kw):
        if command in ("ADD", "CHECK"):
            kw.setdefault("netns", "/var/run/netns/host-local-test")
        return run_plugin(plugin, command, config, **kw)

    return run


@pytest.fixture
def ours(bin_dir: Path) -> Path:
    return bin_dir / "host-local"


@pytest.fixture
def ref(ref_bin_dir: Path) -> Path:
    return ref_bin_dir / "host-local"


@pytest.fixture(params=sorted(REFERENCES))
def any_ref(request) -> tuple[Path, str, int]:
    """Each reference a node may run before or after pycni: (its host-local, spec version, file mode)."""
    fixture, version, mode = REFERENCES[request.param]
    return request.getfixturevalue(fixture) / "host-local", version, mode


@pytest.fixture
def data(state_dir: Path) -> Path:
    return state_dir / "ipam"


# ---- the verbs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("label", "ranges", "expect"), [
    ("v4", [[{"subnet": "10.1.2.0/24"}]], ["10.1.2.2/24"]),
    ("v6", [[{"subnet": "2001:db8:1::/64"}]], ["2001:db8:1::2/64"]),
    ("dual", [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]],
     ["10.1.2.2/24", "2001:db8:1::2/64"]),
])
def test_add_check_del(run_plugin, ours, data, label, ranges, expect):
    conf = netconf(data, ranges=ranges, routes=[{"dst": "0.0.0.0/0"}])
    out = run_plugin(ours, "ADD", conf, container_id="c1").check()
    assert out.json == {"cniVersion": "1.1.0",
                        "ips": [{"address": a, "gateway": a.split("/")[0][:-1] + "1"} for a in expect],
                        "routes": [{"dst": "0.0.0.0/0"}]}
    assert reservations(data) == {a.split("/")[0]: b"c1\r\neth0" for a in expect}
    assert run_plugin(ours, "CHECK", conf, container_id="c1").check().stdout == ""
    assert run_plugin(ours, "CHECK", conf, container_id="c2").expect_error(999).msg == (
        "host-local: Failed to find address added by container c2")
    for _ in range(2):
        assert run_plugin(ours, "DEL", conf, container_id="c1", netns="").check().stdout == ""
    assert set(files(data)) == {"lock"} | {f"last_reserved_ip.{i}" for i in range(len(ranges))}
    run_plugin(ours, "CHECK", conf, container_id="c1").expect_error(999)


def test_errors_exit_non_zero_with_json(run_plugin, ours, data):
    out = run_plugin(ours, "ADD", netconf(data, subnet="10.1.2.1/24")).expect_error(7)
    assert out.msg == ("invalid range set 0: Network has host bits set. For a subnet mask of length 24 "
                       "the network address is 10.1.2.0")
    out = run_plugin(ours, "ADD", netconf(data, subnet="10.1.2.0/24"), cni_args="IP=10.1.2.1")
    out.expect_error(999)
    assert out.msg == "failed to allocate for range 0: requested ip 10.1.2.1 is subnet's gateway"
    assert not data.joinpath("hl").exists() or reservations(data) == {}


def test_gc(run_plugin, ours, data):
    conf = dual(data)
    for cid in ("a", "b", "c"):
        run_plugin(ours, "ADD", conf, container_id=cid).check()
    run_plugin(ours, "ADD", conf, container_id="a", ifname="net1").check()
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"},
                                                      {"containerID": "c", "ifname": "eth0"}]})
    assert run_plugin(ours, "GC", gc, container_id=None, ifname=None, netns=None).check().stdout == ""
    assert reservations(data) == {"10.1.2.2": b"a\r\neth0", "2001:db8:1::2": b"a\r\neth0",
                                  "10.1.2.4": b"c\r\neth0", "2001:db8:1::4": b"c\r\neth0"}
    # As cnitool sends it: no list at all, so nothing is valid.
    run_plugin(ours, "GC", conf, container_id=None, ifname=None, netns=None).check()
    assert set(files(data)) == BOOKKEEPING


def test_status(run_plugin, ours, data, state_dir):
    conf = netconf(data, ranges=[[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/30"}]])
    env = {"container_id": None, "ifname": None, "netns": None}
    assert run_plugin(ours, "STATUS", conf, **env).check().stdout == ""
    run_plugin(ours, "ADD", conf, container_id="a").check()
    out = run_plugin(ours, "STATUS", conf, **env).expect_error(50)
    assert out.msg == "host-local: no free addresses left in range set 1 (10.1.3.1-10.1.3.2)"
    run_plugin(ours, "DEL", conf, container_id="a").check()
    run_plugin(ours, "STATUS", conf, **env).check()

    # The data directory on a read-only mount, in a private mount namespace.
    wrapper = state_dir / "ro-host-local"
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$1"'
    wrapper.write_text(f"#!/bin/sh\nexec unshare -m --propagation private sh -c '{script}' "
                       f"'{data}' '{ours}'\n")
    wrapper.chmod(0o755)
    out = run_plugin(wrapper, "STATUS", conf, cni_path=ours.parent, **env).expect_error(50)
    assert "cannot be written" in out.msg and "Read-only file system" in out.msg
    out = run_plugin(wrapper, "ADD", conf, cni_path=ours.parent, container_id="b").expect_error(5)
    assert "Read-only file system" in out.msg
    run_plugin(ours, "STATUS", conf, **env).check()


# ---- with the reference plugin on one directory (v1.9.1 and Debian's 1.1.1) ---------------------------
def test_alternating_with_the_reference(run_plugin, ours, any_ref, data):
    ref, version, ref_mode = any_ref
    conf = dual(data, version)
    assert addresses(run_plugin(ref, "ADD", conf, container_id="r1")) == ["10.1.2.2/24", "2001:db8:1::2/64"]
    assert addresses(run_plugin(ours, "ADD", conf, container_id="o1")) == ["10.1.2.3/24", "2001:db8:1::3/64"]
    assert addresses(run_plugin(ref, "ADD", conf, container_id="r2")) == ["10.1.2.4/24", "2001:db8:1::4/64"]
    assert files(data) == {
        "10.1.2.2": b"r1\r\neth0", "10.1.2.3": b"o1\r\neth0", "10.1.2.4": b"r2\r\neth0",
        "2001:db8:1::2": b"r1\r\neth0", "2001:db8:1::3": b"o1\r\neth0", "2001:db8:1::4": b"r2\r\neth0",
        "last_reserved_ip.0": b"10.1.2.4", "last_reserved_ip.1": b"2001:db8:1::4", "lock": b""}
    assert {n: m for n, m in modes(data).items() if n in reservations(data)} == {
        "10.1.2.2": ref_mode, "10.1.2.3": OURS_MODE, "10.1.2.4": ref_mode,
        "2001:db8:1::2": ref_mode, "2001:db8:1::3": OURS_MODE, "2001:db8:1::4": ref_mode}
    # Each checks and releases what the other reserved; round robin goes on across them.
    run_plugin(ours, "CHECK", conf, container_id="r1").check()
    run_plugin(ref, "CHECK", conf, container_id="o1").check()
    run_plugin(ours, "DEL", conf, container_id="r1").check()
    run_plugin(ref, "DEL", conf, container_id="o1").check()
    run_plugin(ours, "ADD", conf, container_id="r2").expect_error(999)        # duplicate, seen in Go's files
    assert addresses(run_plugin(ours, "ADD", conf, container_id="o2")) == ["10.1.2.5/24", "2001:db8:1::5/64"]
    assert addresses(run_plugin(ref, "ADD", conf, container_id="r3")) == ["10.1.2.6/24", "2001:db8:1::6/64"]
    assert reservations(data) == {
        "10.1.2.4": b"r2\r\neth0", "10.1.2.5": b"o2\r\neth0", "10.1.2.6": b"r3\r\neth0",
        "2001:db8:1::4": b"r2\r\neth0", "2001:db8:1::5": b"o2\r\neth0", "2001:db8:1::6": b"r3\r\neth0"}
    # An address the reference reserved is taken for us, and the other way round.
    run_plugin(ours, "ADD", conf, container_id="o3", cni_args="IP=10.1.2.6").expect_error(999)
    run_plugin(ref, "ADD", conf, container_id="r4", cni_args="IP=10.1.2.5").expect_error()
    for cid, plugin in (("r2", ours), ("o2", ref), ("r3", ours)):
        run_plugin(plugin, "DEL", conf, container_id=cid).check()
    assert set(files(data)) == BOOKKEEPING


@pytest.mark.parametrize("direction", ["to-pycni", "from-pycni"])
def test_a_node_switched_keeps_its_allocations(run_plugin, ours, any_ref, data, direction):
    """Pods ADDed by the plugin a node ran before keep their addresses after the switch: the new
    plugin hands out none of them, CHECKs them, and its DEL frees exactly them, which it then hands
    out again only after the rest of the range (round robin continues from the old cursor)."""
    ref, version, ref_mode = any_ref
    before, after = (ref, ours) if direction == "to-pycni" else (ours, ref)
    conf = netconf(data, version, subnet="10.1.2.0/28")    # .2 to .14: 13 addresses
    old = {f"old{i}": addresses(run_plugin(before, "ADD", conf, container_id=f"old{i}"))[0]
           for i in range(5)}
    assert sorted(old.values()) == [f"10.1.2.{i}/28" for i in range(2, 7)]
    old_files = reservations(data)
    new = {f"new{i}": addresses(run_plugin(after, "ADD", conf, container_id=f"new{i}"))[0]
           for i in range(8)}
    assert sorted(new.values(), key=lambda a: int(a.split(".")[3].split("/")[0])) == [
        f"10.1.2.{i}/28" for i in range(7, 15)]
    run_plugin(after, "ADD", conf, container_id="full").expect_error(999)   # no address twice
    assert {n: reservations(data)[n] for n in old_files} == old_files       # the old ones untouched
    for cid in old:
        run_plugin(after, "CHECK", conf, container_id=cid).check()
    for cid in ("old1", "old3"):
        run_plugin(after, "DEL", conf, container_id=cid).check()
    assert set(reservations(data)) == {a.split("/")[0] for a in new.values()} | {
        old[c].split("/")[0] for c in ("old0", "old2", "old4")}
    again = sorted(addresses(run_plugin(after, "ADD", conf, container_id=c))[0] for c in ("x", "y"))
    assert again == sorted([old["old1"], old["old3"]])
    owner_mode = {ref: ref_mode, ours: OURS_MODE}
    assert modes(data)[old["old0"].split("/")[0]] == owner_mode[before]
    assert modes(data)[again[0].split("/")[0]] == owner_mode[after]
    # Switched back: the first plugin frees what the second took, and the other way round.
    for cid in [*new, "x", "y"]:
        run_plugin(before, "DEL", conf, container_id=cid).check()
    for cid in ("old0", "old2", "old4"):
        run_plugin(after, "DEL", conf, container_id=cid).check()
    assert set(files(data)) == {"lock", "last_reserved_ip.0"}


def test_our_gc_releases_what_the_reference_reserved(run_plugin, ours, any_ref, data):
    """After a switch, GC frees the reservations the former plugin left for attachments the runtime
    no longer has (its DEL lost), and keeps the listed ones, which the former plugin still reads."""
    ref, version, _ = any_ref
    conf = dual(data, version)
    for cid in ("a", "b", "c"):
        run_plugin(ref, "ADD", conf, container_id=cid).check()
    run_plugin(ours, "ADD", conf, container_id="d").check()
    gc = dict(dual(data), **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"},
                                                            {"containerID": "d", "ifname": "eth0"}]})
    run_plugin(ours, "GC", gc, container_id=None, ifname=None, netns=None).check()
    assert reservations(data) == {"10.1.2.2": b"a\r\neth0", "2001:db8:1::2": b"a\r\neth0",
                                  "10.1.2.5": b"d\r\neth0", "2001:db8:1::5": b"d\r\neth0"}
    run_plugin(ref, "CHECK", conf, container_id="a").check()
    assert addresses(run_plugin(ref, "ADD", conf, container_id="e")) == ["10.1.2.6/24", "2001:db8:1::6/64"]
    for cid in ("a", "d", "e"):
        run_plugin(ref, "DEL", conf, container_id=cid).check()
    assert set(files(data)) == BOOKKEEPING


def test_reference_reads_our_older_format_release(run_plugin, ours, any_ref, data):
    """Files holding only the container ID (older plugins) are released by both."""
    ref, version, _ = any_ref
    conf = netconf(data, version, subnet="10.1.2.0/24")
    run_plugin(ours, "ADD", conf, container_id="x").check()
    (data / "hl" / "10.1.2.50").write_bytes(b"legacy-a")
    (data / "hl" / "10.1.2.51").write_bytes(b"legacy-b\n")
    run_plugin(ref, "DEL", conf, container_id="legacy-a").check()
    run_plugin(ours, "DEL", conf, container_id="legacy-b").check()
    assert reservations(data) == {"10.1.2.2": b"x\r\neth0"}


def parallel(jobs, workers: int = 32) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def test_concurrent_with_the_reference(run_plugin, ours, any_ref, data):
    ref, version, _ = any_ref
    conf = dual(data, version)
    plugins = [ours if i % 2 else ref for i in range(64)]
    outs = parallel([lambda i=i, p=p: run_plugin(p, "ADD", conf, container_id=f"c{i}")
                     for i, p in enumerate(plugins)])
    got = [addresses(o) for o in outs]
    v4 = [a[0] for a in got]
    v6 = [a[1] for a in got]
    assert len(set(v4)) == 64 and len(set(v6)) == 64
    assert reservations(data) == {
        **{a.split("/")[0]: f"c{i}\r\neth0".encode() for i, a in enumerate(v4)},
        **{a.split("/")[0]: f"c{i}\r\neth0".encode() for i, a in enumerate(v6)}}
    # Released crosswise, in parallel: ours DELs what the reference took and the other way round.
    parallel([lambda i=i, p=p: run_plugin(p, "DEL", conf, container_id=f"c{i}").check()
              for i, p in enumerate(reversed(plugins))])
    assert set(files(data)) == BOOKKEEPING


# ---- ours alone, in parallel, and killed -------------------------------------------------------------
def test_64_parallel_adds_and_dels(run_plugin, ours, data):
    conf = dual(data)
    outs = parallel([lambda i=i: run_plugin(ours, "ADD", conf, container_id=f"p{i}") for i in range(64)])
    got = [addresses(o) for o in outs]
    assert len({a[0] for a in got}) == 64 and len({a[1] for a in got}) == 64
    assert len(reservations(data)) == 128
    parallel([lambda i=i: run_plugin(ours, "DEL", conf, container_id=f"p{i}", netns="").check()
              for i in range(64)])
    assert set(files(data)) == BOOKKEEPING
    assert sorted(os.listdir(data / "hl")) == sorted(BOOKKEEPING)   # no temporary files either


def test_status_holds_on_a_healthy_store_while_adds_and_dels_run(run_plugin, ours, data):
    """STATUS writes its probe under the store's lock: an ADD or DEL beside it sweeps temporary
    files while it holds the lock, and once swept a probe's file away (STATUS answered 50 on a
    healthy store, and containerd 2.x reported the node NotReady)."""
    conf = dual(data)
    env = {"container_id": None, "ifname": None, "netns": None}
    run_plugin(ours, "ADD", conf, container_id="first").check()  # the store exists from here on
    jobs = []
    for i in range(48):
        jobs.append(lambda i=i: run_plugin(ours, "ADD", conf, container_id=f"s{i}"))
        jobs.append(lambda i=i: run_plugin(ours, "DEL", conf, container_id=f"s{i}", netns=""))
        jobs.append(lambda: run_plugin(ours, "STATUS", conf, **env))
    outs = parallel(jobs, workers=16)
    statuses = outs[2::3]
    assert [o.stdout for o in statuses if o.rc != 0] == []
    parallel([lambda i=i: run_plugin(ours, "DEL", conf, container_id=f"s{i}", netns="").check()
              for i in range(48)])
    assert set(reservations(data)) and all(v == b"first\r\neth0" for v in reservations(data).values())


def test_adds_killed_at_random_moments(run_plugin, ours, data):
    conf = dual(data, v4="10.1.0.0/16")
    stdin = json.dumps(conf).encode()
    start = time.perf_counter()
    run_plugin(ours, "ADD", conf, container_id="warm").check()
    one_call = time.perf_counter() - start
    run_plugin(ours, "DEL", conf, container_id="warm").check()

    env = {k: os.environ[k] for k in ("PATH",) if k in os.environ}

    def launch(cid: str) -> subprocess.Popen:
        cni = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": cid, "CNI_NETNS": "/x", "CNI_IFNAME": "eth0",
               "CNI_PATH": str(ours.parent), "CNI_ARGS": ""}
        p = subprocess.Popen([str(ours)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env={**env, **cni})
        p.stdin.write(stdin)
        p.stdin.close()
        return p

    # A new ADD every half call; two in three are killed somewhere between their start and well after
    # a lone call would have finished, so kills land at every stage; the others run to the end.
    rng = random.Random(1234)
    count = 96
    t0 = time.perf_counter() + 0.05
    events = []
    for i in range(count):
        start = t0 + i * one_call / 2
        events.append((start, 0, i))
        if rng.random() < 2 / 3:
            events.append((start + rng.uniform(0.0, 1.5) * one_call, 1, i))
    procs: dict[int, subprocess.Popen] = {}
    for when, kill, i in sorted(events):
        time.sleep(max(0.0, when - time.perf_counter()))
        if kill:
            procs[i].send_signal(signal.SIGKILL)
        else:
            procs[i] = launch(f"k{i}")
    results: dict[str, list[str]] = {}
    killed = 0
    for i, p in procs.items():
        out = p.stdout.read()
        p.stdout.close()
        if p.wait() == 0:
            results[f"k{i}"] = [ip["address"].split("/")[0] for ip in json.loads(out)["ips"]]
        else:
            killed += 1
    owners = {v.split(b"\r\n")[0].decode() for v in reservations(data).values()}
    orphans = len(owners - set(results))
    # The runtime keeps the attachments whose ADD succeeded; GC releases everything else.
    valid = [{"containerID": cid, "ifname": "eth0"} for cid in results]
    gc = dict(conf, **{"cni.dev/valid-attachments": valid})
    run_plugin(ours, "GC", gc, container_id=None, ifname=None, netns=None).check()

    left = reservations(data)
    expected = {ip: f"{cid}\r\neth0".encode() for cid, ips in results.items() for ip in ips}
    assert left == expected
    handed_out = [ip for ips in results.values() for ip in ips]
    assert len(handed_out) == len(set(handed_out)) == 2 * len(results)
    assert not [n for n in os.listdir(data / "hl") if n.startswith(".")]
    assert 0 < killed < count, f"{killed} of {count} ADDs killed: the kill timing did not make a mix"
    print(f"{killed} of {count} ADDs killed ({orphans} after reserving), {len(results)} completed")
    # The directory stays usable: a new ADD gets addresses nobody holds.
    fresh = addresses(run_plugin(ours, "ADD", conf, container_id="after"))
    assert not {a.split("/")[0] for a in fresh} & set(handed_out)


# ---- the same calls to both implementations give the same answers and the same files ----------------
def _normal(outcome) -> tuple:
    """What must match: success and result, or the error message (codes differ: the reference says 999)."""
    if outcome.rc == 0:
        result = dict(outcome.json or {})
        if result.get("dns") == {}:
            del result["dns"]   # the reference prints an empty dns in 1.0.0 results
        return ("ok", result)
    return ("error", outcome.msg)


R = [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]]
IP_RANGES = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.7.0.0/24"}]]}}
TWO_RANGES = [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.2", "rangeEnd": "10.1.2.3"},
               {"subnet": "10.1.9.0/24", "rangeStart": "10.1.9.8", "rangeEnd": "10.1.9.9"}]]
# name: (ipam keys, steps); a step is (command, container ID[, ifname[, CNI_ARGS[, more config]]]).
SCENARIOS = {
    "exhaust-release-wrap": (
        {"subnet": "10.1.2.0/29"},
        [("ADD", c) for c in "abcdef"]
        + [("DEL", "b"), ("ADD", "g"), ("ADD", "h"), ("DEL", "zz"), ("DEL", "a"), ("ADD", "i")]),
    "dual-duplicate-second-if": (
        {"ranges": R},
        [("ADD", "a"), ("ADD", "a"), ("ADD", "a", "net1"), ("CHECK", "a", "net1"), ("DEL", "a"),
         ("CHECK", "a"), ("CHECK", "a", "net1"), ("DEL", "a", "net1")]),
    "multi-range-set": (
        {"ranges": TWO_RANGES},
        [("ADD", c) for c in "abcde"] + [("DEL", "b"), ("DEL", "c"), ("ADD", "f"), ("ADD", "g")]),
    "requested": (
        {"ranges": R},
        [("ADD", "a", "eth0", "IP=10.1.2.40"), ("ADD", "b", "eth0", "IP=10.1.2.40"),
         ("ADD", "c", "eth0", "IP=10.1.2.1"), ("ADD", "d", "eth0", "IP=10.1.9.9"),
         ("ADD", "e", "eth0", "IP=2001:db8:1::77/64"), ("ADD", "f"),
         ("ADD", "g", "eth0", "", {"args": {"cni": {"ips": ["10.1.2.90", "2001:db8:1::90"]}}}),
         ("ADD", "h", "eth0", "", {"runtimeConfig": {"ips": ["10.1.2.91"]}}),
         ("ADD", "j", "eth0", "", {"runtimeConfig": {"ips": ["10.1.9.1"]}}),
         ("ADD", "i", "eth0", "IP=10.1.2.7,10.1.2.8")]),
    "runtime-ip-ranges": (
        {"subnet": "10.1.2.0/24"},
        [("ADD", "a", "eth0", "", IP_RANGES), ("ADD", "b"), ("ADD", "c", "eth0", "", IP_RANGES)]),
    "gateways": (
        {"ranges": [[{"subnet": "10.1.2.0/29", "gateway": "10.1.2.3"}],
                    [{"subnet": "2001:db8:1::/126", "gateway": "2001:db8:1::3"}]]},
        [("ADD", c) for c in "abcd"]),
    "v6-end": (
        {"ranges": [[{"subnet": "2001:db8:1::/120", "rangeStart": "2001:db8:1::fe"}]]},
        [("ADD", c) for c in "abc"]),
    # v1.9.1's NextIP counts addresses whose first byte is 0 right (1.1.1 did not)
    "first-byte-zero": (
        {"ranges": [[{"subnet": "a:db8::/120", "rangeStart": "a:db8::fd"}],
                    [{"subnet": "0.1.2.0/29", "rangeStart": "0.1.2.5"}]]},
        [("ADD", c) for c in "abcd"] + [("DEL", "b"), ("ADD", "e")]),
    "routes-of-spec-1.1": (
        {"subnet": "10.1.2.0/24",
         "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1", "mtu": 1400, "advmss": 1360, "priority": 5,
                     "table": 100, "scope": 0}, {"dst": "10.99.0.0/16", "scope": 253}]},
        [("ADD", "a")]),
    "routes-and-dns": (
        {"subnet": "10.1.2.0/24", "resolvConf": "/etc/resolv.conf",
         "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.254"}]},
        [("ADD", "a")]),
}
INVALID = [
    {"subnet": "10.1.2.1/24"}, {"subnet": "10.1.2.0/31"}, {"subnet": "2001:db8::/127"}, {"subnet": "bad"},
    {"subnet": "10.1.2.0/24", "rangeStart": "10.1.3.1"}, {"subnet": "10.1.2.0/24", "rangeEnd": "10.1.3.1"},
    {"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.8"},
    {"subnet": "10.1.2.0/24", "gateway": "nope"}, {"ranges": [[]]}, {"ranges": []}, {},
    {"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "2001:db8::/64"}]]},
    {"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.1.2.128/25"}]]},
    {"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.0.0/16"}]]},
    {"ranges": [[{"subnet": "::ffff:10.1.2.0/120"}]]},
]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_answers_and_files_as_the_reference(run_plugin, ours, ref, state_dir, scenario):
    ipam, steps = SCENARIOS[scenario]
    seen = {}
    for label, plugin in (("ours", ours), ("ref", ref)):
        data = state_dir / label
        base = netconf(data, REF_VERSION, **ipam)
        answers = []
        for step in steps:
            command, cid, ifname, cni_args, extra = (*step, *("eth0", "", {})[len(step) - 2:])
            out = run_plugin(plugin, command, {**base, **extra}, container_id=cid, ifname=ifname,
                             cni_args=cni_args)
            answers.append((command, cid, _normal(out)))
        seen[label] = (answers, files(data), modes(data))
    assert seen["ours"][0] == seen["ref"][0]
    assert seen["ours"][1] == seen["ref"][1]
    assert seen["ours"][2] == seen["ref"][2]


def test_same_config_errors_as_the_reference(run_plugin, ours, ref, state_dir):
    for ipam in INVALID:
        for version in (REF_VERSION, "0.2.0"):
            conf = netconf(state_dir / "d", version, **ipam)
            theirs = run_plugin(ref, "ADD", conf).expect_error()
            mine = run_plugin(ours, "ADD", conf).expect_error(7)
            assert (ipam, mine.msg) == (ipam, theirs.msg)
    two_v4 = [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]
    conf = netconf(state_dir / "d", "0.2.0", ranges=two_v4)
    mine, theirs = run_plugin(ours, "ADD", conf).expect_error(7), run_plugin(ref, "ADD", conf).expect_error()
    assert mine.msg == theirs.msg
    assert not (state_dir / "d").exists()


def last_object(text: str) -> dict:
    """The last of the JSON objects on stdout (the reference prints its result, then the error)."""
    decoder, at, value = json.JSONDecoder(), 0, {}
    text = text.strip()
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
    return value


def test_own_namespace_is_code_8_like_the_reference(run_plugin, ours, ref, state_dir):
    """skel refuses a CNI_NETNS that is the plugin's own namespace with code 8. The reference's ADD
    reserves first and then fails, so its address stays held; ours refuses before reserving. DEL
    releases in both and then reports the 8."""
    own = "/proc/self/ns/net"
    held = {}
    for label, plugin in (("ours", ours), ("ref", ref)):
        data = state_dir / label
        conf = netconf(data, REF_VERSION, subnet="10.1.2.0/24")
        out = run_plugin(plugin, "ADD", conf, container_id="a", netns=own)
        assert (out.rc, last_object(out.stdout).get("code")) == (1, 8), out.describe()
        held[label] = reservations(data)
        run_plugin(plugin, "ADD", conf, container_id="b").check()
        out = run_plugin(plugin, "DEL", conf, container_id="b", netns=own).expect_error(8)
        assert b"b\r\neth0" not in reservations(data).values()
        # A path that is no namespace, or gone, is not refused (IPAM never enters it).
        run_plugin(plugin, "ADD", conf, container_id="c", netns="/var/run/netns/pycni-gone").check()
        run_plugin(plugin, "ADD", conf, container_id="d", netns="/etc/hostname").check()
    assert held == {"ours": {}, "ref": {"10.1.2.2": b"a\r\neth0"}}


@pytest.mark.parametrize("cursor", [b"junk", b"", b"10.1.2.200", b"10.1.2.200\n", b"10.9.9.9", b"2001:db8::1",
                                    b"10.1.2.254", b"::ffff:10.1.2.100"])
def test_a_cursor_file_of_any_content_is_read_as_the_reference_reads_it(run_plugin, ours, ref, state_dir,
                                                                        cursor):
    """last_reserved_ip.0 as another writer, a crash or a hand left it (0644, as before v1.4.0):
    where round robin resumes. docs/plugins/host-local.md lists the one difference: ours replaces
    the file, so it is 0600 afterwards; v1.9.1 rewrites it in place and keeps the mode it found."""
    seen = {}
    for label, plugin in (("ours", ours), ("ref", ref)):
        data = state_dir / label
        (data / "hl").mkdir(parents=True)
        (data / "hl" / "last_reserved_ip.0").write_bytes(cursor)
        (data / "hl" / "last_reserved_ip.0").chmod(0o644)
        conf = netconf(data, REF_VERSION, subnet="10.1.2.0/24")
        seen[label] = ([_normal(run_plugin(plugin, "ADD", conf, container_id=c)) for c in "ab"],
                       files(data), modes(data))
    assert seen["ours"][:2] == seen["ref"][:2]
    assert seen["ours"][2].pop("last_reserved_ip.0") == 0o600
    assert seen["ref"][2].pop("last_reserved_ip.0") == 0o644
    assert seen["ours"][2] == seen["ref"][2]


def test_only_files_named_by_an_address_are_reservations(run_plugin, ours, ref, state_dir):
    """docs/plugins/host-local.md lists it: v1.9.1 matches the content of every file of the
    directory, so its CHECK finds a stray file and its DEL removes it, the cursor too when a
    container's ID is its address text (older container-ID-only format). Ours reads only the
    files named by an address."""
    seen = {}
    for label, plugin in (("ours", ours), ("ref", ref)):
        data = state_dir / label
        conf = netconf(data, REF_VERSION, subnet="10.1.2.0/24")
        run_plugin(plugin, "ADD", conf, container_id="x").check()          # cursor: 10.1.2.2
        (data / "hl" / "notes").write_bytes(b"c1\r\neth0")
        check = run_plugin(plugin, "CHECK", conf, container_id="c1").rc
        run_plugin(plugin, "DEL", conf, container_id="c1").check()
        run_plugin(plugin, "DEL", conf, container_id="10.1.2.2").check()
        seen[label] = (check, sorted(files(data)))
    assert seen["ours"] == (1, ["10.1.2.2", "last_reserved_ip.0", "lock", "notes"])
    assert seen["ref"] == (0, ["10.1.2.2", "lock"])


# ---- a directory that is not ours, a lock another process holds -----------------------------------------
def _every_verb(run_plugin, ours, conf) -> dict[str, object]:
    none = {"container_id": None, "ifname": None, "netns": None}
    return {"ADD": run_plugin(ours, "ADD", conf, container_id="c1"),
            "DEL": run_plugin(ours, "DEL", conf, container_id="c1", netns=""),
            "GC": run_plugin(ours, "GC", conf, **none),
            "STATUS": run_plugin(ours, "STATUS", conf, **none)}


@pytest.mark.parametrize("kind", ["symlink", "foreign owner"])
def test_a_network_directory_that_is_not_ours_is_refused(run_plugin, ours, data, state_dir, kind):
    """A symlink under dataDir would lead every write elsewhere; a directory another user owns could
    hold their symlinks and files: both are refused (5, permanent) and nothing is written."""
    conf = netconf(data, subnet="10.1.2.0/24")
    elsewhere = state_dir / "elsewhere"
    elsewhere.mkdir()
    data.mkdir()
    if kind == "symlink":
        (data / "hl").symlink_to(elsewhere)
        why = "a symbolic link"
    else:
        (data / "hl").mkdir()
        os.chown(data / "hl", 65534, 65534)
        why = "owned by uid 65534"
    outcomes = _every_verb(run_plugin, ours, conf)
    for verb in ("ADD", "DEL", "GC"):
        out = outcomes[verb].expect_error(5)
        assert why in out.msg and str(data / "hl") in out.msg, (verb, out.msg)
    assert why in outcomes["STATUS"].expect_error(50).msg
    assert sorted(os.listdir(elsewhere)) == [] and sorted(os.listdir(data / "hl")) == []


@pytest.fixture
def holder(data: Path):
    """Start a process that holds the store's flock until the test ends (a wedged reference call,
    a stopped debugger): yields its lock path."""
    procs = []

    def hold(path: Path) -> None:
        code = ("import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\n"
                "print('held', flush=True)\ntime.sleep(300)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_held_lock_bounds_the_wait(run_plugin, ours, data, holder):
    """Every verb that takes the store's lock gives up after the bound with 11 naming the lock (the
    reference waits for ever); once the holder is gone the store works again."""
    conf = netconf(data, subnet="10.1.2.0/24")
    run_plugin(ours, "ADD", conf, container_id="c0").check()
    before = files(data)
    lock = data / "hl" / "lock"
    holder(lock)

    def timed(*args, **kw):
        start = time.monotonic()
        out = run_plugin(*args, extra_env={"PYCNI_LOCK_TIMEOUT": "1"}, **kw)
        return out, time.monotonic() - start

    none = {"container_id": None, "ifname": None, "netns": None}
    for verb, kw in (("ADD", {"container_id": "c1"}), ("DEL", {"container_id": "c0", "netns": ""}),
                     ("GC", none), ("STATUS", none)):
        out, seconds = timed(ours, verb, conf, **kw)
        out.expect_error(50 if verb == "STATUS" else 11)
        assert str(lock) in out.msg + (out.json.get("details") or ""), (verb, out.json)
        assert "held by another process" in out.msg, (verb, out.msg)
        assert seconds < 20, f"{verb} took {seconds:.1f} s with a 1 s bound"
    assert files(data) == before, "nothing changed while the lock was held"
