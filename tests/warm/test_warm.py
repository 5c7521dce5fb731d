"""The warm path (`pycni serve`, cni/warm, conf/warm.h): a call handed to a warm process answers as
a cold one; killed at any step it still runs exactly once or fails as a killed call does, never
twice and never hangs; only a root server of the same build in the caller's namespaces is used;
the call dies with its launcher.

Calls are host-local's (a private dataDir): a run leaves a reservation file, so a call run twice,
or not at all, shows on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import unique_name
from helpers.warm import WarmServer, process_state, wait_for

from cni.warm import protocol

pytestmark = pytest.mark.root
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
HANDOVER_BOUND = 0.5  # conf/warm.h WARM_HANDOVER_MS


@pytest.fixture
def warm(bin_dir, tmp_path):
    """Factory: ``warm(**kw) -> WarmServer`` in a private directory; every one stopped afterwards."""
    servers: list[WarmServer] = []

    def start(**kw) -> WarmServer:
        server = WarmServer(bin_dir, tmp_path / unique_name("warm-", 6), **kw)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def conf(data_dir: Path, subnet: str = "10.241.7.0/24") -> bytes:
    return json.dumps({"cniVersion": "1.1.0", "name": "warmnet", "type": "host-local",
                       "ipam": {"type": "host-local", "dataDir": str(data_dir),
                                "ranges": [[{"subnet": subnet}]]}}).encode()


def env_for(bin_dir: Path, socket_path: str, command: str | None = "ADD",
            cid: str = "warm1") -> dict[str, str]:
    env = {"PATH": PATH, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/unused", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(bin_dir), "PYCNI_WARM_SOCKET": socket_path}
    if command:
        env["CNI_COMMAND"] = command
    return env


def call(bin_dir: Path, socket_path: str, stdin: bytes, command: str | None = "ADD", cid: str = "warm1",
         plugin: str = "host-local", cwd: Path | None = None, timeout: float = 60
         ) -> subprocess.CompletedProcess:
    env = env_for(bin_dir, socket_path, command, cid)
    return subprocess.run([str(bin_dir / plugin)], input=stdin, env=env,
                          capture_output=True, timeout=timeout, cwd=cwd)


def held(data_dir: Path) -> dict[str, str]:
    """Reserved address -> owner line, of the network `warmnet`."""
    d = data_dir / "warmnet"
    if not d.is_dir():
        return {}
    return {p.name: p.read_bytes().decode() for p in d.iterdir() if p.name[0].isdigit()}


def test_a_warm_call_answers_as_a_cold_one(bin_dir, warm, tmp_path):
    server = warm()
    data = tmp_path / "ipam"
    cold = call(bin_dir, "off", conf(data), cid="cold1")
    assert server.served() == 0, "PYCNI_WARM_SOCKET=off never goes warm"
    hot = call(bin_dir, server.socket, conf(data), cid="warm1")
    assert server.served() == 1, server.log()
    assert cold.returncode == hot.returncode == 0, (cold, hot)
    a, b = json.loads(cold.stdout), json.loads(hot.stdout)
    assert [ip["address"] for ip in a["ips"]] == ["10.241.7.2/24"]
    assert [ip["address"] for ip in b["ips"]] == ["10.241.7.3/24"]
    assert {**a, "ips": None} == {**b, "ips": None}
    assert held(data) == {"10.241.7.2": "cold1\r\neth0", "10.241.7.3": "warm1\r\neth0"}
    # an error: same JSON, same exit status, on both paths
    bad = b'{"cniVersion": "1.1.0", "name": "warmnet", "type": "host-local", "ipam": {"type": "host-local"}}'
    cold_bad, hot_bad = call(bin_dir, "off", bad), call(bin_dir, server.socket, bad)
    assert hot_bad.returncode == cold_bad.returncode != 0
    assert hot_bad.stdout == cold_bad.stdout and json.loads(hot_bad.stdout)["code"]
    for cid in ("cold1", "warm1"):
        assert call(bin_dir, server.socket, conf(data), command="DEL", cid=cid).returncode == 0
    assert held(data) == {} and server.served() == 4


def test_the_child_has_the_callers_environment_cwd_and_argv_and_nothing_of_the_servers(
        bin_dir, warm, tmp_path):
    """The server's own environment holds CNI_COMMAND=VERSION: a caller without CNI_COMMAND gets
    the answer of a plugin run without it (the about line), as cold; a relative dataDir is read
    against the caller's working directory; argv[0]'s name picks the plugin."""
    server = warm(extra_env={"CNI_COMMAND": "VERSION", "CNI_ARGS": "IgnoreUnknown=1;bad"})
    for path in ("off", server.socket):
        out = call(bin_dir, path, b"", command=None, plugin="bridge")
        assert out.returncode == 0 and out.stdout == b"", out
        assert out.stderr.decode().startswith("CNI bridge plugin (pycni"), out
    assert server.served() == 1
    here = tmp_path / "caller-cwd"
    here.mkdir()
    out = call(bin_dir, server.socket, conf(Path("relative-ipam")), cid="cwd1", cwd=here)
    assert out.returncode == 0, out
    assert (here / "relative-ipam" / "warmnet" / "10.241.7.2").read_bytes().decode() == "cwd1\r\neth0"
    version = call(bin_dir, server.socket, b'{"cniVersion": "1.1.0"}', command="VERSION", plugin="loopback")
    assert json.loads(version.stdout)["cniVersion"] == "1.1.0" and server.served() == 3


@pytest.mark.parametrize("step", ["accepted", "read", "handed", "child-ready", "child-go"])
def test_the_warm_process_killed_at_every_step(bin_dir, warm, tmp_path, step):
    """The server (or the call's child) stops itself at `step`, the test SIGKILLs it there. Before
    the commit the call runs cold, once; after it (child-go) the call dies as a killed call does
    (the launcher takes the child's signal), without running; after the fork the server's death
    does not matter. Never a hang, never two reservations."""
    server = warm(fault=f"stop:{step}")
    data = tmp_path / "ipam"
    started = time.monotonic()
    proc = subprocess.Popen([str(bin_dir / "host-local")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(bin_dir, server.socket))
    proc.stdin.write(conf(data))
    proc.stdin.close()
    proc.stdin = None
    if step.startswith("child"):
        stopped = wait_for(lambda: server.children() and process_state(server.children()[0]) == "T")
        assert stopped, server.log()
        victim = server.children()[0]
    else:
        assert wait_for(lambda: process_state(server.pid) == "T"), server.log()
        victim = server.pid
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    if step == "child-go":  # committed: the child owned the call and was killed before running it
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, out, err)
        assert held(data) == {}
    else:
        assert proc.returncode == 0, (out, err)
        assert [ip["address"] for ip in json.loads(out)["ips"]] == ["10.241.7.2/24"]
        assert list(held(data)) == ["10.241.7.2"]
    assert elapsed < 30, elapsed
    if step == "handed":
        assert server.served() == 1


def test_a_child_continued_after_its_launcher_went_cold_runs_nothing(bin_dir, warm, tmp_path):
    """The child stops before READY; the launcher's bound expires and it runs cold. Continued then,
    the child finds no commit and leaves: one reservation, not two."""
    server = warm(fault="stop:child-ready")
    data = tmp_path / "ipam"
    out = call(bin_dir, server.socket, conf(data))
    assert out.returncode == 0, out
    child = server.children()[0]
    assert process_state(child) == "T"
    os.kill(child, signal.SIGCONT)
    assert wait_for(lambda: process_state(child) in (None, "Z"), 10)
    time.sleep(0.2)
    assert list(held(data)) == ["10.241.7.2"]


def test_a_server_that_accepts_and_never_answers_costs_the_bound_then_runs_cold(bin_dir, tmp_path):
    directory = tmp_path / "mute"
    directory.mkdir(mode=0o700)
    path = str(directory / "s")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    got: list[bytes] = []
    held_conns: list[socket.socket] = []

    def accept() -> None:
        conn, _ = listener.accept()
        held_conns.append(conn)  # accepted, read, never answered, never closed
        got.append(conn.recv(65536))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        out = call(bin_dir, path, conf(tmp_path / "ipam"))
        elapsed = time.monotonic() - started
        assert out.returncode == 0, out
        assert HANDOVER_BOUND * 0.9 <= elapsed < 10, elapsed
        thread.join(5)
        assert got and got[0].startswith(protocol.MAGIC + protocol.CALL), got
        assert list(held(tmp_path / "ipam")) == ["10.241.7.2"]
    finally:
        for conn in held_conns:
            conn.close()
        listener.close()


def test_a_server_that_is_not_root_is_never_sent_a_call(bin_dir, tmp_path):
    """The launcher reads the listener's credentials (SO_PEERCRED) before sending anything."""
    directory = Path(tempfile.mkdtemp(prefix="pycni-nobody-"))
    directory.chmod(0o777)
    path = directory / "s"
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4); print('up', flush=True)\n"
            "c, _ = s.accept(); c.settimeout(3)\n"
            "try:\n    print(len(c.recv(65536)), flush=True)\n"
            "except OSError as e:\n    print('none', flush=True)\n")
    fake = subprocess.Popen(["/usr/bin/python3", "-I", "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True, user=65534, group=65534)
    try:
        assert fake.stdout.readline().strip() == "up"
        out = call(bin_dir, str(path), conf(tmp_path / "ipam"))
        assert out.returncode == 0, out
        assert fake.stdout.readline().strip() in ("0", "none")
    finally:
        fake.kill()
        fake.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_caller_in_another_network_namespace_runs_cold(bin_dir, warm, tmp_path, netns):
    server = warm()
    ns = netns()
    argv = ["nsenter", f"--net={ns.path}", "--", str(bin_dir / "host-local")]
    out = subprocess.run(argv, input=conf(tmp_path / "ipam"), env=env_for(bin_dir, server.socket),
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out
    assert server.served() == 0 and server.refused() == 1
    assert "other mount or network namespaces" in server.log()


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def test_another_build_or_a_malformed_request_is_refused(bin_dir, warm, tmp_path):
    """A request of another build, or not the launcher's, is refused (REFUSED: the caller runs
    cold); a commit without the four descriptors runs nothing and ends with status 1."""
    server = warm()
    with _connect(server.socket) as s:
        s.sendall(protocol.ping())
        ping = s.recv(64)
    assert ping.startswith(protocol.PING) and len(ping.strip()) == 17, ping
    other = protocol.Call(b"0" * 16, 0o22, [str(bin_dir / "host-local").encode()], [b"CNI_COMMAND=VERSION"])
    mine = protocol.Call(ping[1:].strip(), 0o22, other.argv, other.env)
    for request in (protocol.encode_call(other), b"PYCNIW9" + protocol.encode_call(mine)[7:]):
        with _connect(server.socket) as s:
            s.sendall(request)
            assert s.recv(64) == protocol.REFUSED
    with _connect(server.socket) as s:
        s.sendall(protocol.encode_call(mine))
        assert s.recv(1) == protocol.READY
        socket.send_fds(s, [protocol.GO], [0, 1, 2])
        assert protocol.parse_status(s.recv(5)) == (protocol.EXITED, 1)
    assert server.refused() == 2 and server.served() == 1
    assert "runs another build" in server.log()


def test_the_call_and_the_tools_it_runs_die_with_the_launcher(bin_dir, warm, tmp_path):
    """A runtime's timeout SIGKILLs the executable it ran: the warm child (and a tool it runs, here
    `sleep`, in its process group) is killed too, as the cold call would be."""
    server = warm(fault="sleep:120")
    proc = subprocess.Popen([str(bin_dir / "host-local")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(bin_dir, server.socket))
    proc.stdin.write(conf(tmp_path / "ipam"))
    proc.stdin.close()
    proc.stdin = None
    assert wait_for(lambda: server.children()), server.log()
    child = server.children()[0]

    def tool() -> int | None:
        for task in Path(f"/proc/{child}/task").glob("*/children"):
            for pid in task.read_text().split():
                return int(pid)
        return None

    assert wait_for(lambda: tool() is not None)
    sleeper = tool()
    assert Path(f"/proc/{child}/comm").read_text() == "host-local\n", "named as a cold call is"
    assert os.getpgid(sleeper) == os.getpgid(child) == child
    proc.kill()
    proc.wait(timeout=10)
    assert wait_for(lambda: process_state(child) in (None, "Z") and process_state(sleeper) in (None, "Z"), 10)
    assert held(tmp_path / "ipam") == {}


def test_the_socket_is_roots_alone(bin_dir, warm, tmp_path):
    server = warm()  # in a directory the harness made 0700: the socket's own mode is the server's
    st = os.stat(server.socket)
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
    fresh = tmp_path / "absent" / "s"  # a directory the server makes itself: root's alone
    proc = subprocess.Popen([str(bin_dir / "pycni"), "serve", "--socket", str(fresh)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: fresh.exists() or proc.poll() is not None, 30), "no socket"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        made = os.stat(fresh.parent)
        assert (made.st_mode & 0o777, made.st_uid, os.stat(fresh).st_mode & 0o777) == (0o700, 0, 0o600)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for mode in (0o775, 0o757):  # others may replace the socket there
        loose = tmp_path / f"loose{mode:o}"
        loose.mkdir()
        loose.chmod(mode)
        proc = subprocess.run([str(bin_dir / "pycni"), "serve", "--socket", str(loose / "s")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "writable by root alone" in proc.stderr, proc
        assert not (loose / "s").exists()


def test_serves_in_a_directory_others_may_enter_but_not_write(bin_dir, tmp_path):
    """/run/pycni is 0755 once a plugin's node lock made it: the socket's own 0600 keeps others out."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    proc = subprocess.Popen([str(bin_dir / "pycni"), "serve", "--socket", str(shared / "s")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (shared / "s").exists() or proc.poll() is not None, 30)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert os.stat(shared / "s").st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bridge_and_ptp_verbs_run_warm_as_cold(bin_dir, warm, tmp_path, netns, bridge_name):
    """The preloaded packages are the ones a cold call finds: bridge's and ptp's verb functions are
    named like the modules they import when they run (`add`, `delete`, `check`), and stay the
    functions. ADD, CHECK and DEL of each, warm, with the addresses read back from the kernel."""
    server = warm()
    ipam = {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
            "ranges": [[{"subnet": "10.242.9.0/24"}]]}
    configs = {"bridge": {"bridge": bridge_name, "isGateway": True}, "ptp": {}}
    for plugin, extra in configs.items():
        ns = netns()
        config = json.dumps({"cniVersion": "1.1.0", "name": f"warm-{plugin}", "type": plugin,
                             "ipam": ipam, **extra}).encode()
        env = {**env_for(bin_dir, server.socket, cid=f"w{plugin}"), "CNI_NETNS": ns.path}
        add = subprocess.run([str(bin_dir / plugin)], input=config, env=env, capture_output=True, timeout=60)
        assert add.returncode == 0, add
        shown = ns.exec("ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
        assert "10.242.9." in shown, shown
        prev = json.loads(add.stdout)
        checked = json.dumps({**json.loads(config), "prevResult": prev}).encode()
        for command, stdin in (("CHECK", checked), ("DEL", config)):
            out = subprocess.run([str(bin_dir / plugin)], input=stdin, env={**env, "CNI_COMMAND": command},
                                 capture_output=True, timeout=60)
            assert out.returncode == 0, (command, out)
        assert "eth0" not in ns.exec("ip", "-o", "link", "show").stdout
    assert server.served() == 6 and server.refused() == 0, server.log()


def test_pycni_status_shows_the_warm_process(bin_dir, warm, tmp_path):
    """Running: its pid, this bundle's build, its memory; not running: said so, calls run cold."""
    server = warm()
    argv = [str(bin_dir / "pycni"), "status", "--json", "--conf-dir", str(tmp_path),
            "--cri-endpoint", f"unix://{tmp_path}/none.sock", "--timeout", "1"]
    for path, running in ((server.socket, True), (str(tmp_path / "absent.sock"), False)):
        out = subprocess.run(argv, env={"PATH": PATH, "PYCNI_WARM_SOCKET": path}, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out
        report = json.loads(out.stdout)["warm"]
        assert report["socket"] == path and report["running"] is running, report
        if running:
            assert report["pid"] == server.pid and report["bundleMatches"] is True
            assert report["rssKiB"] > 1024 and 0 < report["pssKiB"] <= report["rssKiB"], report
        else:
            assert report["pid"] is None and "not running" in report["error"]
    text = subprocess.run(argv[:2] + argv[3:], env={"PATH": PATH, "PYCNI_WARM_SOCKET": server.socket},
                          capture_output=True, text=True, timeout=60).stdout
    assert f"warm process: running, pid {server.pid}, serves this bundle" in text, text


def test_the_child_has_the_callers_umask(bin_dir, warm, tmp_path):
    """host-local creates its lock 0750 less the umask: under the caller's 077 it is 0700 warm as
    cold, although the warm process itself runs under 022."""
    server = warm()

    def lock_mode(path: str, umask: int, name: str) -> int:
        data = tmp_path / name
        out = subprocess.run([str(bin_dir / "host-local")], input=conf(data), umask=umask,
                             capture_output=True, env=env_for(bin_dir, path), timeout=60)
        assert out.returncode == 0, out
        return os.stat(data / "warmnet" / "lock").st_mode & 0o777

    assert lock_mode("off", 0o077, "cold") == lock_mode(server.socket, 0o077, "warm") == 0o700
    assert lock_mode(server.socket, 0o022, "warm022") == 0o750
    assert server.served() == 2


def test_a_launcher_killed_between_its_commit_and_the_childs_watch_runs_nothing(bin_dir, warm, tmp_path):
    """The child stops right after the commit (before it asks the kernel to signal the launcher's
    hang-up); the runtime kills the launcher then. Continued, the child finds the hang-up that
    already happened and dies with its group: the call never runs, nothing is reserved."""
    server = warm(fault="stop:child-go")
    data = tmp_path / "ipam"
    proc = subprocess.Popen([str(bin_dir / "host-local")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(bin_dir, server.socket))
    proc.stdin.write(conf(data))
    proc.stdin.close()
    proc.stdin = None
    assert wait_for(lambda: server.children() and process_state(server.children()[0]) == "T"), server.log()
    child = server.children()[0]
    proc.kill()
    proc.wait(timeout=10)
    os.kill(child, signal.SIGCONT)
    assert wait_for(lambda: process_state(child) in (None, "Z"), 10), process_state(child)
    time.sleep(0.2)
    assert held(data) == {}
