"""`pycni serve`: the warm process. Imports every plugin module once, then hands each call to a
child of its own, forked ahead of the call (spare.py).

It serves a call only from its own bundle (the build id the launcher carries), from uid 0, and
from a caller in its own mount and network namespaces; anything else is refused and the caller
runs cold. It never runs plugin code itself: the spare child that takes a call does (child.py),
so no state passes from one call to the next. One thread, one connection at a time up to the
hand-over (bounded by READ_TIMEOUT and spare.HAND_TIMEOUT); the children run in parallel. On
SIGTERM it stops accepting and exits; calls in flight finish in their children, and the spares
leave when its control socket closes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable
from types import ModuleType

from . import protocol, spare

READ_TIMEOUT = 1.0  # a request arrives in one write; a slower peer is not a launcher
LISTEN_BACKLOG = 256  # a burst of pods: the launcher finds a full backlog busy and runs cold


class ServeError(Exception):
    """The server cannot start (printed as one line, exit 1)."""


class CallerGone(Exception):
    """The caller died or hung up before the hand-over (a runtime's kill): nothing to answer."""


def build_id() -> bytes | None:
    """The build id the launcher compiled in (None: not started by the bundle's launcher)."""
    value = getattr(sys, "_pycni_build_id", None)
    return value.encode() if value else None


def log(message: str) -> None:
    sys.stderr.write(f"pycni serve: {message}\n")
    sys.stderr.flush()


def preload() -> list[str]:
    """Import every module a plugin call may import (the operator's aside): a child finds them
    loaded. Returns the ones that failed to import (logged; their calls import them as cold)."""
    import cni
    import ipam

    failed: list[str] = []
    for package in (cni, ipam):
        _import_tree(package, failed)
    for name in ("ipaddress", "subprocess", "json", "traceback", "signal", "select", "fcntl", "io"):
        __import__(name)
    _warm_schemas(failed)
    return failed


def _warm_schemas(failed: list[str]) -> None:
    """Every plugin's config schema read and its patterns compiled, as the calls would."""
    from cni.contract import schema
    from cni.plugins import MODULES, load

    for plugin_type in MODULES:
        try:
            schema.warm(load(plugin_type).SCHEMA)
        except Exception as exc:
            failed.append(f"the schema of {plugin_type}: {exc}")


PRELOAD_SKIP = ("cni.ops", "cni.cri", "cni.cli", "cni.warm")


def _import_tree(package: ModuleType, failed: list[str]) -> None:
    """Import the package's modules, depth first, each leaving its package as it found it: a
    verb function named like the module it imports when it runs (bridge's `add` imports
    `bridge.add`) stays the function, as it is in a cold call until that verb runs."""
    import pkgutil

    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name.startswith(PRELOAD_SKIP):
            continue
        attr = info.name.rpartition(".")[2]
        before = package.__dict__.get(attr, _MISSING)
        try:
            __import__(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc}")
            continue
        module = sys.modules[info.name]
        if before is not _MISSING and before is not module:
            setattr(package, attr, before)
        if info.ispkg:
            _import_tree(module, failed)


_MISSING = object()


def listener(path: str) -> tuple[socket.socket, str | None]:
    """The listening socket: systemd's (LISTEN_FDS) or bound at path, 0600 in a directory only root
    may write to (others may enter it: the socket's own mode keeps them from connecting).
    The second value is the path to remove on exit (None when systemd owns it)."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0") or 0) >= 1:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(key, None)
        return socket.socket(fileno=3), None
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.stat(directory)
    if st.st_uid != 0 or st.st_mode & 0o022:  # /run/pycni is 0755 once a node lock made it
        raise ServeError(f"{directory} must be root's and writable by root alone: no one else may "
                         "replace the socket")
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(LISTEN_BACKLOG)
    return sock, path


def fault_hook() -> Callable[[str], None]:
    """PYCNI_WARM_FAULT (the server's own environment, for the tests of every step of a call):
    `stop:STEP` stops the process at STEP (SIGSTOP), `sleep:SECONDS` makes a child run `sleep` in
    its group once committed (a call that takes long). Steps: accepted, read, handed (server),
    child-ready, child-go, child-running (child)."""
    spec = os.environ.pop("PYCNI_WARM_FAULT", "")
    kind, _, value = spec.partition(":")

    def fault(step: str) -> None:
        if kind == "stop" and step == value:
            os.kill(os.getpid(), signal.SIGSTOP)
        elif kind == "sleep" and step == "child-running":
            import subprocess

            subprocess.run(["sleep", value], check=False)

    return fault


SPARES = 2
DISPATCH_NICE = -20


def dispatch_first() -> tuple[int, bool]:
    """Put the accept loop ahead of everything else on the node (nice DISPATCH_NICE); returns the
    priority it was started with, which the calls' children run at. Its work per call is small
    (accept, checks, the hand-over, the next fork) but serial: in a burst (a node starting its
    pods) it competes with every pod's runtime processes, and a hand-over that waited its turn
    past the launcher's bound would run the call cold, at several times its warm cost, adding
    to the very load that delayed it. It runs no plugin code at that priority. The second value
    says whether it could (CAP_SYS_NICE): only then may it lower a spare's and raise it back."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, DISPATCH_NICE)
    except OSError as exc:
        log(f"runs at its own priority ({exc.strerror}): a burst may send calls back cold")
        return nice, False
    return nice, True


class Server:
    """The accept loop and the children of the calls it forked."""

    def __init__(self, sock: socket.socket, entry: Callable[[list[str]], int], verbose: bool,
                 priority: tuple[int, bool]):
        self.sock, self.entry, self.verbose = sock, entry, verbose
        self.nice, self.renice = priority
        self.build_id = build_id()
        self.namespaces = _namespaces(os.getpid())
        self.children: dict[int, socket.socket] = {}
        self.fault = fault_hook()
        self.stopping = False
        self.spares: list[spare.Spare] = []  # oldest first: it has copied the most
        self.cpus = len(os.sched_getaffinity(0))
        self.quiet_after = 0.0  # no spares replaced between calls before (monotonic)

    def fork_spares(self, want: int = SPARES) -> None:
        """The children the next calls go to, forked now (the server's own buffers flushed
        first). SPARES of them: a list's plugins are called one after the other, each as soon
        as the one before it ended. The spare the next call takes was forked before the call
        before it and has copied its pages meanwhile; the one that replaces it is forked when
        no call runs (the reaping of the last), not while one does, which it would slow on a
        node of few CPUs. Only when no spare is left (a burst) are they forked at once; a call
        that finds none waits for one fork only (`want`)."""
        sys.stdout.flush()
        sys.stderr.flush()
        calm = len(self.children) < self.cpus  # a CPU is free for the spare to copy its pages
        # forked at the calls' priority: a child starts at its parent's, and until the spare
        # set its own it would run ahead of the call in flight
        if self.renice:
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)
        try:
            while len(self.spares) < want:
                self.spares.append(spare.fork(self.entry, self.fault, self.nice, copy=calm,
                                              lower=self.renice))
        finally:
            if self.renice:
                os.setpriority(os.PRIO_PROCESS, 0, DISPATCH_NICE)

    def loop(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.sock.setblocking(False)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while not self.stopping:
            for fd, _ in poller.poll():
                if fd == wake_r:
                    _drain(wake_r)
                    self._reap()
                elif not self.stopping:
                    self._accept()
        self._reap()

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        conn.settimeout(READ_TIMEOUT)
        try:
            self.fault("accepted")
            reason = self._handle(conn)
        except CallerGone as exc:
            log(f"dropped a call: {exc}")
            reason = None
            conn.close()
        except (OSError, protocol.ProtocolError) as exc:
            reason = str(exc) or type(exc).__name__
        if reason is not None:
            if reason:
                log(f"refused a call: {reason}")
                with contextlib.suppress(OSError):
                    conn.sendall(protocol.REFUSED)
            conn.close()

    def _handle(self, conn: socket.socket) -> str | None:
        """None when a child took the call; "" for a ping answered; else why it was refused."""
        pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != 0:
            return f"caller pid {pid} has uid {uid}, not 0"
        theirs = _namespaces(pid)
        if theirs is None:
            raise CallerGone(f"caller pid {pid} is gone")
        if theirs != self.namespaces:
            return f"caller pid {pid} is in other mount or network namespaces"
        kind, length = protocol.parse_header(_recv_exact(conn, protocol.HEADER))
        if kind == protocol.PING:
            conn.sendall(protocol.PING + (self.build_id or b"") + b"\n")
            return ""
        payload = _recv_exact(conn, length)
        call = protocol.parse_call(payload)
        self.fault("read")
        if call.build_id != self.build_id:
            return f"caller pid {pid} runs another build ({call.build_id.decode(errors='replace')})"
        child = self._hand(conn, payload)
        if child is None:
            return "no child could take it"
        self.children[child] = conn
        if self.verbose:
            log(f"call from pid {pid} ({os.fsdecode(call.argv[0]) if call.argv else '?'}): child {child}")
        self.fault("handed")
        if not self.spares:  # calls keep coming (a burst): the next one's now
            try:
                self.fork_spares()
            except OSError as exc:  # the call is handed over; the next hand-over forks again
                log(f"cannot fork a spare child: {exc}")
        return None

    def _hand(self, conn: socket.socket, payload: bytes) -> int | None:
        """The pid of the spare that took the call: the oldest waiting one, else (it died, or none
        was left) one forked now; None when none of them could take it."""
        for _ in range(SPARES + 1):
            if not self.spares:
                self.fork_spares(want=1)
            taker = self.spares.pop(0)
            try:
                taker.hand(conn, payload, self.nice if self.renice else None)
            except OSError as exc:
                log(f"spare child {taker.pid} could not take a call: {exc}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(taker.pid, signal.SIGKILL)
                continue
            finally:
                taker.close()
            return taker.pid
        return None

    def _reap(self) -> None:
        """Collect finished children (saying how one died when a signal killed it); between
        calls, replace the spares the calls took or that died."""
        self._collect()
        if not self.children and not self.stopping and time.monotonic() > self.quiet_after:
            try:
                self.fork_spares()
            except OSError as exc:  # a hand-over forks one when it finds none
                log(f"cannot fork a spare child: {exc}")

    def _collect(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            dead = [s for s in self.spares if s.pid == pid]
            if dead:  # died waiting: no reap replaces it within the second; a hand-over may
                self.spares.remove(dead[0])
                dead[0].close()
                log(f"spare child {pid} died waiting (status {status:#x})")
                self.quiet_after = time.monotonic() + 1.0  # no fork loop if they keep dying
                continue
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                try:
                    conn.settimeout(0.1)
                    conn.sendall(protocol.status(protocol.SIGNALLED, os.WTERMSIG(status)))
                except OSError:
                    pass
            conn.close()


def _namespaces(pid: int) -> tuple[tuple[int, int], ...] | None:
    try:
        return tuple((st.st_dev, st.st_ino) for st in
                     (os.stat(f"/proc/{pid}/ns/{ns}") for ns in ("mnt", "net")))
    except OSError:
        return None


def _recv_exact(conn: socket.socket, length: int) -> bytes:
    parts = []
    left = length
    while left > 0:
        chunk = conn.recv(min(left, 1 << 16))
        if not chunk:
            raise CallerGone("the caller hung up before its request was complete")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def main(args: list[str], entry: Callable[[list[str]], int]) -> int:
    """`pycni serve [--socket PATH] [--verbose]`, in the foreground (as the systemd unit runs it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="pycni serve", description=(
        "Serve plugin calls from a warm interpreter (the launcher's warm path)."))
    parser.add_argument("--socket", default=protocol.DEFAULT_SOCKET,
                        help=f"the socket to listen on (default {protocol.DEFAULT_SOCKET}); "
                             "a socket systemd passes (LISTEN_FDS) wins")
    parser.add_argument("--verbose", action="store_true", help="log every call served")
    opts = parser.parse_args(args)
    if build_id() is None:
        log("runs only from the bundle (its launcher carries the build id the callers are checked against)")
        return 1
    started = time.monotonic()
    failed = preload()
    for line in failed:
        log(f"not preloaded: {line}")
    try:
        sock, owned = listener(opts.socket)
    except (OSError, ServeError) as exc:
        log(f"cannot listen on {opts.socket}: {exc}")
        return 1
    gc.collect()
    gc.freeze()  # the children share the preloaded modules' pages; no collection touches them
    server = Server(sock, entry, opts.verbose, dispatch_first())
    server.fork_spares()
    log(f"serving on {owned or 'the socket systemd passed'} (pid {os.getpid()}, build "
        f"{(server.build_id or b'none').decode()}, ready in {(time.monotonic() - started) * 1000:.0f} ms)")
    try:
        server.loop()
    finally:
        if owned:
            with contextlib.suppress(OSError):
                os.unlink(owned)
    log("stopped")
    return 0
