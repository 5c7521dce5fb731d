"""Opening a path someone else named: never block, never open a device, never read without a bound.

A config or the environment may name a FIFO (open(2) would wait for a writer forever), a device
(opening one can have effects, `/dev/zero` never ends), a directory or a huge file. Every file a
plugin reads or locks goes through here: the path is looked at first (stat, so no device is ever
opened), then opened with O_NONBLOCK, and the descriptor is checked again (fstat: the same file,
still regular), so a swap between the two steps is caught too.
"""

from __future__ import annotations

from cni import sysapi

READ_LIMIT = 1 << 20  # 1 MiB: a resolv.conf or a range file is a few hundred bytes


def _kind(mode: int) -> str:
    if sysapi.S_ISDIR(mode):
        return "a directory"
    if sysapi.S_ISFIFO(mode):
        return "a FIFO"
    if sysapi.S_ISCHR(mode) or sysapi.S_ISBLK(mode):
        return "a device"
    if sysapi.S_ISSOCK(mode):
        return "a socket"
    if sysapi.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def refuse(path: str, why: str, code: int = 22) -> OSError:  # EINVAL
    """An OSError whose strerror says why the path was refused (callers print strerror)."""
    return OSError(code, why, path)


def check_path(path: str) -> None:
    """A NUL byte cannot be passed to the kernel: refuse it as the kernel would refuse the name."""
    if "\0" in path:
        raise refuse(path, "the path contains a NUL byte")


def open_regular(path: str, flags: int = sysapi.O_RDONLY, mode: int = 0o644, dir_fd: int | None = None,
                 follow: bool = True) -> int:
    """An O_CLOEXEC|O_NONBLOCK descriptor of the regular file at `path`; OSError naming what it is
    otherwise. With O_CREAT in `flags` a missing file is made (with `mode`); `follow=False` adds
    O_NOFOLLOW, so a symlink is refused instead of followed."""
    check_path(path)
    try:
        st = sysapi.stat(path, dir_fd=dir_fd, follow_symlinks=follow)
    except FileNotFoundError:
        if not flags & sysapi.O_CREAT:
            raise
        st = None
    if st is not None and not sysapi.S_ISREG(st.st_mode):
        raise refuse(path, f"{_kind(st.st_mode)}, not a regular file")
    flags |= sysapi.O_NONBLOCK | sysapi.O_CLOEXEC | (0 if follow else sysapi.O_NOFOLLOW)
    fd = sysapi.open(path, flags, mode, dir_fd=dir_fd)
    try:
        now = sysapi.fstat(fd)
        if not sysapi.S_ISREG(now.st_mode):
            raise refuse(path, f"{_kind(now.st_mode)}, not a regular file")
        if st is not None and (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise refuse(path, "the file was replaced while it was opened")
    except BaseException:
        sysapi.close(fd)
        raise
    return fd


def read_regular(path: str, limit: int = READ_LIMIT) -> bytes:
    """The whole of the regular file at `path`, refused when it holds more than `limit` bytes."""
    fd = open_regular(path)
    try:
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = sysapi.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        sysapi.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise refuse(path, f"larger than {limit} bytes", 27)  # EFBIG
    return data


def makedirs(path: str, mode: int = 0o755) -> None:
    """mkdir -p where every level made gets `mode` (less the umask, as Go's MkdirAll): Python's
    os.makedirs gives the parents 0777 less the umask, world-writable under umask 000."""
    check_path(path)
    path = sysapi.abspath(path)
    missing = []
    while not sysapi.isdir(path):
        missing.append(path)
        parent = sysapi.dirname(path)
        if parent == path:
            break
        path = parent
    for level in reversed(missing):
        try:
            sysapi.mkdir(level, mode)
        except FileExistsError:
            if not sysapi.isdir(level):
                raise
