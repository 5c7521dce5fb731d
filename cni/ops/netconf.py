"""The network configuration lists of a conf dir, found and ordered as libcni and containerd do.

libcni's ConfFiles takes every `*.conf`, `*.conflist` and `*.json` of the directory (hidden files
too, subdirectories never) and the runtime sorts them by name; containerd (max_conf_num=1) loads
only the first. A `.conf`/`.json` file holds one plugin, which libcni wraps into a list.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from cni.contract.versions import DEFAULT_WHEN_ABSENT, SUPPORTED, parse
from cni.safeopen import read_regular

EXTENSIONS = (".conf", ".conflist", ".json")
READ_LIMIT = 1 << 20


class NetList(NamedTuple):
    """One file of the conf dir; `error` says why the runtime could not load it ("" when it can)."""

    file: str
    name: str
    version: str
    plugins: list[dict[str, Any]]
    disable_gc: bool
    error: str


def conf_files(names: list[str]) -> list[str]:
    """The config file names among a directory's entries, in the runtime's order."""
    return sorted(n for n in names if os.path.splitext(n)[1] in EXTENSIONS)


def _pick_version(raw: dict[str, Any]) -> str:
    """cniVersions (1.1.0): the highest one we speak; else cniVersion; else libcni's default."""
    versions = raw.get("cniVersions")
    if isinstance(versions, list):
        known = [v for v in versions if isinstance(v, str) and v in SUPPORTED]
        if known:
            return max(known, key=parse)
    version = raw.get("cniVersion")
    return version if isinstance(version, str) and version else DEFAULT_WHEN_ABSENT


def parse_list(file: str, data: bytes) -> NetList:
    """A file's content as a list (a single-plugin file is wrapped), or why it is not one."""
    def bad(why: str, name: str = "") -> NetList:
        return NetList(file, name, "", [], False, why)

    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        return bad(f"not JSON: {e}")
    if not isinstance(raw, dict):
        return bad("not a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return bad("no network name")
    version = _pick_version(raw)
    if file.endswith(".conflist"):
        plugins = raw.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            return bad("no plugins", name)
        if not all(isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] for p in plugins):
            return bad("a plugin without a type", name)
    else:
        if not isinstance(raw.get("type"), str) or not raw["type"]:
            return bad("network type not found (a list in a .conf file?)", name)
        plugins = [raw]
    return NetList(file, name, version, plugins, raw.get("disableGC") is True, "")


def load_dir(conf_dir: str) -> list[NetList]:
    """Every config file of conf_dir in the runtime's order; a file that cannot be read says so."""
    try:
        names = [e.name for e in os.scandir(conf_dir) if e.is_file()]
    except OSError as e:
        raise OSError(f"cannot read the CNI config directory {conf_dir}: {e.strerror}") from None
    out = []
    for name in conf_files(names):
        path = os.path.join(conf_dir, name)
        try:  # never a FIFO (it would hang the command) or a device
            data = read_regular(path, READ_LIMIT)
        except OSError as e:
            out.append(NetList(name, "", "", [], False, f"cannot read: {e.strerror}"))
            continue
        out.append(parse_list(name, data))
    return out


def plugin_config(lst: NetList, plugin: dict[str, Any], version: str, extra: dict[str, Any] | None = None,
                  ) -> dict[str, Any]:
    """What a plugin of the list gets on stdin: its object with the list's name and the version
    injected (libcni's InjectConf), plus `extra` keys (GC's valid attachments)."""
    conf = dict(plugin)
    conf["name"] = lst.name
    conf["cniVersion"] = version
    conf.update(extra or {})
    return conf
