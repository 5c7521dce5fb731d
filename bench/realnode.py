"""The pinned binaries of a kind node of today, from ``../shared/realnode`` beside the checkout.

``../shared/realnode/unpack`` verifies its archive, unpacks it once into /var/cache and prints the
directory, which holds:

  ``plugins-v1.9.1/``     the reference plugins kind ships (bridge, host-local, ptp, portmap, ...)
  ``containerd-v2.3.4/``  containerd, its runc shim and ctr
  ``cri-tools-v1.36.0/``  critest and crictl
  ``libcni-v1.3.0/``      cnidrive, a libcni 1.3.0 driver (add/check/del/status/gc)

``PYCNI_REALNODE`` names an already unpacked directory instead. The bench takes its reference
from here, and the tests (``tests/helpers/realnode.py``) find the same binaries through this module,
so both always compare against one thing.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_REALNODE = REPO.parent / "shared" / "realnode"
PLUGINS = "plugins-v1.9.1"
CONTAINERD = "containerd-v2.3.4"
CRITOOLS = "cri-tools-v1.36.0"
CNIDRIVE = "libcni-v1.3.0/cnidrive"


@functools.cache
def unpacked() -> tuple[Path | None, str]:
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
    base, why = unpacked()
    if base is None:
        return None, why
    path = base / relative
    return (path, "") if path.exists() else (None, f"{path} missing from the real-node binaries")
