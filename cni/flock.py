"""flock(2) locks for a `with` block: the one way pycni serialises work across plugin processes.

The lock belongs to the open file description, so the kernel releases it when the process exits
however it exits; a killed call never leaves a lock behind.
"""

from __future__ import annotations

import fcntl

from cni import sysapi
from cni.safeopen import open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def open_lock_file(path: str, mode: int, dir_fd: int | None = None) -> int:
    """An O_CLOEXEC descriptor of the lock file at `path`, created with `mode` if missing: never
    through a symlink, never a FIFO, device or directory (opening a FIFO would wait forever)."""
    return open_regular(path, sysapi.O_RDONLY | sysapi.O_CREAT, mode, dir_fd=dir_fd, follow=False)


class FileLock:  # a class, not @contextmanager (cni/__init__.py)
    """Hold flock(LOCK_EX) on `fd` for the `with` block (no lock at all when fd is negative).

    `error` turns a failing flock into the caller's own exception.
    """

    __slots__ = ("_error", "_fd")

    def __init__(self, fd: int, error: Callable[[OSError], Exception] | None = None) -> None:
        self._fd = fd
        self._error = error

    def __enter__(self) -> None:
        if self._fd < 0:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
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

    fd = _node_fds.get(name)
    if fd is None:
        try:
            safeopen.makedirs(NODE_LOCK_DIR, 0o755)
            fd = open_lock_file(sysapi.join(NODE_LOCK_DIR, f"{name}.lock"), 0o600)
        except OSError:
            fd = -1
        _node_fds[name] = fd
    return FileLock(fd)
