"""The operating system as the plugins use it: the built-in `posix` module, without `os`.

Every CNI call is a new process, and importing `os` costs each one start-up time (os.environ is
built on the collections ABCs). The plugins need only posix's own calls, the environment as text and a
few path string helpers, so those are given here, once, and the plugin paths never import `os`.
The operator command and the paths that start programs (subprocess imports `os`) may use it.
The path helpers take and give str only, and behave as posixpath's do (tests hold them to it).
"""

from __future__ import annotations

import posix
import sys
from _stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK
from posix import (
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_RDONLY,
    O_WRONLY,
    W_OK,
    X_OK,
    _exit,
    access,
    close,
    fstat,
    getcwd,
    geteuid,
    getpid,
    killpg,
    link,
    lstat,
    mkdir,
    open,
    read,
    readlink,
    rename,
    replace,
    scandir,
    stat,
    strerror,
    unlink,
    urandom,
    write,
)

if hasattr(posix, "setns"):  # Python >= 3.12; cni.net.netns has its own C module otherwise
    # typeshed declares it from 3.12 only, and mypy checks for 3.11
    from posix import setns  # type: ignore[attr-defined]  # noqa: F401

__all__ = ["O_CLOEXEC", "O_CREAT", "O_DIRECTORY", "O_EXCL", "O_NOFOLLOW", "O_NONBLOCK", "O_RDONLY",
           "O_WRONLY", "S_ISBLK", "S_ISCHR", "S_ISDIR", "S_ISFIFO", "S_ISLNK", "S_ISREG", "S_ISSOCK",
           "W_OK", "X_OK", "_exit", "abspath", "access", "basename", "close", "dirname", "environ",
           "exists", "fstat", "getcwd", "geteuid", "getpid", "isdir", "isfile", "join", "killpg", "link",
           "lstat", "mkdir", "normpath", "open", "read", "readlink", "rename", "replace", "samefile",
           "scandir", "seconds_from_env", "stat", "strerror", "unlink", "urandom", "write"]

# The process's environment as text, decoded as os.environ is (the file system encoding, with
# surrogateescape); given through __getattr__ below, so `sysapi.environ` is always current.
environ: dict[str, str]
_environ: dict[str, str] | None = None


def __getattr__(name: str) -> dict[str, str]:
    """`environ`: os.environ once `os` is loaded (a test or the operator command may change it),
    else a dict decoded once from posix's bytes."""
    global _environ
    if name != "environ":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    os = sys.modules.get("os")
    if os is not None:
        return os.environ
    if _environ is None:
        encoding = sys.getfilesystemencoding()
        _environ = {key.decode(encoding, "surrogateescape"): value.decode(encoding, "surrogateescape")
                    for key, value in posix.environ.items()}
    return _environ


def join(first: str, *rest: str) -> str:
    """Path parts joined with "/"; an absolute part starts the path anew."""
    path = first
    for part in rest:
        if part.startswith("/"):
            path = part
        elif not path or path.endswith("/"):
            path += part
        else:
            path += "/" + part
    return path


def basename(path: str) -> str:
    """What follows the last "/"."""
    return path[path.rfind("/") + 1:]


def dirname(path: str) -> str:
    """What precedes the last "/", without trailing slashes unless it is all slashes."""
    head = path[:path.rfind("/") + 1]
    if head and head.strip("/"):
        head = head.rstrip("/")
    return head


def normpath(path: str) -> str:
    """The path with "." parts, doubled slashes and ".." folded away as text (no symlinks read)."""
    if not path:
        return "."
    # POSIX keeps exactly two leading slashes as they are; one, or three and more, mean one.
    lead = 2 if path.startswith("//") and not path.startswith("///") else int(path.startswith("/"))
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".." or not lead:
            parts.append(part)
    return "/" * lead + "/".join(parts) or "."


def abspath(path: str) -> str:
    """The path made absolute from the working directory, then normalised."""
    if not path.startswith("/"):
        path = join(getcwd(), path)
    return normpath(path)


def _mode(path: str) -> int | None:
    try:
        return stat(path).st_mode
    except (OSError, ValueError):
        return None


def exists(path: str) -> bool:
    """Whether stat(2) finds the path (symlinks followed)."""
    return _mode(path) is not None


def isdir(path: str) -> bool:
    """Whether the path (symlinks followed) is a directory."""
    mode = _mode(path)
    return mode is not None and S_ISDIR(mode)


def isfile(path: str) -> bool:
    """Whether the path (symlinks followed) is a regular file."""
    mode = _mode(path)
    return mode is not None and S_ISREG(mode)


def samefile(first: str, second: str) -> bool:
    """Whether both paths (symlinks followed) are one file; OSError when either is missing."""
    a, b = stat(first), stat(second)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def seconds_from_env(name: str, default: float, most: float = 3600.0) -> float:
    """A bound in seconds from the environment variable `name`: a number above 0 and below `most`,
    else `default` (a typo or `nan` never unbounds a wait)."""
    try:
        value = float(__getattr__("environ").get(name, ""))
    except ValueError:
        return default
    return value if 0 < value < most else default
