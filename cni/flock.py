"""flock(2) locks for a `with` block: the one way pycni serialises work across plugin processes.

The lock belongs to the open file description, so the kernel releases it when the process exits
however it exits; a killed call never leaves a lock behind. A live process can hold one for ever,
though (a stopped debugger, a wedged tool, anyone who opens the file): every wait is bounded, and
the call that gives up answers "try again later" naming the lock.
"""

from __future__ import annotations

import fcntl

from cni import sysapi
from cni.safeopen import open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LOCK_TIMEOUT = 30.0  # seconds; the sections a lock guards last milliseconds
TIMEOUT_VAR = "PYCNI_LOCK_TIMEOUT"
_POLL_FIRST, _POLL_MAX = 0.001, 0.05  # seconds between tries, doubling up to the most


class LockTimeout(OSError):
    """Another process held the lock for the whole bound: the call is worth trying again."""

    overran_bound = True


def lock_timeout() -> float:
    """LOCK_TIMEOUT, or the positive number of seconds in TIMEOUT_VAR."""
    return sysapi.seconds_from_env(TIMEOUT_VAR, LOCK_TIMEOUT)


def open_lock_file(path: str, mode: int, dir_fd: int | None = None) -> int:
    """An O_CLOEXEC descriptor of the lock file at `path`, created with `mode` if missing: never
    through a symlink, never a FIFO, device or directory (opening a FIFO would wait forever)."""
    return open_regular(path, sysapi.O_RDONLY | sysapi.O_CREAT, mode, dir_fd=dir_fd, follow=False)


def acquire(fd: int, path: str, timeout: float) -> None:
    """flock(LOCK_EX) on fd, waiting at most `timeout` seconds: LockTimeout naming `path` after."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    import time  # only when another process holds the lock

    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeout(11, f"the lock {path} is held by another process: waited {timeout:g} s "
                              f"(the bound is {TIMEOUT_VAR})", path)  # EAGAIN
        time.sleep(min(pause, left))
        pause = min(pause * 2, _POLL_MAX)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            continue


class FileLock:  # a class, not @contextmanager (cni/__init__.py)
    """Hold flock(LOCK_EX) on `fd` (the lock file `path`) for the `with` block, waiting at most
    `lock_timeout()` for it; no lock at all when fd is negative.

    `error` turns a failing flock (LockTimeout when the wait overran) into the caller's own exception.
    """

    __slots__ = ("_error", "_fd", "_path")

    def __init__(self, fd: int, error: Callable[[OSError], Exception] | None = None, path: str = "") -> None:
        self._fd = fd
        self._error = error
        self._path = path

    def __enter__(self) -> None:
        if self._fd < 0:
            return
        try:
            acquire(self._fd, self._path, lock_timeout())
        except OSError as e:
            if self._error is None:
                raise
            raise self._error(e) from None

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


NODE_LOCK_DIR = "/run/pycni"
_node_fds: dict[str, int] = {}


def node_lock(name: str) -> FileLock:
    """A node-wide lock `/run/pycni/<name>.lock` for a read-modify-write of shared host state (a
    bridge's setup, the firewall's shared chains and jumps); opened once per process. Without a
    writable /run there is no lock (a no-op)."""
    from cni import safeopen

    path = sysapi.join(NODE_LOCK_DIR, f"{name}.lock")
    fd = _node_fds.get(name)
    if fd is None:
        try:
            safeopen.makedirs(NODE_LOCK_DIR, 0o755)
            fd = open_lock_file(path, 0o600)
        except OSError:
            fd = -1
        _node_fds[name] = fd
    return FileLock(fd, path=path)
