"""Minimal Debian 12 roots made with debootstrap, and commands run inside them as on a new node.

A root is made from the same mirror this machine's apt uses (its sources), with
``debootstrap --variant=minbase``: what Debian's essential and required packages hold, apt included,
and no Python. ``run_in_root`` runs a command there as root with ``chroot`` in a private mount
namespace, with the kernel's /proc, /sys and /dev and fresh tmpfs /run and /tmp: nothing it mounts
outlives it. Optionally inside a network namespace, so links it makes stay off this machine's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .kernel import ns_argv

SUITE = "bookworm"
DEBOOTSTRAP_TIMEOUT = 900
# What debootstrap prints when it cannot fetch the suite's Release file: the mirror is unreachable.
UNREACHABLE_MARKS = ("Failed getting release file", "Failed getting release signature file",
                     "Temporary failure resolving", "Could not resolve", "unable to resolve")


class Unreachable(Exception):
    """The package registry cannot be reached from here (the only reason to skip a fresh-root test)."""


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str | None:
    """The URI this machine's apt fetches Debian 12's main archive from, or None (debootstrap's
    own default then), read from deb822 ``*.sources`` and one-line ``*.list`` files."""
    files = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in files:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith((" ", "#")):
                    fields[key.strip().lower()] = value.strip()
            if (SUITE in fields.get("suites", "").split() and "main" in fields.get("components", "").split()
                    and "deb" in fields.get("types", "").split() and fields.get("uris")):
                return fields["uris"].split()[0]
    lists = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
                return words[1]
    return None


def make_root(dest: Path, include: Sequence[str] = (), timeout: float = DEBOOTSTRAP_TIMEOUT) -> None:
    """debootstrap a minbase Debian 12 into ``dest`` (which must not exist yet).

    Raises ``Unreachable`` when the mirror cannot be reached, ``RuntimeError`` for any other failure.
    """
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise RuntimeError("debootstrap is not installed (Debian package debootstrap)")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    mirror = apt_mirror()
    argv = [debootstrap, "--variant=minbase", *(["--include=" + ",".join(include)] if include else []),
            SUITE, str(partial), *([mirror] if mirror else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        debootstrap_log = partial / "debootstrap" / "debootstrap.log"
        if debootstrap_log.is_file():
            log += debootstrap_log.read_text(errors="replace")
        shutil.rmtree(partial, ignore_errors=True)
        if any(mark in log for mark in UNREACHABLE_MARKS):
            raise Unreachable(f"debootstrap could not reach {mirror or 'its default mirror'}: "
                              + log.strip().splitlines()[-1])
        raise RuntimeError(f"debootstrap failed ({proc.returncode}):\n{log[-3000:]}")
    partial.rename(dest)


def copy_root(base: Path, dest: Path) -> Path:
    """A private copy of a root (the base stays untouched for the next test)."""
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(dest)], check=True, timeout=600)
    return dest


def copy_registry_config(root: Path) -> None:
    """What this machine needs to reach the registries, laid into the root as on this machine:
    its resolver, CA bundle and pip configuration."""
    for name in ("etc/resolv.conf", "etc/hosts", "etc/pip.conf"):
        src = Path("/") / name
        if src.is_file():
            target = root / name
            target.unlink(missing_ok=True)
            shutil.copy2(src, target)
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        (root / "etc/ssl/certs/ca-certificates.crt").unlink(missing_ok=True)
        shutil.copy2(ca, root / "etc/ssl/certs/ca-certificates.crt")
    xdg_pip = Path("/etc/xdg/pip")
    if xdg_pip.is_dir():
        shutil.copytree(xdg_pip, root / "etc/xdg/pip", dirs_exist_ok=True)


_MOUNTS = """set -e
r=$1; shift
mount --bind "$r" "$r"  # "/" must be a mount point: `ip netns exec` makes it a slave mount
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
if [ -n "${PYCNI_ROOT_NETNS_DIR:-}" ]; then
  mkdir -p "$r/run/netns"
  mount --rbind "$PYCNI_ROOT_NETNS_DIR" "$r/run/netns"
fi
exec chroot "$r" "$@"
"""


def run_in_root(root: Path, argv: Sequence[str], *, env: dict[str, str] | None = None,
                netns: str | None = None, share_netns_dir: bool = False, timeout: float = 600,
                cwd: str = "/") -> subprocess.CompletedProcess:
    """Run ``argv`` in ``root`` as root, with a clean environment (``env`` on top of PATH, HOME,
    LANG), in a private mount namespace; inside ``ip netns exec NETNS`` when ``netns`` is given.
    ``share_netns_dir`` makes this machine's /run/netns visible as the root's, so namespace paths
    named on the host (CNI_NETNS) work inside."""
    clean = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
             "LANG": "C.UTF-8", "TERM": "dumb", **(env or {})}
    if share_netns_dir:
        clean["PYCNI_ROOT_NETNS_DIR"] = "/run/netns"
    inner = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in clean.items() if k != "PYCNI_ROOT_NETNS_DIR"],
             "/bin/sh", "-c", f"cd {shlex.quote(cwd)} && exec " + shlex.join(argv)]
    outer = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _MOUNTS, "mount-root",
             str(root), *inner]
    outer = ns_argv(netns, *outer)
    return subprocess.run(outer, env={**os.environ, **clean}, capture_output=True, text=True,
                          timeout=timeout)
