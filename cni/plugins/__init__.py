"""The plugin registry: CNI type name -> module, imported only when that type runs."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

MODULES: dict[str, str] = {
    "loopback": "cni.plugins.loopback",
    "bridge": "cni.plugins.bridge",
    "ptp": "cni.plugins.ptp",
    "bandwidth": "cni.plugins.bandwidth",
    "portmap": "cni.plugins.portmap",
    "host-local": "ipam.hostlocal",
}


def load(plugin_type: str) -> ModuleType:
    # __import__ rather than importlib.import_module: importing the importlib package (and the
    # warnings module it imports) would cost every call start-up for nothing.
    name = MODULES[plugin_type]
    __import__(name)
    return sys.modules[name]
