"""The spare children (cni/warm/spare.py, conf/prefault.h): the warm process forks the children of
the next calls ahead of them (SPARES of them) and each copies the pages it shares with the server
before its call comes; the oldest takes the next call; one spare serves one call; a spare that
died waiting, or a server that died, leaves the calls served and nothing behind.

Read from /proc: the server's children, their memory (smaps_rollup), their process groups.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import unique_name
from helpers.warm import WarmServer, process_state, stat_fields, wait_for

from cni.warm.server import SPARES

from .test_warm import call, conf, held

pytestmark = pytest.mark.root


@pytest.fixture
def server(bin_dir, tmp_path):
    s = WarmServer(bin_dir, tmp_path / unique_name("spare-", 6))
    try:
        yield s
    finally:
        s.stop()


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def started(pid: int) -> int:
    return int((stat_fields(pid) or ["0"] * 20)[19])


def living(pid: int) -> list[int]:
    return [p for p in children(pid) if process_state(p) not in (None, "Z")]


def the_spares(server: WarmServer) -> list[int]:
    """The children the server has while no call runs (a call's child gone), oldest first."""
    assert wait_for(lambda: len(living(server.pid)) == len(children(server.pid)) == SPARES), \
        children(server.pid)
    return sorted(children(server.pid), key=lambda pid: (started(pid), pid))


def rollup(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        out[key] = int(value.split()[0])
    return out


def test_the_call_goes_to_the_child_forked_before_it_and_a_new_spare_follows(bin_dir, server, tmp_path):
    oldest, second = the_spares(server)[:2]
    for spare in (oldest, second):
        assert wait_for(lambda p=spare: os.getpgid(p) == p), "a spare leads a process group of its own"
    out = call(bin_dir, server.socket, conf(tmp_path / "ipam"))
    assert out.returncode == 0, out
    assert server.children() == [oldest], server.log()
    assert wait_for(lambda: process_state(oldest) in (None, "Z")), "a spare serves one call and exits"
    after = the_spares(server)
    assert oldest not in after and second == after[0]
    out = call(bin_dir, server.socket, conf(tmp_path / "ipam"), cid="warm2")
    assert out.returncode == 0 and server.children() == [oldest, second], server.log()
    assert sorted(held(tmp_path / "ipam")) == ["10.241.7.2", "10.241.7.3"]


def test_the_spares_have_copied_the_pages_they_share_with_the_server(server):
    """Private_Dirty: what a spare holds as its own. Forked without a copy it would hold next to
    nothing of the server's anonymous memory; copied, it holds (about) all that the server had
    dirtied, and no page the server never touched (its resident memory stays the server's)."""
    mine = rollup(server.pid)
    for spare in the_spares(server):
        its: dict[str, int] = {}

        def copied(pid: int = spare, its: dict[str, int] = its) -> bool:
            its.update(rollup(pid))
            return its["Private_Dirty"] >= 0.9 * mine["Anonymous"]

        assert wait_for(copied, 10), (mine, its)
        assert its["Rss"] <= mine["Rss"] * 1.1, (mine, its)


def test_spares_that_died_waiting_are_replaced_and_the_call_runs_warm(bin_dir, server, tmp_path):
    spares = the_spares(server)
    for spare in spares:
        os.kill(spare, signal.SIGKILL)
    assert wait_for(lambda: all(process_state(p) is None for p in spares)), "the server reaps them"
    out = call(bin_dir, server.socket, conf(tmp_path / "ipam"))
    assert out.returncode == 0, out
    assert server.refused() == 0 and len(server.children()) == 1 and server.children()[0] not in spares
    assert list(held(tmp_path / "ipam")) == ["10.241.7.2"]


def test_a_spare_outlives_no_server(server):
    """Killed outright (no SIGTERM handler runs), the server's end of each control socket closes
    with it: the spares see that and leave."""
    spares = the_spares(server)
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    assert wait_for(lambda: all(process_state(p) in (None, "Z") for p in spares), 10), spares


def test_a_spare_holds_nothing_of_the_servers(server):
    """Until a call comes a spare holds no descriptor of the server's but its control socket and
    the standard three: not the listener, not another call's connection."""
    spare = the_spares(server)[-1]
    fds: dict[int, str] = {}

    def settled() -> bool:  # while it copies its pages it also reads /proc/self/maps
        fds.clear()
        fds.update({int(fd): os.readlink(f"/proc/{spare}/fd/{fd}") for fd in os.listdir(f"/proc/{spare}/fd")})
        return len(fds) == 4

    assert wait_for(settled, 10), fds
    assert next(t for fd, t in fds.items() if fd > 2).startswith("socket:"), fds
    listening = subprocess.run(["ss", "-xlp"], capture_output=True, text=True, check=True).stdout
    assert f"pid={server.pid}," in listening and f"pid={spare}," not in listening, listening


def nice_of(pid: int) -> int:
    fields = stat_fields(pid)
    assert fields, f"process {pid} is gone"
    return int(fields[16])


def test_the_accept_loop_runs_first_and_the_calls_at_the_priority_it_was_started_with(
        bin_dir, server, tmp_path):
    """Its serial work must not queue behind a burst of pods (the launcher would run the call
    cold); the plugin code runs at the priority the warm process was given, here 0."""
    assert nice_of(server.pid) == -20
    for spare in the_spares(server):
        assert wait_for(lambda p=spare: nice_of(p) == 0), nice_of(spare)


def test_a_spare_forked_while_the_cpus_are_busy_with_calls_copies_nothing(bin_dir, tmp_path):
    """At least as many calls in flight as CPUs (each runs `sleep 5` first): the spare forked after the
    last of them leaves its pages shared; the calls all complete, each once."""
    cpus = len(os.sched_getaffinity(0))
    cpus += cpus % 2  # spares are forked in pairs when a hand-over leaves none: the last pair sees them all
    server = WarmServer(bin_dir, tmp_path / unique_name("busy-", 6), fault="sleep:5")
    procs = []
    try:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": "ADD", "CNI_NETNS": "/var/run/netns/x",
               "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir), "PYCNI_WARM_SOCKET": server.socket}
        for i in range(cpus):
            procs.append(subprocess.Popen([str(bin_dir / "host-local")], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          env={**env, "CNI_CONTAINERID": f"busy{i}"}))
            procs[-1].stdin.write(conf(tmp_path / "ipam"))
            procs[-1].stdin.close()
            procs[-1].stdin = None
            assert wait_for(lambda n=i + 1: len(server.children()) == n), server.log()
        served = set(server.children())
        assert wait_for(lambda: len(set(children(server.pid)) - served) == SPARES)
        spare = max(set(children(server.pid)) - served, key=started)  # forked after the last hand-over
        anonymous = rollup(server.pid)["Anonymous"]
        time.sleep(1)  # a copying spare holds most of it within a fraction of that
        assert rollup(spare)["Private_Dirty"] < 0.5 * anonymous, (rollup(spare), anonymous)
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, (out, err)
        assert len(held(tmp_path / "ipam")) == cpus
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
