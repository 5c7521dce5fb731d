"""Network namespaces: enter one by path and come back, open a netlink handle inside one.

`setns(2)` changes the namespace of the calling thread only.  A netlink socket stays in
the namespace it was created in, so `open_handle` enters, creates the socket and leaves
at once; the rest of the process keeps running in its own namespace.  Python 3.11 has
no `os.setns`: the bundle carries a tiny C module for it (`_setns.c`, built by build.sh);
running from the sources without it, libc's is reached through ctypes.
"""

from __future__ import annotations

import errno

from cni import safeopen, sysapi
from cni.net.netlink import Handle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs file: which kind of namespace it is
SELF_NETNS = "/proc/thread-self/ns/net"

# Resolved on first use: posix's setns, our C module, or libc's through ctypes.
_setns_fn: Callable[[int, int], None] | None = None


def _setns(fd: int, nstype: int) -> None:
    global _setns_fn
    if _setns_fn is None:
        built: Callable[[int, int], None] | None
        try:
            from cni.net._setns import setns as built
        except ImportError:
            built = None
        if hasattr(sysapi, "setns"):  # Python >= 3.12
            _setns_fn = sysapi.setns
        elif built is not None:
            _setns_fn = built
        else:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)

            def call(fd: int, nstype: int) -> None:
                if libc.setns(fd, nstype) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns: {sysapi.strerror(code)}")

            _setns_fn = call
    _setns_fn(fd, nstype)


def netns_fd(path: str) -> int:
    """An O_CLOEXEC descriptor of the namespace at `path`; the caller closes it.

    FileNotFoundError if the path is gone (DEL treats that as "nothing to do");
    OSError(EINVAL) if it exists but is not a network namespace.
    """
    fd = _open_ns_file(path)
    try:
        if not _fd_is_netns(fd):
            raise OSError(errno.EINVAL, f"{path}: not a network namespace")
    except BaseException:
        sysapi.close(fd)
        raise
    return fd


def _open_ns_file(path: str) -> int:
    """Namespace files are regular (nsfs) files: anything else (a FIFO, whose open would wait for
    a writer forever, a device, a directory) is refused before it is opened, as EINVAL."""
    try:
        return safeopen.open_regular(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise OSError(errno.EINVAL, f"{path}: not a network namespace ({e.strerror})") from None
        raise


def _fd_is_netns(fd: int) -> bool:
    import fcntl

    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET
    except OSError:
        return False  # ENOTTY: not an nsfs file


def is_netns(path: str) -> bool:
    """True if `path` exists and is a network namespace (e.g. /var/run/netns/NAME)."""
    try:
        fd = _open_ns_file(path)
    except OSError:
        return False
    try:
        return _fd_is_netns(fd)
    finally:
        sysapi.close(fd)


def same_as_current(path: str) -> bool:
    """True if `path` is the namespace this thread runs in (the CNI spec forbids that)."""
    mine = sysapi.stat(SELF_NETNS)
    other = sysapi.stat(path)
    return (mine.st_dev, mine.st_ino) == (other.st_dev, other.st_ino)


class entered:
    """Context manager: run the body inside the namespace at `path`, then come back.

    If coming back fails the thread is stranded in the wrong namespace; that is raised as
    a RuntimeError, which callers must not swallow.  Not re-entrant: one `with` per object.
    """

    __slots__ = ("_origin", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._origin = -1

    def __enter__(self) -> None:
        target = netns_fd(self.path)
        try:
            self._origin = sysapi.open(SELF_NETNS, sysapi.O_RDONLY | sysapi.O_CLOEXEC)
            try:
                _setns(target, CLONE_NEWNET)
            except BaseException:
                sysapi.close(self._origin)
                raise
        finally:
            sysapi.close(target)

    def __exit__(self, *exc: object) -> None:
        origin, self._origin = self._origin, -1
        try:
            _setns(origin, CLONE_NEWNET)
        except OSError as err:
            raise RuntimeError(f"cannot return to the original network namespace: {err}") from err
        finally:
            sysapi.close(origin)


def open_handle(path: str | None = None) -> Handle:
    """A netlink handle bound to the namespace at `path` (None: the current one)."""
    if path is None:
        return Handle()
    with entered(path):
        return Handle()
