"""The pinned binaries of a kind node of today, from ``../shared/realnode`` beside the checkout.

``../shared/realnode/unpack`` verifies its archive and unpacks it once into /var/cache; what it
holds is the reference the tests compare against:

  ``plugins-v1.9.1/``     the reference plugins kind ships (bridge, host-local, ptp, portmap, ...)
  ``containerd-v2.3.4/``  containerd, its runc shim and ctr
  ``cri-tools-v1.36.0/``  critest and crictl
  ``libcni-v1.3.0/``      cnidrive, a libcni 1.3.0 driver (add/check/del/status/gc)

``PYCNI_REALNODE`` names an already unpacked directory instead. When the binaries cannot be had,
``require`` fails the test under ``CI=true`` (CI lays ``../shared`` beside the checkout, so their
absence there is a defect) and skips it elsewhere, naming what is missing.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_REALNODE = REPO.parent / "shared" / "realnode"
PLUGINS = "plugins-v1.9.1"
CONTAINERD = "containerd-v2.3.4"
CRITOOLS = "cri-tools-v1.36.0"
CNIDRIVE = "libcni-v1.3.0/cnidrive"
# Debian 12's reference plugins 1.1.1: kept for on-disk interoperability with older nodes.
DEBIAN_PLUGINS = Path("/usr/lib/cni")


@functools.cache
def _unpacked() -> tuple[Path | None, str]:
    """(the unpacked directory, "") or (None, why it cannot be had)."""
    given = os.environ.get("PYCNI_REALNODE")
    if given:
        path = Path(given)
        return (path, "") if path.is_dir() else (None, f"PYCNI_REALNODE={given} is not a directory")
    unpack = SHARED_REALNODE / "unpack"
    if not unpack.exists():
        return None, f"{unpack} missing (../shared/realnode is not beside the checkout)"
    proc = subprocess.run(["bash", str(unpack)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, f"{unpack} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return Path(proc.stdout.strip().splitlines()[-1]), ""


def find(relative: str) -> tuple[Path | None, str]:
    """(path of ``relative`` inside the unpacked directory, "") or (None, why it is missing)."""
    base, why = _unpacked()
    if base is None:
        return None, why
    path = base / relative
    return (path, "") if path.exists() else (None, f"{path} missing from the real-node binaries")


def unavailable(why: str) -> None:
    """Fail under CI (where ../shared is always beside the checkout), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-node binaries needed: {why}", pytrace=False)
    pytest.skip(f"real-node binaries needed: {why}")


def require(relative: str) -> Path:
    """The path of ``relative`` (e.g. ``PLUGINS``, ``CNIDRIVE``), or fail/skip as ``unavailable``."""
    path, why = find(relative)
    if path is None:
        unavailable(why)
    return path


def reference_plugins() -> Path:
    """The directory of the v1.9.1 reference plugins."""
    return require(PLUGINS)


def debian_plugins() -> Path:
    """Debian's 1.1.1 reference plugins (for interoperability with older nodes), or skip."""
    if not (DEBIAN_PLUGINS / "host-local").exists():
        pytest.skip(f"Debian's reference plugins missing in {DEBIAN_PLUGINS} "
                    "(apt install containernetworking-plugins)")
    return DEBIAN_PLUGINS
