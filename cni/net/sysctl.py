"""Read and write /proc/sys keys of the network namespace the calling thread is in.

/proc/sys/net resolves to the namespace of whoever opens the file, so inside
`netns.entered(path)` these functions act on that namespace.

Keys are paths ("net/ipv4/ip_forward") or sysctl(8) dotted names
("net.ipv6.conf.eth0.accept_dad").  Interface names may contain dots ("cni0.100"): in the
dotted form write them with "/" as sysctl(8) does ("net.ipv4.conf.cni0/100.forwarding"),
or build the key with `conf_key`.
"""

from __future__ import annotations

from cni import sysapi

ROOT = "/proc/sys/"


def path_of(key: str) -> str:
    """The /proc/sys file behind `key`."""
    key = key.strip()
    if key.startswith(ROOT):
        return key
    if "/" not in key or "." in key.split("/", 1)[0]:
        # sysctl(8) dotted form: "." separates levels, "/" stands for a literal dot.
        key = key.replace(".", "\0").replace("/", ".").replace("\0", "/")
    return ROOT + key.lstrip("/")


def conf_key(family: str, ifname: str, leaf: str) -> str:
    """E.g. conf_key("ipv6", "cni0.100", "accept_dad") -> "net/ipv6/conf/cni0.100/accept_dad"."""
    if family not in ("ipv4", "ipv6"):
        raise ValueError(f"unknown address family {family!r}")
    return f"net/{family}/conf/{ifname}/{leaf}"


def read(key: str) -> str:
    """The value with surrounding whitespace removed.  FileNotFoundError if no such key."""
    with open(path_of(key), "rb") as f:  # bytes: a text file would import a codec module per call
        return f.read().decode("ascii").strip()


def write(key: str, value: str | int) -> None:
    """Write `value`; errors carry errno (ENOENT no such key, EINVAL bad value, EACCES...)."""
    path = path_of(key)
    data = f"{value}\n".encode()
    fd = sysapi.open(path, sysapi.O_WRONLY | sysapi.O_CLOEXEC)
    try:
        try:
            sysapi.write(fd, data)
        except OSError as err:
            raise OSError(err.errno, f"write {value!r} to {path}: {err.strerror}") from None
    finally:
        sysapi.close(fd)


def try_write(key: str, value: str | int) -> bool:
    """Write `value` where the key exists and takes it; False (and nothing raised) where it does not,
    for settings that are best effort (a kernel without IPv6, a read-only /proc/sys)."""
    try:
        write(key, value)
    except OSError:
        return False
    return True

