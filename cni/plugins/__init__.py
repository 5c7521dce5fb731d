"""The plugin registry: CNI type name -> module, imported only when that type runs."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

MODULES: dict[str, str] = {
    "loopback": "cni.plugins.loopback",
    "bridge": "cni.plugins.bridge",
    "bandwidth": "cni.plugins.bandwidth",
    "portmap": "cni.plugins.portmap",
    "host-local": "ipam.hostlocal",
}


def load(plugin_type: str) -> ModuleType:
    return importlib.import_module(MODULES[plugin_type])
