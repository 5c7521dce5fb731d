"""Network configuration files for a private NETCONFPATH."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def conflist(name: str, plugins: list[dict], cni_version: str = "1.0.0", **extra: Any) -> dict:
    """A configuration list dict: ``{"cniVersion", "name", "plugins", **extra}``."""
    return {"cniVersion": cni_version, "name": name, **extra, "plugins": plugins}


def write_netconf(directory: Path, config: dict | str | bytes, *, filename: str | None = None,
                  ext: str | None = None) -> Path:
    """Write ``config`` into ``directory`` and return the file's path.

    The default file name is ``<name>.conflist`` for a dict with ``plugins``, ``<name>.conf`` for a
    single-plugin dict; str/bytes need ``filename`` (or ``ext`` with a parsable ``name``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(config, dict):
        data = json.dumps(config, indent=2).encode()
        parsed: Any = config
    else:
        data = config.encode() if isinstance(config, str) else config
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
    if filename is None:
        if not isinstance(parsed, dict) or "name" not in parsed:
            raise ValueError("filename is required when the config has no parsable name")
        if ext is None:
            ext = ".conflist" if "plugins" in parsed else ".conf"
        filename = f"{parsed['name']}{ext}"
    path = directory / filename
    path.write_bytes(data)
    return path
