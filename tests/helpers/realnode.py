"""The pinned binaries of a kind node of today, found by ``bench/realnode.py`` (the bench takes its
reference from the same place), as test fixtures:

  ``plugins-v1.9.1/``     the reference plugins kind ships (bridge, host-local, ptp, portmap, ...)
  ``containerd-v2.3.4/``  containerd, its runc shim and ctr
  ``cri-tools-v1.36.0/``  critest and crictl
  ``libcni-v1.3.0/``      cnidrive, a libcni 1.3.0 driver (add/check/del/status/gc)

``PYCNI_REALNODE`` names an already unpacked directory instead. When the binaries cannot be had,
``require`` fails the test under ``CI=true`` (CI lays ``../shared`` beside the checkout, so their
absence there is a defect) and skips it elsewhere, naming what is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.realnode import CNIDRIVE, CONTAINERD, CRITOOLS, PLUGINS, SHARED_REALNODE, find

__all__ = ["CNIDRIVE", "CONTAINERD", "CRITOOLS", "PLUGINS", "SHARED_REALNODE", "debian_plugins", "find",
           "reference_plugins", "require", "unavailable"]

# Debian 12's reference plugins 1.1.1: kept for on-disk interoperability with older nodes.
DEBIAN_PLUGINS = Path("/usr/lib/cni")


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
