"""Exec one plugin process and time only that process: from spawn to reap.

A runtime pays for the plugin's process, not for our driver, so the driver must stay out of the
sample. Everything a call needs is prepared before the clock starts: stdin is a pipe already holding
the config (the plugin never waits for us), stdout and stderr are memfds (nothing has to drain them
while the plugin runs). ``posix_spawn`` is glibc's vfork-style spawn, so the sample adds only the
exec itself. Peak memory is read separately, through ``peak_rss_helper`` (see there why).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import threading
import time
from dataclasses import dataclass

PIPE_BUF_MAX = 1 << 20
DEFAULT_TIMEOUT = 60.0

# pids of plugin processes still running, so an interrupted run can kill and reap them.
_running: set[int] = set()
_running_lock = threading.Lock()
# Set once cleanup starts: no new plugin may start (it could recreate a bridge already deleted).
stopping = threading.Event()


class Stopped(RuntimeError):
    """Raised instead of starting a process once the run is being torn down."""


@dataclass(slots=True)
class Exec:
    """One finished process: exit status (negative: killed by that signal), wall time, peak RSS."""

    rc: int
    seconds: float
    maxrss_kib: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


def _pipe_with(data: bytes) -> int:
    """The read end of a pipe already holding ``data`` (the write end is closed)."""
    r, w = os.pipe()
    try:
        if len(data) > 65536:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, min(PIPE_BUF_MAX, max(len(data), 65536)))
        view = memoryview(data)
        while view:
            n = os.write(w, view)
            view = view[n:]
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def run(path: str, env: dict[str, str], stdin: bytes = b"", argv: list[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT, rss_helper: str | None = None) -> Exec:
    """Run ``path`` (argv[0] = ``path``, as Go's os/exec does) and time spawn-to-reap.

    A process still running after ``timeout`` seconds is killed and reported with ``timed_out``.
    ``rss_helper`` (GNU time) runs the process through that small program, for ``maxrss_kib``
    only: see ``peak_rss``.
    """
    stdin_fd = _pipe_with(stdin)
    out_fd = os.memfd_create("pycni-bench-out")
    err_fd = os.memfd_create("pycni-bench-err")
    rss_fd = os.memfd_create("pycni-bench-rss") if rss_helper else -1
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
        (os.POSIX_SPAWN_DUP2, out_fd, 1),
        (os.POSIX_SPAWN_DUP2, err_fd, 2),
    ]
    args = argv if argv is not None else [path]
    if rss_helper:
        actions.append((os.POSIX_SPAWN_DUP2, rss_fd, 3))
        args = [rss_helper, "-f", "%M", "-o", "/dev/fd/3", path, *args[1:]]
        path = rss_helper
    timed_out = False
    try:
        with _running_lock:
            if stopping.is_set():
                raise Stopped("the bench is stopping")
            t0 = time.perf_counter()
            pid = os.posix_spawn(path, args, env, file_actions=actions)
            _running.add(pid)
        try:
            pidfd = os.pidfd_open(pid)
            try:
                if not select.select([pidfd], [], [], timeout)[0]:
                    timed_out = True
                    os.kill(pid, signal.SIGKILL)
            finally:
                os.close(pidfd)
            _, status, usage = os.wait4(pid, 0)
            t1 = time.perf_counter()
        finally:
            with _running_lock:
                _running.discard(pid)
        rc = os.waitstatus_to_exitcode(status)
        maxrss = usage.ru_maxrss
        if rss_helper:
            lines = _read_all(rss_fd).decode(errors="replace").split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        return Exec(rc, t1 - t0, maxrss, _read_all(out_fd), _read_all(err_fd), timed_out)
    finally:
        for fd in (stdin_fd, out_fd, err_fd, rss_fd):
            if fd >= 0:
                os.close(fd)


def kill_running() -> None:
    """Stop starting plugins; kill and reap the ones this driver started that still run."""
    with _running_lock:
        stopping.set()
        pids = list(_running)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def peak_rss_helper() -> str | None:
    """GNU time, if installed: the way to read a plugin's own peak RSS.

    ``ru_maxrss`` of a child started straight from the bench is wrong: at exec the kernel folds the
    high-water RSS of the address space being replaced into the child's maxrss, and for a child
    spawned by vfork (or fork) that address space is the bench's own (20+ MiB of Python), so
    every child would report at least that. GNU time is ~1 MiB, forks the plugin from itself and
    reports the same ``wait4`` figure, which is then the plugin's own.
    """
    path = shutil.which("time", path="/usr/bin:/bin")
    if path is None:
        return None
    probe = run("/bin/true", {"PATH": "/usr/bin:/bin"}, rss_helper=path)
    return path if probe.rc == 0 and probe.maxrss_kib > 0 else None
