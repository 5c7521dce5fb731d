"""The environment for programs we start: the runtime's, without what the bundle added.

The bundle's launcher (for the operator command) and PyInstaller's bootloader (the onefile
builds) restart themselves with the bundle's library directory in front of LD_LIBRARY_PATH, the
caller's value kept in LD_LIBRARY_PATH_ORIG; the bootloader also sets `_PYI_*` variables.
Passed on, they would make iptables, nft or another vendor's IPAM plugin load our bundled
libraries, or make another PyInstaller program believe it is our child. Whatever starts a
program goes through `child_env`.
"""

from __future__ import annotations

import sys

from cni import sysapi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def child_env(env: Mapping[str, str] | None = None, frozen: bool | None = None) -> dict[str, str]:
    """A copy of env (default: ours) as the runtime set it, before the bootloader touched it."""
    source = sysapi.environ if env is None else env
    frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    out = {k: v for k, v in source.items() if not k.startswith("_PYI_")}
    if frozen:
        original = out.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            out.pop("LD_LIBRARY_PATH", None)
        else:
            out["LD_LIBRARY_PATH"] = original
    return out
