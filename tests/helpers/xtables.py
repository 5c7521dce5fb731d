"""The legacy iptables backend, which serialises on the xtables lock, and that lock held by a test.

iptables-nft (Debian's default) takes no lock; a test of the lock puts the legacy tools first on
PATH under the plain names and holds a private XTABLES_LOCKFILE, never the host's /run/xtables.lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

XTABLES_BOUND = 10  # cni/net/firewall/iptables.py XTABLES_WAIT_SECONDS
LEGACY = {"iptables": "iptables-legacy", "iptables-save": "iptables-legacy-save",
          "iptables-restore": "iptables-legacy-restore", "ip6tables": "ip6tables-legacy",
          "ip6tables-save": "ip6tables-legacy-save", "ip6tables-restore": "ip6tables-legacy-restore"}


def legacy_tools(directory: Path) -> Path:
    """`directory`, made, holding the legacy tools under the names the plugins run: put it first on PATH."""
    directory.mkdir()
    for name, target in LEGACY.items():
        (directory / name).symlink_to(f"/usr/sbin/{target}")
    return directory


class HeldLock:
    """The xtables lock file held (flock, as iptables takes it) by this test process until released."""

    def __init__(self, path: str | Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self.fd)
