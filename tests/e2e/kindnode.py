"""An emulated kind node: containerd (kind's 2.3.4, or Debian's 1.6.20) and runc in a network and mount
namespace of their own.

A kind node is a container: its own network namespace (the pod bridge, routes and NAT rules live
there), containerd with the CRI plugin reading ``/etc/cni/net.d`` and executing ``/opt/cni/bin``.
We reproduce that without Docker:

- ``ip netns add`` gives the node its network namespace; deleting it at the end removes every link
  and rule the plugins made there.
- containerd is started through ``ip netns exec`` (which also gives it a private, slave mount
  namespace) by a short shell that first bind-mounts private directories of this node over
  ``/opt/cni/bin``, ``/etc/cni/net.d``, ``/var/lib/cni``, ``/run/containerd`` and
  ``/run/cni-ipam-state``. So containerd,
  its shims, ``ctr`` (run inside the same namespaces with nsenter) and the plugins they execute see
  the kind-node paths, while the host's own directories are never read or written. Mounts made in
  there (container root filesystems, the pods' network namespaces) never reach the host and vanish
  with the last process of the node.
- Everything else (containerd ``root``, ``state``, sockets) is under the node's temporary directory.

``stop()`` is safe to call at any point of a failed start and tears down in an order that always
ends with nothing left: tasks killed through containerd, containerd stopped, any shim or container
process of the node killed, the network namespace deleted, the temporary directory removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers import add_netns, del_netns, netns_exists, unique_name

# Host paths a kind node's containerd and go-cni use, each replaced by a private directory.
NODE_PATHS = {
    "opt-cni-bin": "/opt/cni/bin",
    "etc-cni-net.d": "/etc/cni/net.d",
    "var-lib-cni": "/var/lib/cni",
    "run-containerd": "/run/containerd",
    "run-cni-ipam-state": "/run/cni-ipam-state",  # host-local's dataDir in kindnetd's list
}
# The mount points are shared by every process running nodes on the machine (test runs side by
# side). Removing a directory that is a mount point in another node's namespace detaches that node's
# private mount (the kernel allows it across namespaces), so the directories the bench created go
# only when no node of any process is alive: each live node holds LIVE_LOCK shared, and mount points
# are made and removed under GUARD_LOCK. MADE lists the top directories created, one a line.
LOCK_DIR = Path("/run/pycni-e2e")
GUARD_LOCK = LOCK_DIR / "mountpoints.lock"
LIVE_LOCK = LOCK_DIR / "nodes.lock"
MADE = LOCK_DIR / "made-mountpoints"
START_TIMEOUT = 30.0
CTR_TIMEOUT = 60.0


@dataclass(frozen=True)
class Runtime:
    """A containerd a node can run: where its binaries are, how its config reads, which cniVersion
    its go-cni/libcni accepts in a network list."""

    name: str
    bin_dir: Path | None  # None: Debian's containerd, ctr and shim on PATH
    config_version: int
    cni_version: str

    def tool(self, name: str) -> str:
        """The path of one of its binaries (containerd, ctr), or the bare name for Debian's."""
        return str(self.bin_dir / name) if self.bin_dir is not None else name

    def config(self, tmp: Path, sandbox_image: str, registry_config: Path | None = None) -> str:
        return (_config_v3 if self.config_version >= 3 else _config_v2)(tmp, sandbox_image, registry_config)


def debian_containerd() -> Runtime:
    """Debian 12's containerd 1.6.20 (libcni 1.1.2: spec versions up to 1.0.0)."""
    return Runtime("containerd 1.6.20 (Debian)", None, 2, "1.0.0")


def containerd_2(bin_dir: Path) -> Runtime:
    """containerd v2.3.4 as a kind node runs it (libcni 1.3.0: takes the example's 1.1.0 as it is and
    turns STATUS into NetworkReady)."""
    return Runtime("containerd 2.3.4", bin_dir, 4, "1.1.0")


_DISABLED = """disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]"""


def _common(tmp: Path) -> str:
    """containerd 1.6's private root, state and sockets."""
    return f"""\
root = "{tmp}/root"
state = "{tmp}/state"

[grpc]
  address = "{tmp}/containerd.sock"

[ttrpc]
  address = "{tmp}/containerd.sock.ttrpc"

[debug]
  level = "info"
"""


def _config_v2(tmp: Path, sandbox_image: str, registry_config: Path | None) -> str:
    """containerd 1.6 config: CRI as on a kind node (CNI paths are the defaults, which the node's
    mounts make private), plus the two settings these machines need."""
    registry = (f'\n  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "{registry_config}"'
                if registry_config else "")
    return f"""version = 2
{_DISABLED}
{_common(tmp)}
[plugins."io.containerd.internal.v1.opt"]
  path = "{tmp}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_tcp_service = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1{registry}
"""


def _config_v3(tmp: Path, sandbox_image: str, registry_config: Path | None) -> str:
    """containerd 2.x config (the version `containerd config default` prints): the CRI plugin split
    into images and runtime sections, ``bin_dirs`` a list, the sandbox image pinned."""
    registry = (f'\n  [plugins."io.containerd.cri.v1.images".registry]\n    config_path = "{registry_config}"'
                if registry_config else "")
    return f"""version = 4
root = "{tmp}/root"
state = "{tmp}/state"
{_DISABLED}

[plugins."io.containerd.server.v1.grpc"]
  address = "{tmp}/containerd.sock"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "{tmp}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{tmp}/opt"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{sandbox_image}"{registry}

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
"""


def _boot_script(tmp: Path, runtime: Runtime) -> str:
    """Run in the node's netns and a new slave mount namespace: a sysfs of the node's own (so
    /sys/class/net shows the node's links, as in a kind node container) with the host's cgroup
    hierarchy carried over (runc needs it), the kind-node paths bound to private directories, then
    containerd. ``mount -n`` keeps libmount from writing /run/mount on the host."""
    binds = "\n".join(f"mount -n --bind {shlex.quote(str(tmp / 'node' / k))} {shlex.quote(v)}"
                      for k, v in NODE_PATHS.items())
    cg = shlex.quote(str(tmp / "cgroup"))
    # The runtime's own directory first, so containerd starts its own shim.
    path = f'export PATH={shlex.quote(str(runtime.bin_dir))}:"$PATH"\n' if runtime.bin_dir else ""
    return f"""set -e
ip link set lo up
mkdir -p {cg}
mount -n --rbind /sys/fs/cgroup {cg}
mount -n -t sysfs sysfs /sys
mount -n --rbind {cg} /sys/fs/cgroup
{binds}
{path}exec containerd --config {shlex.quote(str(tmp / 'config.toml'))}
"""


def _children(pids: set[int]) -> set[int]:
    """All descendants of ``pids`` (from /proc's parent links)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= nxt
        frontier = nxt
    return found


def _ns_id(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _procs_in_mount_ns(ns_id: str) -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and _ns_id(int(p), "mnt") == ns_id}


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _state(pid: int) -> str | None:
    """The process state letter (R, S, D, Z...), None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"{pid} ({_state(pid)}) {cmd}"


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait until every pid has exited; a zombie counts as gone (its parent, which may be an init
    that never reaps, holds only the exit status)."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _state(p) not in (None, "Z", "X")}
        if alive:
            time.sleep(0.05)
    return alive


@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """Hold GUARD_LOCK: no other process makes or removes mount points meanwhile."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(GUARD_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _claim_mountpoints(paths: list[Path]) -> int:
    """Create the missing ``paths`` (recording the top directory made) and hold LIVE_LOCK shared
    until the returned descriptor is closed by :func:`_release_mountpoints`."""
    with _guarded():
        made = []
        for path in paths:
            top, p = None, path
            while not p.exists():
                top, p = p, p.parent
            if top is not None:
                path.mkdir(parents=True)
                made.append(f"{top}\n")
        if made:
            with MADE.open("a") as f:
                f.writelines(made)
        fd = os.open(LIVE_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd


def _release_mountpoints(live_fd: int) -> None:
    """Let go of LIVE_LOCK; when no node of any process is left, remove the empty directories the
    bench created as mount points (the mounts were never visible here)."""
    os.close(live_fd)
    with _guarded():
        probe = os.open(LIVE_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another node is alive; the last one removes them
            tops = set(MADE.read_text().split()) if MADE.exists() else set()
            for top in map(Path, tops):
                with contextlib.suppress(OSError):
                    for sub in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                        sub.rmdir()
                    top.rmdir()
            MADE.unlink(missing_ok=True)
        finally:
            os.close(probe)


@dataclass
class KindNode:
    """One emulated node. Make it with :meth:`start`; always call :meth:`stop`."""

    name: str
    tmp: Path
    sandbox_image: str
    runtime: Runtime = field(default_factory=debian_containerd)
    registry_config: Path | None = None
    proc: subprocess.Popen | None = None
    mnt_ns: str | None = None
    live_fd: int | None = None  # LIVE_LOCK, held while the node lives
    log_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # containerd's, so the plugins' it runs

    # ------------------------------------------------------------ paths
    @property
    def socket(self) -> Path:
        return self.tmp / "containerd.sock"

    @property
    def bin_dir(self) -> Path:
        """The host path of the node's /opt/cni/bin."""
        return self.tmp / "node" / "opt-cni-bin"

    @property
    def conf_dir(self) -> Path:
        """The host path of the node's /etc/cni/net.d."""
        return self.tmp / "node" / "etc-cni-net.d"

    @property
    def cni_state(self) -> Path:
        """The host path of the node's /var/lib/cni (host-local's default dataDir, libcni's cache)."""
        return self.tmp / "node" / "var-lib-cni"

    @property
    def ipam_state(self) -> Path:
        """The host path of the node's /run/cni-ipam-state (host-local's dataDir in kind's list)."""
        return self.tmp / "node" / "run-cni-ipam-state"

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.name}"

    # ------------------------------------------------------------ life cycle
    @classmethod
    def start(cls, *, sandbox_image: str, parent: Path | None = None, runtime: Runtime | None = None,
              registry_config: Path | None = None, env: dict[str, str] | None = None) -> KindNode:
        """Start containerd (Debian's unless ``runtime`` says otherwise) as a node; on any failure the
        partial node is torn down and re-raised. ``registry_config`` is containerd's hosts.toml
        directory (mirrors of image registries); ``env`` is added to containerd's environment, which
        the plugins it runs inherit."""
        runtime = runtime or debian_containerd()
        for tool in (runtime.tool("containerd"), runtime.tool("ctr"), "runc", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"`{tool}` not found (Debian packages containerd, runc, util-linux)")
        tmp = Path(tempfile.mkdtemp(prefix="pycni-node-", dir=parent))
        node = cls(name=unique_name("pycni-kn-", 8), tmp=tmp, sandbox_image=sandbox_image, runtime=runtime,
                   registry_config=registry_config, env=dict(env or {}))
        try:
            node._start()
        except BaseException:
            node.stop()
            raise
        return node

    def _start(self) -> None:
        for key in NODE_PATHS:
            (self.tmp / "node" / key).mkdir(parents=True)
        self.live_fd = _claim_mountpoints([Path(t) for t in NODE_PATHS.values()])
        (self.tmp / "config.toml").write_text(
            self.runtime.config(self.tmp, self.sandbox_image, self.registry_config))
        add_netns(self.name)
        self.log_file = self.tmp / "containerd.log"
        with self.log_file.open("wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "slave", "nsenter", f"--net={self.netns_path}",
                 "sh", "-c", _boot_script(self.tmp, self.runtime)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **self.env})
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists():
                if self.mnt_ns is None:
                    self.mnt_ns = _ns_id(self.proc.pid, "mnt")
                probe = self.ctr("version", check=False, timeout=10)
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not answer within {START_TIMEOUT}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_file is None or not self.log_file.exists():
            return "<no log>"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------ commands inside the node
    def enter_argv(self) -> list[str]:
        """argv prefix running a command in the node's mount and network namespaces.

        Entering a mount namespace puts the caller at that namespace's real root; --root and --wd
        take containerd's own root and directory, so this also works when the tests run in a chroot."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"node {self.name}: containerd is not running")
        return ["nsenter", f"--target={self.proc.pid}", "--mount", "--net", "--root", "--wd", "--"]

    def run(self, *argv: str, check: bool = True, timeout: float = CTR_TIMEOUT,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as the node sees the world (its mounts, its network)."""
        full = [*self.enter_argv(), *argv]
        try:
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{full} timed out after {timeout}s\nstdout={exc.stdout!r}\n"
                                 f"stderr={exc.stderr!r}") from None
        if check and proc.returncode != 0:
            raise AssertionError(f"{full} exited {proc.returncode}\nstdout={proc.stdout!r}\n"
                                 f"stderr={proc.stderr!r}\ncontainerd log:\n{self.log_tail()}")
        return proc

    def ctr(self, *args: str, namespace: str = "default", check: bool = True,
            timeout: float = CTR_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return self.run(self.runtime.tool("ctr"), f"--address={self.socket}", f"--namespace={namespace}",
                        *args, check=check, timeout=timeout)

    def ctr_popen(self, *args: str, namespace: str = "default", **kw) -> subprocess.Popen:
        """A long-running ctr (``ctr run`` in the foreground, which owns the container's CNI DEL)."""
        argv = [*self.enter_argv(), self.runtime.tool("ctr"), f"--address={self.socket}",
                f"--namespace={namespace}", *args]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)

    def import_image(self, archive: Path, *, namespace: str = "default") -> None:
        self.ctr("images", "import", str(archive), namespace=namespace, timeout=120)

    def task_pid(self, container_id: str, *, namespace: str = "default") -> int | None:
        """The host pid of a container's init, or None while it has no running task."""
        out = self.ctr("tasks", "ls", "-q", namespace=namespace, check=False).stdout.split()
        if container_id not in out:
            return None
        info = self.ctr("tasks", "ps", container_id, namespace=namespace, check=False).stdout.split()
        pids = [int(x) for x in info if x.isdigit()]
        return pids[0] if pids else None

    # ------------------------------------------------------------ teardown
    def _stop_tasks(self) -> None:
        """Kill and delete every task and container the node still has (ctr and CRI namespaces)."""
        namespaces = self.ctr("namespaces", "ls", "-q", check=False, timeout=15).stdout.split()
        for ns in namespaces:
            for task in self.ctr("tasks", "ls", "-q", namespace=ns, check=False, timeout=15).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, namespace=ns, check=False, timeout=15)
                self.ctr("tasks", "delete", "-f", task, namespace=ns, check=False, timeout=15)
            for c in self.ctr("containers", "ls", "-q", namespace=ns, check=False, timeout=15).stdout.split():
                self.ctr("containers", "delete", c, namespace=ns, check=False, timeout=15)

    def stop(self) -> None:
        """Tear everything down; never raises for what is already gone."""
        errors: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                self._stop_tasks()
            except Exception as exc:  # containerd may be wedged; the kills below still run
                errors.append(f"stopping tasks: {exc}")
        shims: set[int] = set()
        if self.mnt_ns is not None:
            shims = _procs_in_mount_ns(self.mnt_ns)
        if self.proc is not None:
            shims.discard(self.proc.pid)
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        # Shims outlive containerd by design; their containers are their children.
        if self.mnt_ns is not None:
            shims |= _procs_in_mount_ns(self.mnt_ns)
        victims = shims | _children(shims)
        _kill(victims - shims)
        _kill(shims)
        left = _wait_gone(victims, 10)
        if left:
            errors.append("processes still alive: " + ", ".join(_describe(p) for p in sorted(left)))
        if netns_exists(self.name):
            del_netns(self.name)
        if not os.environ.get("PYCNI_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.live_fd is not None:
            _release_mountpoints(self.live_fd)
            self.live_fd = None
        if errors:
            raise RuntimeError(f"node {self.name} teardown: " + "; ".join(errors))

    # ------------------------------------------------------------ CNI config
    def write_netconf(self, config: dict, filename: str) -> Path:
        """Write a config into the node's /etc/cni/net.d atomically (temp name + rename)."""
        path = self.conf_dir / filename
        tmp = self.conf_dir / f".{filename}.tmp"
        tmp.write_text(json.dumps(config, indent=2))
        tmp.rename(path)
        return path
